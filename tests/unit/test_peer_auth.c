/* Peer authentication: the raft handshake proves the key both ways and
 * binds both nonces, both ids and the address; a hello is bounded and
 * checked byte by byte; a signed HTTP request is valid for its method,
 * path and body, for one receiver process, once. */
#include <stdlib.h>

#include "peer_auth.h"
#include "testlib.h"

static struct peer_keys keys, other;

static void a_hello(struct peer_hello *h)
{
    memset(h, 0, sizeof *h);
    h->from = 2;
    h->to = 1;
    memset(h->nonce, 0x5a, sizeof h->nonce);
    strcpy(h->address, "127.0.0.1:7002");
}

static void test_keys_differ_by_token_and_use(void)
{
    struct peer_keys again;
    CHECK_INT(peer_keys_derive(&again, "the-cluster-token-0123"), 0);
    CHECK(memcmp(again.raft, keys.raft, 32) == 0);
    CHECK(memcmp(keys.raft, keys.http, 32) != 0);
    CHECK(memcmp(keys.raft, other.raft, 32) != 0);
}

static void test_handshake_both_ways(void)
{
    struct peer_hello sent, got;
    uint8_t wire[PEER_HELLO_MAX], answer[PEER_CHALLENGE_SIZE], proof[PEER_PROOF_SIZE];
    uint8_t nonce[PEER_NONCE_BYTES];
    size_t n, alen;

    a_hello(&sent);
    n = peer_hello_encode(&sent, wire);
    CHECK_INT(n, PEER_HELLO_FIXED + strlen(sent.address));
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), 0);
    CHECK_INT(alen, strlen(sent.address));
    CHECK_INT(peer_hello_decode_address(wire + PEER_HELLO_FIXED, alen, &got), 0);
    CHECK_STR(got.address, sent.address);
    CHECK_INT(got.from, 2);
    CHECK_INT(got.to, 1);

    memset(nonce, 0xa5, sizeof nonce);
    peer_challenge_encode(&keys, &got, 1, nonce, answer);
    CHECK_INT(peer_challenge_check(&keys, &sent, answer, proof), 0);
    CHECK_INT(peer_proof_check(&keys, &got, 1, nonce, proof), 0);

    /* another key on either side */
    CHECK_INT(peer_challenge_check(&other, &sent, answer, proof), -1);
    peer_challenge_check(&keys, &sent, answer, proof);
    CHECK_INT(peer_proof_check(&other, &got, 1, nonce, proof), -1);
    /* the acceptor's MAC is no proof of the connector (labels differ) */
    CHECK_INT(peer_proof_check(&keys, &got, 1, nonce, answer + 18 + PEER_NONCE_BYTES), -1);
    /* a proof binds the acceptor's nonce: a replayed proof fails */
    nonce[0] ^= 1;
    CHECK_INT(peer_proof_check(&keys, &got, 1, nonce, proof), -1);
    nonce[0] ^= 1;
    /* ... and the connector's address */
    strcpy(got.address, "127.0.0.1:7003");
    CHECK_INT(peer_proof_check(&keys, &got, 1, nonce, proof), -1);
    /* an answer from another node than the one meant */
    sent.to = 3;
    CHECK_INT(peer_challenge_check(&keys, &sent, answer, proof), -1);
}

static void test_hello_bounds(void)
{
    struct peer_hello h, got;
    uint8_t wire[PEER_HELLO_MAX + 64];
    size_t alen;

    a_hello(&h);
    memset(h.address, 'a', PEER_ADDRESS_MAX);
    h.address[PEER_ADDRESS_MAX] = '\0';
    CHECK_INT(peer_hello_encode(&h, wire), PEER_HELLO_MAX);
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), 0);
    CHECK_INT(alen, PEER_ADDRESS_MAX);

    a_hello(&h);
    peer_hello_encode(&h, wire);
    wire[0] = 'X'; /* not our magic */
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), -1);
    peer_hello_encode(&h, wire);
    wire[8] = 2; /* another version */
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), -1);
    peer_hello_encode(&h, wire);
    wire[58] = 0xff; /* an address longer than the bound */
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), -1);
    peer_hello_encode(&h, wire);
    wire[58] = wire[59] = 0; /* none */
    CHECK_INT(peer_hello_decode_fixed(wire, &got, &alen), -1);
    CHECK_INT(peer_hello_decode_address((const uint8_t *)"a\0b", 3, &got), -1);
    CHECK_INT(peer_hello_decode_address((const uint8_t *)"a b", 3, &got), -1);
    CHECK_INT(peer_hello_decode_address((const uint8_t *)"h\xc3\xa9", 3, &got), -1);
}

static void test_http_signature(void)
{
    struct peer_http sender, receiver, restarted;
    char h[PEER_HTTP_HEADER_MAX];
    uint64_t from = 0;

    peer_http_init(&sender, &keys, 2);
    peer_http_init(&receiver, &keys, 1);
    peer_http_init(&restarted, &keys, 1);
    CHECK(strcmp(receiver.nonce, restarted.nonce) != 0);
    CHECK(peer_http_is_signature("VarastoPeer 1.2.3"));
    CHECK(!peer_http_is_signature("Bearer x"));

    /* not knowing the receiver's nonce yet: valid, but stale */
    peer_http_sign(&sender, "", "POST", "/internal/apply", "abc", 3, h);
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/internal/apply", "abc", 3, &from),
              PEER_STALE);
    peer_http_sign(&sender, receiver.nonce, "POST", "/internal/apply", "abc", 3, h);
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/internal/apply", "abc", 3, &from), PEER_OK);
    CHECK_INT(from, 2);
    /* once */
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/internal/apply", "abc", 3, &from), PEER_BAD);
    /* for that receiver process only */
    CHECK_INT(peer_http_verify(&restarted, h, "POST", "/internal/apply", "abc", 3, &from),
              PEER_STALE);
    /* for that method, path and body */
    peer_http_sign(&sender, receiver.nonce, "POST", "/internal/apply", "abc", 3, h);
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/internal/apply", "abd", 3, &from), PEER_BAD);
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/internal/barrier", "abc", 3, &from),
              PEER_BAD);
    CHECK_INT(peer_http_verify(&receiver, h, "GET", "/internal/apply", "abc", 3, &from), PEER_BAD);
    /* and only from a holder of the key */
    {
        struct peer_http stranger;
        peer_http_init(&stranger, &other, 2);
        peer_http_sign(&stranger, receiver.nonce, "POST", "/x", "", 0, h);
        CHECK_INT(peer_http_verify(&receiver, h, "POST", "/x", "", 0, &from), PEER_BAD);
    }
    /* malformed values */
    CHECK_INT(peer_http_verify(&receiver, "VarastoPeer ", "POST", "/x", "", 0, &from), PEER_BAD);
    CHECK_INT(peer_http_verify(&receiver, "VarastoPeer 2.x.1.a.b", "POST", "/x", "", 0, &from),
              PEER_BAD);
    CHECK_INT(peer_http_verify(&receiver, "VarastoPeer 99999999999999999999.1.1.a.b", "POST", "/x",
                               "", 0, &from),
              PEER_BAD);
}

static void test_replay_window(void)
{
    struct peer_http sender, receiver;
    char first[PEER_HTTP_HEADER_MAX], h[PEER_HTTP_HEADER_MAX], late[PEER_HTTP_HEADER_MAX];
    uint64_t from;
    unsigned i;

    peer_http_init(&sender, &keys, 2);
    peer_http_init(&receiver, &keys, 1);
    peer_http_sign(&sender, receiver.nonce, "POST", "/a", "", 0, first);
    peer_http_sign(&sender, receiver.nonce, "POST", "/a", "", 0, late);
    /* newer ones first: an older one within the window is still good once */
    for (i = 0; i < 10; i++) {
        peer_http_sign(&sender, receiver.nonce, "POST", "/a", "", 0, h);
        CHECK_INT(peer_http_verify(&receiver, h, "POST", "/a", "", 0, &from), PEER_OK);
    }
    CHECK_INT(peer_http_verify(&receiver, late, "POST", "/a", "", 0, &from), PEER_OK);
    CHECK_INT(peer_http_verify(&receiver, late, "POST", "/a", "", 0, &from), PEER_BAD);
    /* one further back than the window can tell: refused */
    for (i = 0; i < PEER_REPLAY_WINDOW; i++) {
        peer_http_sign(&sender, receiver.nonce, "POST", "/a", "", 0, h);
    }
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/a", "", 0, &from), PEER_OK);
    CHECK_INT(peer_http_verify(&receiver, first, "POST", "/a", "", 0, &from), PEER_BAD);
    /* a sender that restarted counts from 1 again, as another process */
    peer_http_init(&sender, &keys, 2);
    peer_http_sign(&sender, receiver.nonce, "POST", "/a", "", 0, h);
    CHECK_INT(peer_http_verify(&receiver, h, "POST", "/a", "", 0, &from), PEER_OK);
}

int main(void)
{
    CHECK_INT(peer_keys_derive(&keys, "the-cluster-token-0123"), 0);
    CHECK_INT(peer_keys_derive(&other, "another-cluster-token"), 0);
    RUN(test_keys_differ_by_token_and_use);
    RUN(test_handshake_both_ways);
    RUN(test_hello_bounds);
    RUN(test_http_signature);
    RUN(test_replay_window);
    return test_report("peer_auth");
}
