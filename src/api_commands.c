/* The command API: POST /command/{name} and the changeset endpoint.
 * Request → decoded, checked command → log entry → raft → answer after apply. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "codec.h"
#include "config.h"
#include "domain.h"
#include "entry.h"
#include "idempotency.h"
#include "log.h"
#include "membership.h"
#include "store.h"
#include "submit.h"
#include "util.h"

#define IDEMPOTENCY_KEY_MAX 128
#define GENERATED_ID_LEN 12
#define TOKEN_LEN 40

/* A client's command on its way: the request (if still there) and, for
 * apikey.Create, the token this node made (shown once, never logged). */
struct pending_cmd {
    struct req_ref ref;
    char token[TOKEN_LEN + 1];
};

/* Answer a command with its outcome @r (status, Idempotent-Replayed,
 * Retry-After) and the body @body (r's own, or one extended here). */
static void reply_outcome(h2o_req_t *req, const struct submit_result *r, const char *body,
                          size_t len)
{
    http_prepare(req, r->status);
    if (r->replayed) {
        http_add_header(req, "idempotent-replayed", "true");
    }
    if (r->retry) {
        http_add_header(req, "retry-after", "1");
    }
    http_send_body(req, body, len);
}

static void command_done(void *data, const struct submit_result *r)
{
    struct pending_cmd *p = data;
    h2o_req_t *req = req_ref_detach(&p->ref);

    if (req != NULL) {
        if (p->token[0] != '\0' && r->status == 200 && !r->replayed && r->len > 1) {
            /* The token is added here, by the node that made it: it is in
             * neither the log nor the idempotency record. */
            size_t n = r->len - 1 + sizeof ",\"Token\":\"\"}" + TOKEN_LEN;
            char *body = h2o_mem_alloc_pool(&req->pool, n);
            int len = snprintf(body, n, "%.*s,\"Token\":\"%s\"}", (int)(r->len - 1), r->body,
                               p->token);
            reply_outcome(req, r, body, (size_t)len);
        } else {
            reply_outcome(req, r, r->body, r->len);
        }
    }
    free(p);
}

static int valid_idempotency_key(const char *k)
{
    size_t n = strlen(k);
    size_t i;
    if (n < 1 || n > IDEMPOTENCY_KEY_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (k[i] < 0x20 || k[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Answer from this node's idempotency record if it has one; returns 1 if
 * answered. A node that has not yet applied the first attempt lets the
 * entry through: apply makes the same decision from the log. */
static int idempotency_answer(struct api *api, h2o_req_t *req, const char *key,
                              const uint8_t hash[32])
{
    struct idempotency_record rec;

    switch (idempotency_check(api->store, key, hash, 32, &rec)) {
    case IDEMPOTENCY_MATCH:
        http_prepare(req, rec.status);
        http_add_header(req, "idempotent-replayed", "true");
        http_send_body(req, rec.body, rec.body_len);
        return 1;
    case IDEMPOTENCY_MISMATCH:
        http_reply_error(req, ERR_IDEMPOTENCY_MISMATCH,
                         "Idempotency-Key was already used with a different command");
        return 1;
    default:
        return 0; /* none, or unreadable: apply decides */
    }
}

/* Validate, encode and submit @cmd with the decoded body @json. */
static void submit_command(struct api *api, h2o_req_t *req, const struct domain_command *cmd,
                           cJSON *json)
{
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    struct err derr;
    ProtobufCMessage *msg = NULL;
    struct pending_cmd *p = NULL;
    struct raft_buffer buf = {NULL, 0};
    char key[IDEMPOTENCY_KEY_MAX + 2];
    char id[GENERATED_ID_LEN + 1];
    uint8_t hash[32], token_hash[32];
    uint8_t *payload = NULL;
    size_t payload_len;
    int has_key;

    has_key = http_header(req, "idempotency-key", key, sizeof key);
    if (has_key < 0 || (has_key == 1 && !valid_idempotency_key(key))) {
        http_reply_error(req, ERR_BAD_REQUEST,
                         "Idempotency-Key must be 1 to 128 printable ASCII characters");
        return;
    }
    if (codec_decode(cmd->desc, json, &msg, &derr) != 0) {
        http_reply_error(req, derr.code, "%s", derr.message);
        return;
    }
    if (domain_check(cmd, msg, &derr) != 0) {
        http_reply_error(req, derr.code, "%s", derr.message);
        goto out;
    }
    payload_len = protobuf_c_message_get_packed_size(msg);
    payload = malloc(payload_len + strlen(cmd->name) + 1);
    if (payload == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* The request hash covers the command name and its canonical encoding,
     * so whitespace or key order in the JSON do not matter. */
    memcpy(payload, cmd->name, strlen(cmd->name) + 1);
    protobuf_c_message_pack(msg, payload + strlen(cmd->name) + 1);
    if (has_key == 1) {
        util_sha256(payload, payload_len + strlen(cmd->name) + 1, hash);
        if (idempotency_answer(api, req, key, hash)) {
            goto out;
        }
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        goto out;
    }
    e.command = (char *)cmd->name;
    e.payload.data = payload + strlen(cmd->name) + 1;
    e.payload.len = payload_len;
    if (has_key == 1) {
        e.idempotencykey = key;
        e.has_requesthash = 1;
        e.requesthash.data = hash;
        e.requesthash.len = 32;
    }
    e.nodeid = api->config->id;
    e.timems = util_now_ms();
    if (cmd->creates_id) {
        util_random_id(id, GENERATED_ID_LEN);
        e.generatedid = id;
    }
    if (strcmp(cmd->name, "apikey.Create") == 0) {
        util_random_id(p->token, TOKEN_LEN);
        util_sha256(p->token, TOKEN_LEN, token_hash);
        e.has_tokenhash = 1;
        e.tokenhash.data = token_hash;
        e.tokenhash.len = 32;
    }
    if (entry_encode(&e, &buf) != 0) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        free(p);
        goto out;
    }
    req_ref_attach(&p->ref, req);
    submit_entry(api->submit, buf, command_done, p);
out:
    free(payload);
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* A membership command: checked here, run by the leader (here, or relayed
 * to it once it is known, like any command). */
static void relay_membership(struct api *api, h2o_req_t *req, const char *name, const cJSON *json)
{
    struct membership_cmd cmd;
    struct pending_cmd *p;
    struct err e;

    if (membership_parse(name, json, &cmd, &e) != 0) {
        http_reply_error(req, e.code, "%s", e.message);
        return;
    }
    if (req->entity.len > MEMBERSHIP_BODY_MAX) {
        http_reply_error(req, ERR_BAD_REQUEST, "request too long for a cluster command");
        return;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    req_ref_attach(&p->ref, req);
    submit_relay(api->submit, name, req->entity.base, req->entity.len, command_done, p);
}

/* Parse the body as a JSON object; answers and returns NULL on error. */
static cJSON *parse_body(struct api *api, h2o_req_t *req)
{
    struct err e;
    cJSON *json;
    if (req->entity.len > HTTP_MAX_BODY) {
        http_reply_error(req, ERR_TOO_LARGE, "request body over %d bytes", HTTP_MAX_BODY);
        return NULL;
    }
    json = codec_parse_body(req->entity.base, req->entity.len, &e);
    if (json == NULL) {
        http_reply_error(req, e.code, "%s", e.message);
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        http_reply_error(req, ERR_BAD_REQUEST, "the body must be a JSON object");
        return NULL;
    }
    return json;
}

int api_command_scope(char **params)
{
    const char *name = params[0] != NULL ? params[0] : "";
    return strncmp(name, "cluster.", 8) == 0 || strncmp(name, "apikey.", 7) == 0 ? AUTH_ADMIN
                                                                                 : AUTH_WRITE;
}

void api_command(struct api *api, h2o_req_t *req, char **params)
{
    const struct domain_command *cmd = domain_find(params[0]);
    cJSON *json;

    if (membership_is_command(params[0])) {
        json = parse_body(api, req);
        if (json != NULL) {
            relay_membership(api, req, params[0], json);
            cJSON_Delete(json);
        }
        return;
    }

    if (cmd == NULL || cmd->api_only) {
        http_reply_error(req, ERR_NOT_FOUND, "unknown command '%s'", params[0]);
        return;
    }
    json = parse_body(api, req);
    if (json == NULL) {
        return;
    }
    submit_command(api, req, cmd, json);
    cJSON_Delete(json);
}

void api_changeset(struct api *api, h2o_req_t *req, char **params)
{
    const struct domain_command *cmd = domain_find("collection.CommitChangeset");
    cJSON *json = parse_body(api, req);

    if (json == NULL) {
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(json, "Collection") != NULL) {
        cJSON_Delete(json);
        http_reply_error(req, ERR_BAD_REQUEST, "field 'Collection': unknown field");
        return;
    }
    cJSON_AddStringToObject(json, "Collection", params[0]);
    submit_command(api, req, cmd, json);
    cJSON_Delete(json);
}
