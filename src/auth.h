/* Who may call the API: the cluster's admin token (from --token-file, or
 * generated once into the data dir) or a live API key (its SHA-256 is in
 * the read model). */
#ifndef VARASTO_AUTH_H
#define VARASTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "peer_auth.h"
#include "store.h"

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

/* What a request may do (SPEC 7.2), in increasing order. */
enum auth_scope {
    AUTH_NONE = 0,
    AUTH_READ = STORE_SCOPE_READ,   /* GET endpoints and streams */
    AUTH_WRITE = STORE_SCOPE_WRITE, /* also commands but cluster.* and apikey.* */
    AUTH_ADMIN = STORE_SCOPE_ADMIN, /* everything */
};

/* The scope the Authorization header value @authorization (NULL: absent)
 * carries: AUTH_ADMIN for the admin token, a live API key's own,
 * AUTH_NONE otherwise. The key's id goes into @key_id ("" for the admin
 * token; NULL: not wanted), @size bytes. */
enum auth_scope auth_scope(const struct auth *a, const char *authorization, char *key_id,
                           size_t size);

/* The scope's name: "read", "write", "admin" or "none". */
const char *auth_scope_name(enum auth_scope scope);

#endif
