#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define TOKEN_MIN_LEN 16
#define GENERATED_TOKEN_LEN 40

static int read_token(const char *path, char *out, size_t size, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    size_t n;
    if (f == NULL) {
        snprintf(err, err_size, "token file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
        /* the admin token is every node's key to every other: a file
         * others can read is refused rather than trusted (SPEC 7) */
        snprintf(err, err_size,
                 "token file %s: readable by group or others (mode %04o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        fclose(f);
        return -1;
    }
    if (fgets(out, (int)size, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) {
        out[--n] = '\0';
    }
    if (n < TOKEN_MIN_LEN) {
        snprintf(err, err_size, "token file %s: the token must be at least %d characters", path,
                 TOKEN_MIN_LEN);
        return -1;
    }
    return 0;
}

/* The admin token from --token-file, or DIR/admin-token (made if missing). */
static int load_admin_token(struct auth *a, const struct config *config)
{
    char *err = a->errmsg;
    size_t err_size = sizeof a->errmsg;
    char path[CONFIG_PATH_MAX + 16], tmp[CONFIG_PATH_MAX + 24];
    int fd, ok;

    if (config->token_file[0] != '\0') {
        return read_token(config->token_file, a->admin_token, sizeof a->admin_token, err,
                          err_size) == 0
                   ? 0
                   : ERR_UNAVAILABLE;
    }
    snprintf(path, sizeof path, "%s/admin-token", config->data_dir);
    if (access(path, F_OK) == 0) {
        return read_token(path, a->admin_token, sizeof a->admin_token, err, err_size) == 0
                   ? 0
                   : ERR_UNAVAILABLE;
    }
    util_random_id(a->admin_token, GENERATED_TOKEN_LEN);
    /* Written aside and renamed into place: the file never exists half
     * written, neither to a reader nor after a crash. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ok = fd >= 0 && write(fd, a->admin_token, GENERATED_TOKEN_LEN) == GENERATED_TOKEN_LEN &&
         write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) {
        ok = 0;
    }
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return ERR_UNAVAILABLE;
    }
    log_info("generated an admin token into %s", path);
    return 0;
}

int auth_init(struct auth *a, const struct config *config, struct store *store)
{
    int rv;
    a->store = store;
    rv = load_admin_token(a, config);
    if (rv != 0) {
        return rv;
    }
    util_sha256(a->admin_token, strlen(a->admin_token), a->admin_hash);
    if (peer_keys_derive(&a->keys, a->admin_token) != 0) {
        snprintf(a->errmsg, sizeof a->errmsg, "cannot derive the peer keys (OpenSSL's HKDF)");
        return ERR_UNAVAILABLE;
    }
    peer_http_init(&a->peer, &a->keys, config->id);
    return 0;
}

/* The token of "Bearer <token>", or NULL. */
static const char *bearer(const char *authorization)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) {
        return NULL;
    }
    return authorization + 7;
}

/* Whether the token's digest @hash is the admin token's: equal-length
 * digests compared in constant time say nothing of content or length. */
static int is_admin_hash(const struct auth *a, const uint8_t hash[32])
{
    return CRYPTO_memcmp(hash, a->admin_hash, sizeof a->admin_hash) == 0;
}

enum auth_scope auth_scope(const struct auth *a, const char *authorization, char *key_id,
                           size_t size)
{
    const char *token = bearer(authorization);
    uint8_t hash[32];

    if (key_id != NULL && size > 0) {
        key_id[0] = '\0';
    }
    if (token == NULL) {
        return AUTH_NONE;
    }
    util_sha256(token, strlen(token), hash);
    if (is_admin_hash(a, hash)) {
        return AUTH_ADMIN;
    }
    return (enum auth_scope)store_apikey_scope(a->store, hash, key_id, size);
}

const char *auth_scope_name(enum auth_scope scope)
{
    static const char *names[] = {"none", "read", "write", "admin"};
    return scope <= AUTH_ADMIN ? names[scope] : "none";
}
