/* Who may call the API: the cluster's admin token (from --token-file, or
 * generated once into the data dir) or a live API key (its SHA-256 is in
 * the read model). */
#ifndef VARASTO_AUTH_H
#define VARASTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "peer_auth.h"

struct config;
struct store;

#define AUTH_TOKEN_MAX 256

struct auth {
    char admin_token[AUTH_TOKEN_MAX];
    uint8_t admin_hash[32]; /* SHA-256 of admin_token: requests compare digests */
    struct store *store;    /* borrowed: API keys */
    struct peer_keys keys;  /* derived from admin_token: nodes' proofs to each other */
    struct peer_http peer;  /* this node's signing and checking of requests between nodes */
    char errmsg[512];       /* why auth_init failed */
};

/* Load the admin token (generating it on first start when no --token-file
 * is given), derive the peer keys from it, and bind @a to @store. Returns 0, or ERR_UNAVAILABLE
 * (the token file cannot be read or written, or is too short) with a one-line a->errmsg. */
int auth_init(struct auth *a, const struct config *config, struct store *store);

/* Whether the Authorization header value @authorization (NULL: absent)
 * carries the admin token. */
int auth_is_admin(const struct auth *a, const char *authorization);

/* Whether it carries the admin token or a live API key. */
int auth_allows(const struct auth *a, const char *authorization);

#endif
