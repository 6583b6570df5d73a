/* The peer handshake and request signatures, fed by a stranger: a hello is
 * read within its bounds or refused; an answer or a proof made without the
 * key never passes; no Authorization value passes without the key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peer_auth.h"

static struct peer_keys keys;
static struct peer_http receiver;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct peer_hello h;
    size_t alen;
    uint8_t proof[PEER_PROOF_SIZE], nonce[PEER_NONCE_BYTES] = {1};
    char *value;
    uint64_t from;

    if (keys.raft[0] == 0 && keys.raft[1] == 0) {
        peer_keys_derive(&keys, "the-cluster-token-of-the-fuzzer");
        peer_http_init(&receiver, &keys, 1);
    }
    if (size >= PEER_HELLO_FIXED && peer_hello_decode_fixed(data, &h, &alen) == 0) {
        if (alen == 0 || alen > PEER_ADDRESS_MAX) {
            abort();
        }
        if (size >= PEER_HELLO_FIXED + alen &&
            peer_hello_decode_address(data + PEER_HELLO_FIXED, alen, &h) == 0) {
            if (strlen(h.address) != alen) {
                abort();
            }
            /* what follows the hello, taken as an answer and as a proof */
            if (size >= PEER_HELLO_FIXED + alen + PEER_CHALLENGE_SIZE &&
                peer_challenge_check(&keys, &h, data + PEER_HELLO_FIXED + alen, proof) == 0) {
                abort();
            }
            if (size >= PEER_HELLO_FIXED + alen + PEER_PROOF_SIZE &&
                peer_proof_check(&keys, &h, 1, nonce, data + PEER_HELLO_FIXED + alen) == 0) {
                abort();
            }
        }
    }
    value = malloc(size + 1);
    if (value != NULL) {
        memcpy(value, data, size);
        value[size] = '\0';
        if (peer_http_verify(&receiver, value, "POST", "/internal/apply", data, size, &from) ==
            PEER_OK) {
            abort();
        }
        free(value);
    }
    return 0;
}
