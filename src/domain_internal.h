/* Private to the domain (domain.c and the cmd_*.c files, one per
 * aggregate): the helpers every command shares, and each command's check
 * and apply function for the table in domain.c. */
#ifndef VARASTO_DOMAIN_INTERNAL_H
#define VARASTO_DOMAIN_INTERNAL_H

#include "domain.h"

#define DOMAIN_ROOT_ID "root"
/* How deep below the root a directory may be created or moved to: every
 * walk up the tree (a create's, a move's cycle check) stops there, so no
 * command reads more than this many rows of the tree (SPEC 7.3). */
#define DOMAIN_MAX_DEPTH 256

/* Record an event: store it with the next seq and keep it for the push hub.
 * @data is copied into the event's JSON. Returns 0 or ERR_INTERNAL. */
int domain_emit(struct domain_ctx *ctx, const char *type, const ProtobufCMessage *data);

/* A store call failed (a negative enum store_rc): ERR_INTERNAL with the
 * store's message. */
int domain_store_failed(struct domain_ctx *ctx);

/* ERR_NOT_FOUND ("@field: directory '@id' not found") unless directory /
 * collection @id exists; ERR_INTERNAL if the store fails. */
int domain_need_dir(struct domain_ctx *ctx, const char *id, const char *field);
int domain_need_coll(struct domain_ctx *ctx, const char *id, const char *field);

/* Stateless checks, 0 or ERR_BAD_REQUEST. */
int domain_check_nonempty(const char *value, const char *field, struct err *e);
int domain_check_sensitivity(int32_t sensitivity, struct err *e);

/* Each command's check (stateless, may be absent) and apply: see struct
 * domain_command. */
int directory_create_check(const ProtobufCMessage *m, struct err *e);
int directory_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_rename_check(const ProtobufCMessage *m, struct err *e);
int directory_rename_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_change_description_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_set_type_check(const ProtobufCMessage *m, struct err *e);
int directory_set_type_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_change_sensitivity_check(const ProtobufCMessage *m, struct err *e);
int directory_change_sensitivity_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_move_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int directory_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);

int collection_create_check(const ProtobufCMessage *m, struct err *e);
int collection_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_rename_check(const ProtobufCMessage *m, struct err *e);
int collection_rename_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_change_description_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_move_check(const ProtobufCMessage *m, struct err *e);
int collection_move_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_tag_check(const ProtobufCMessage *m, struct err *e);
int collection_tag_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_untag_check(const ProtobufCMessage *m, struct err *e);
int collection_untag_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_rate_check(const ProtobufCMessage *m, struct err *e);
int collection_rate_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_change_sensitivity_check(const ProtobufCMessage *m, struct err *e);
int collection_change_sensitivity_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int collection_commit_changeset_check(const ProtobufCMessage *m, struct err *e);
int collection_commit_changeset_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);

int apikey_create_check(const ProtobufCMessage *m, struct err *e);
int apikey_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int apikey_remove_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);

int subscription_create_check(const ProtobufCMessage *m, struct err *e);
int subscription_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int subscription_ack_check(const ProtobufCMessage *m, struct err *e);
int subscription_ack_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int subscription_delete_check(const ProtobufCMessage *m, struct err *e);
int subscription_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);

int cluster_announce_check(const ProtobufCMessage *m, struct err *e);
int cluster_announce_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int cluster_record_node_added_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);
int cluster_record_node_removed_apply(struct domain_ctx *ctx, const ProtobufCMessage *m);

#endif
