#include "peer_auth.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const uint8_t HELLO_MAGIC[8] = {'V', 'R', 'S', 'T', 'P', 'E', 'E', 'R'};
static const uint8_t CHALLENGE_MAGIC[8] = {'V', 'R', 'S', 'T', 'A', 'N', 'S', 'W'};
#define HANDSHAKE_VERSION 1
#define HTTP_SCHEME "VarastoPeer "

static int hkdf(const char *token, const char *info, uint8_t out[32])
{
    static const char salt[] = "varasto peer keys v1";
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = 32;
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_salt(ctx, (const unsigned char *)salt, sizeof salt - 1) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_key(ctx, (const unsigned char *)token, (int)strlen(token)) >
                 0 &&
             EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) > 0 &&
             EVP_PKEY_derive(ctx, out, &len) > 0 && len == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

int peer_keys_derive(struct peer_keys *k, const char *token)
{
    return hkdf(token, "raft handshake", k->raft) == 0 && hkdf(token, "http request", k->http) == 0
               ? 0
               : -1;
}

static void hmac(const uint8_t key[32], const void *data, size_t len, uint8_t out[PEER_MAC_BYTES])
{
    unsigned out_len = PEER_MAC_BYTES;
    if (HMAC(EVP_sha256(), key, 32, data, len, out, &out_len) == NULL) {
        /* nothing then proves anything: an all-zero MAC never matches one
         * computed by a peer */
        memset(out, 0, PEER_MAC_BYTES);
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* ---- raft port handshake ------------------------------------------------------ */

size_t peer_hello_encode(const struct peer_hello *h, uint8_t *out)
{
    size_t alen = strlen(h->address);
    if (alen > PEER_ADDRESS_MAX) {
        return 0;
    }
    memcpy(out, HELLO_MAGIC, 8);
    out[8] = HANDSHAKE_VERSION;
    out[9] = 0;
    put64(out + 10, h->from);
    put64(out + 18, h->to);
    memcpy(out + 26, h->nonce, PEER_NONCE_BYTES);
    out[58] = (uint8_t)(alen >> 8);
    out[59] = (uint8_t)alen;
    out[60] = out[61] = 0;
    memcpy(out + PEER_HELLO_FIXED, h->address, alen);
    return PEER_HELLO_FIXED + alen;
}

int peer_hello_decode_fixed(const uint8_t *p, struct peer_hello *h, size_t *address_len)
{
    if (memcmp(p, HELLO_MAGIC, 8) != 0 || p[8] != HANDSHAKE_VERSION) {
        return -1;
    }
    h->from = get64(p + 10);
    h->to = get64(p + 18);
    memcpy(h->nonce, p + 26, PEER_NONCE_BYTES);
    *address_len = (size_t)p[58] << 8 | p[59];
    h->address[0] = '\0';
    return h->from != 0 && *address_len > 0 && *address_len <= PEER_ADDRESS_MAX ? 0 : -1;
}

int peer_hello_decode_address(const uint8_t *p, size_t len, struct peer_hello *h)
{
    size_t i;
    if (len > PEER_ADDRESS_MAX) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            return -1;
        }
    }
    memcpy(h->address, p, len);
    h->address[len] = '\0';
    return 0;
}

/* HMAC over a label and everything both sides said: the hello as the
 * connector encodes it, then the acceptor's id and nonce. */
static void transcript_mac(const struct peer_keys *k, char label, const struct peer_hello *hello,
                           uint64_t acceptor, const uint8_t nonce[PEER_NONCE_BYTES],
                           uint8_t out[PEER_MAC_BYTES])
{
    uint8_t t[1 + PEER_HELLO_MAX + 8 + PEER_NONCE_BYTES];
    size_t n;
    t[0] = (uint8_t)label;
    n = 1 + peer_hello_encode(hello, t + 1);
    put64(t + n, acceptor);
    memcpy(t + n + 8, nonce, PEER_NONCE_BYTES);
    hmac(k->raft, t, n + 8 + PEER_NONCE_BYTES, out);
}

void peer_challenge_encode(const struct peer_keys *k, const struct peer_hello *hello, uint64_t self,
                           const uint8_t nonce[PEER_NONCE_BYTES], uint8_t out[PEER_CHALLENGE_SIZE])
{
    memcpy(out, CHALLENGE_MAGIC, 8);
    out[8] = HANDSHAKE_VERSION;
    out[9] = 0;
    put64(out + 10, self);
    memcpy(out + 18, nonce, PEER_NONCE_BYTES);
    transcript_mac(k, 'A', hello, self, nonce, out + 18 + PEER_NONCE_BYTES);
}

int peer_challenge_check(const struct peer_keys *k, const struct peer_hello *hello,
                         const uint8_t in[PEER_CHALLENGE_SIZE], uint8_t proof[PEER_PROOF_SIZE])
{
    uint8_t mac[PEER_MAC_BYTES];
    uint64_t acceptor;
    if (memcmp(in, CHALLENGE_MAGIC, 8) != 0 || in[8] != HANDSHAKE_VERSION) {
        return -1;
    }
    acceptor = get64(in + 10);
    transcript_mac(k, 'A', hello, acceptor, in + 18, mac);
    if (CRYPTO_memcmp(mac, in + 18 + PEER_NONCE_BYTES, PEER_MAC_BYTES) != 0 ||
        acceptor != hello->to) {
        return -1;
    }
    transcript_mac(k, 'C', hello, acceptor, in + 18, proof);
    return 0;
}

int peer_proof_check(const struct peer_keys *k, const struct peer_hello *hello, uint64_t self,
                     const uint8_t nonce[PEER_NONCE_BYTES], const uint8_t proof[PEER_PROOF_SIZE])
{
    uint8_t mac[PEER_MAC_BYTES];
    transcript_mac(k, 'C', hello, self, nonce, mac);
    return CRYPTO_memcmp(mac, proof, PEER_MAC_BYTES) == 0 ? 0 : -1;
}

/* ---- HTTP requests between nodes ---------------------------------------------- */

void peer_http_init(struct peer_http *p, const struct peer_keys *keys, uint64_t self)
{
    uint8_t nonce[PEER_HTTP_NONCE_BYTES];
    memset(p, 0, sizeof *p);
    p->keys = keys;
    p->self = self;
    p->boot = util_random_u64();
    util_random_bytes(nonce, sizeof nonce);
    util_hex(nonce, sizeof nonce, p->nonce);
}

/* The MAC of one request, as hex, into @out (65 bytes). */
static void request_mac(const struct peer_keys *k, uint64_t id, uint64_t boot, uint64_t counter,
                        const char *nonce, const char *method, const char *path, const void *body,
                        size_t len, char out[2 * PEER_MAC_BYTES + 1])
{
    uint8_t digest[32], mac[PEER_MAC_BYTES];
    char hex[65];
    char *t;
    size_t n = strlen(method) + strlen(path) + strlen(nonce) + 200;
    int w;

    util_sha256(body, len, digest);
    util_hex(digest, sizeof digest, hex);
    t = malloc(n);
    if (t == NULL) {
        memset(out, '0', 2 * PEER_MAC_BYTES);
        out[2 * PEER_MAC_BYTES] = '\0';
        return;
    }
    w = snprintf(t, n,
                 "varasto peer request v1\n%s\n%s\n%" PRIu64 "\n%016" PRIx64 "\n%" PRIu64
                 "\n%s\n%s",
                 method, path, id, boot, counter, nonce, hex);
    hmac(k->http, t, (size_t)w, mac);
    free(t);
    util_hex(mac, sizeof mac, out);
}

void peer_http_sign(struct peer_http *p, const char *nonce, const char *method, const char *path,
                    const void *body, size_t len, char *out)
{
    char mac[2 * PEER_MAC_BYTES + 1];
    char none[PEER_HTTP_NONCE_HEX + 1];
    if (strlen(nonce) != PEER_HTTP_NONCE_HEX) {
        memset(none, '0', PEER_HTTP_NONCE_HEX);
        none[PEER_HTTP_NONCE_HEX] = '\0';
        nonce = none;
    }
    p->counter++;
    request_mac(p->keys, p->self, p->boot, p->counter, nonce, method, path, body, len, mac);
    snprintf(out, PEER_HTTP_HEADER_MAX, HTTP_SCHEME "%" PRIu64 ".%016" PRIx64 ".%" PRIu64 ".%s.%s",
             p->self, p->boot, p->counter, nonce, mac);
}

int peer_http_is_signature(const char *value)
{
    return value != NULL && strncmp(value, HTTP_SCHEME, sizeof HTTP_SCHEME - 1) == 0;
}

/* A decimal or hex field up to @sep: 0 and the value in @v, or -1. */
static int field(const char **s, int base, char sep, uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    int digits = 0;
    for (; *p != sep; p++, digits++) {
        unsigned d;
        if (*p >= '0' && *p <= '9') {
            d = (unsigned)(*p - '0');
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = (unsigned)(*p - 'a' + 10);
        } else {
            return -1;
        }
        if (digits >= (base == 16 ? 16 : 19)) {
            return -1;
        }
        x = x * (uint64_t)base + d;
    }
    if (digits == 0) {
        return -1;
    }
    *v = x;
    *s = p + 1;
    return 0;
}

static struct peer_replay *replay_slot(struct peer_http *p, uint64_t id, uint64_t boot)
{
    struct peer_replay *oldest = &p->replay[0];
    unsigned i;
    for (i = 0; i < PEER_REPLAY_SLOTS; i++) {
        struct peer_replay *r = &p->replay[i];
        if (r->id == id && r->boot == boot) {
            return r;
        }
        if (r->used < oldest->used) {
            oldest = r;
        }
    }
    memset(oldest, 0, sizeof *oldest);
    oldest->id = id;
    oldest->boot = boot;
    return oldest;
}

/* Spend @counter of sender (@id, @boot): 0, or -1 when it was spent already
 * or is too far behind the newest one to tell. */
static int replay_spend(struct peer_http *p, uint64_t id, uint64_t boot, uint64_t counter)
{
    struct peer_replay *r = replay_slot(p, id, boot);
    uint64_t bit;
    r->used = ++p->clock;
    if (counter > r->top) {
        uint64_t shift = counter - r->top, i;
        if (shift >= PEER_REPLAY_WINDOW) {
            memset(r->seen, 0, sizeof r->seen);
        } else {
            for (i = r->top + 1; i <= counter; i++) {
                r->seen[(i % PEER_REPLAY_WINDOW) / 64] &= ~(1ull << (i % 64));
            }
        }
        r->top = counter;
    } else if (r->top - counter >= PEER_REPLAY_WINDOW) {
        return -1;
    }
    bit = 1ull << (counter % 64);
    if (r->seen[(counter % PEER_REPLAY_WINDOW) / 64] & bit) {
        return -1;
    }
    r->seen[(counter % PEER_REPLAY_WINDOW) / 64] |= bit;
    return 0;
}

enum peer_verdict peer_http_verify(struct peer_http *p, const char *value, const char *method,
                                   const char *path, const void *body, size_t len, uint64_t *from)
{
    char expect[2 * PEER_MAC_BYTES + 1], nonce[PEER_HTTP_NONCE_HEX + 1];
    const char *s;
    uint64_t id, boot, counter;

    if (!peer_http_is_signature(value)) {
        return PEER_BAD;
    }
    s = value + sizeof HTTP_SCHEME - 1;
    if (field(&s, 10, '.', &id) != 0 || field(&s, 16, '.', &boot) != 0 ||
        field(&s, 10, '.', &counter) != 0 || id == 0 || counter == 0 ||
        strlen(s) != PEER_HTTP_NONCE_HEX + 1 + 2 * PEER_MAC_BYTES ||
        s[PEER_HTTP_NONCE_HEX] != '.') {
        return PEER_BAD;
    }
    memcpy(nonce, s, PEER_HTTP_NONCE_HEX);
    nonce[PEER_HTTP_NONCE_HEX] = '\0';
    request_mac(p->keys, id, boot, counter, nonce, method, path, body, len, expect);
    if (CRYPTO_memcmp(expect, s + PEER_HTTP_NONCE_HEX + 1, 2 * PEER_MAC_BYTES) != 0) {
        return PEER_BAD;
    }
    /* signed by a holder of the key, for a receiver process that is not
     * this one (or before the sender knew this one's nonce) */
    if (CRYPTO_memcmp(nonce, p->nonce, PEER_HTTP_NONCE_HEX) != 0) {
        return PEER_STALE;
    }
    if (replay_spend(p, id, boot, counter) != 0) {
        return PEER_BAD;
    }
    *from = id;
    return PEER_OK;
}
