/* How nodes prove to each other that they hold the cluster token, without
 * sending it (SPEC 7.1).
 *
 * Two keys are derived from the token with HKDF-SHA256: one for the raft
 * port's handshake, one for HTTP requests between nodes.
 *
 * Raft port: the connecting node sends a hello (its id, the id it means to
 * reach, a fresh nonce, its raft address); the accepting node answers with
 * its id, its own fresh nonce and an HMAC over the whole exchange; the
 * connector checks it and answers with its own HMAC over the same exchange
 * (labelled differently, so one side's MAC never serves as the other's).
 * Only then does raft see the connection. Fixed, small sizes: a peer cannot
 * make a node buffer more than PEER_HELLO_MAX bytes.
 *
 * HTTP: each request between nodes carries
 *   Authorization: VarastoPeer ID.BOOT.COUNTER.NONCE.MAC
 * where MAC is an HMAC over the method, the path, those fields and the
 * body's SHA-256. NONCE is the receiving process's own random nonce (it
 * hands it out in X-Varasto-Peer-Nonce with a 401), so a request recorded
 * before the receiver restarted is refused; within one receiver process, a
 * (ID, BOOT, COUNTER) is accepted once (a sliding window per sender process).
 *
 * Neither proves anything about bytes after the handshake to an attacker
 * that can rewrite traffic: that is what peer TLS is for. */
#ifndef VARASTO_PEER_AUTH_H
#define VARASTO_PEER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define PEER_NONCE_BYTES 32
#define PEER_MAC_BYTES 32
#define PEER_ADDRESS_MAX 255
#define PEER_HELLO_FIXED                                                                           \
    62 /* magic 8, version, flags, from 8, to 8, nonce 32, address length 2, 2 reserved */
#define PEER_HELLO_MAX (PEER_HELLO_FIXED + PEER_ADDRESS_MAX)
#define PEER_CHALLENGE_SIZE 82 /* magic 8, version, flags, id 8, nonce 32, mac 32 */
#define PEER_PROOF_SIZE PEER_MAC_BYTES

struct peer_keys {
    uint8_t raft[32];
    uint8_t http[32];
};

/* Derive both keys from the cluster token @token. Returns 0 or -1. */
int peer_keys_derive(struct peer_keys *k, const char *token);

/* ---- raft port handshake ------------------------------------------------------ */

struct peer_hello {
    uint64_t from;                      /* the connecting node's raft id */
    uint64_t to;                        /* the id it means to reach */
    uint8_t nonce[PEER_NONCE_BYTES];    /* the connector's */
    char address[PEER_ADDRESS_MAX + 1]; /* the connector's raft address */
};

/* Encode @h into @out (at least PEER_HELLO_MAX bytes); returns its size, or
 * 0 when the address is too long. */
size_t peer_hello_encode(const struct peer_hello *h, uint8_t *out);

/* Decode the fixed part of a hello (PEER_HELLO_FIXED bytes at @p) into @h
 * and the address length that follows into @address_len. Returns 0, or -1
 * when it is not a hello of this protocol version. */
int peer_hello_decode_fixed(const uint8_t *p, struct peer_hello *h, size_t *address_len);

/* Take the @len bytes of address at @p into @h. Returns 0, or -1 when they
 * hold a NUL or a byte outside printable ASCII. */
int peer_hello_decode_address(const uint8_t *p, size_t len, struct peer_hello *h);

/* The accepting node's answer to @hello: its id @self, its fresh nonce
 * @nonce and its MAC, into @out (PEER_CHALLENGE_SIZE bytes). */
void peer_challenge_encode(const struct peer_keys *k, const struct peer_hello *hello, uint64_t self,
                           const uint8_t nonce[PEER_NONCE_BYTES], uint8_t out[PEER_CHALLENGE_SIZE]);

/* The connector's check of the answer @in to its @hello: 0 when it comes
 * from a holder of the key and from node hello->to, with the connector's
 * proof in @proof; -1 otherwise. */
int peer_challenge_check(const struct peer_keys *k, const struct peer_hello *hello,
                         const uint8_t in[PEER_CHALLENGE_SIZE], uint8_t proof[PEER_PROOF_SIZE]);

/* The acceptor's check of the connector's @proof for @hello, answered by
 * node @self with @nonce. Returns 0 or -1. */
int peer_proof_check(const struct peer_keys *k, const struct peer_hello *hello, uint64_t self,
                     const uint8_t nonce[PEER_NONCE_BYTES], const uint8_t proof[PEER_PROOF_SIZE]);

/* ---- HTTP requests between nodes ---------------------------------------------- */

#define PEER_HTTP_NONCE_BYTES 16
#define PEER_HTTP_NONCE_HEX (2 * PEER_HTTP_NONCE_BYTES)
#define PEER_HTTP_HEADER_MAX 200
#define PEER_REPLAY_SLOTS 64
#define PEER_REPLAY_WINDOW 1024 /* counters a sender may have in flight out of order */

struct peer_replay {
    uint64_t id, boot, top; /* highest counter seen */
    uint64_t seen[PEER_REPLAY_WINDOW / 64];
    uint64_t used; /* for eviction: the verifier's clock of last use */
};

struct peer_http {
    const struct peer_keys *keys;        /* borrowed */
    uint64_t self;                       /* this node's id */
    uint64_t boot;                       /* this process, as a sender (random) */
    uint64_t counter;                    /* last one sent */
    char nonce[PEER_HTTP_NONCE_HEX + 1]; /* this process, as a receiver (hex) */
    struct peer_replay replay[PEER_REPLAY_SLOTS];
    uint64_t clock;
};

enum peer_verdict {
    PEER_OK = 0,
    PEER_STALE, /* signed for another receiver process: fetch its nonce, sign again */
    PEER_BAD,   /* not a signature of the cluster key, or a replay */
};

/* Set up @p for node @self with @keys (borrowed); fresh nonce and boot. */
void peer_http_init(struct peer_http *p, const struct peer_keys *keys, uint64_t self);

/* Write "VarastoPeer ..." for a request of @method to @path with @len
 * bytes of @body, meant for the receiver whose nonce is @nonce (hex; ""
 * when not known yet), into @out (PEER_HTTP_HEADER_MAX bytes). */
void peer_http_sign(struct peer_http *p, const char *nonce, const char *method, const char *path,
                    const void *body, size_t len, char *out);

/* Check the Authorization value @value of a request; on PEER_OK the
 * sender's id is in @from and its counter is spent. */
enum peer_verdict peer_http_verify(struct peer_http *p, const char *value, const char *method,
                                   const char *path, const void *body, size_t len, uint64_t *from);

/* Whether @value is meant as a peer signature (starts "VarastoPeer "). */
int peer_http_is_signature(const char *value);

#endif
