/* Log entry framing and decoding, as a follower's /internal/apply body and
 * as the FSM's raft entries: any bytes are either refused or frames that
 * cover the body exactly; an entry decoded and encoded again decodes to
 * the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = entry_frames_check(data, size), off = 0, frames = 0;
    while (n > 0 && off < size) {
        struct raft_buffer view, again;
        Varasto__Entry *e, *e2;
        size_t f = entry_frame_size(data + off, size - off);
        if (f == 0 || f > size - off || f % 8 != 0) {
            abort(); /* entry_frames_check said these were frames */
        }
        view.base = (void *)(data + off);
        view.len = f;
        e = entry_decode(&view);
        if (e == NULL || entry_encode(e, &again) != 0) {
            abort();
        }
        e2 = entry_decode(&again);
        if (e2 == NULL || strcmp(e2->command, e->command) != 0 ||
            e2->payload.len != e->payload.len ||
            (e->payload.len > 0 &&
             memcmp(e2->payload.data, e->payload.data, e->payload.len) != 0)) {
            abort();
        }
        varasto__entry__free_unpacked(e2, NULL);
        varasto__entry__free_unpacked(e, NULL);
        raft_free(again.base);
        off += f;
        frames++;
    }
    if (n > 0 && (off != size || frames != n)) {
        abort();
    }
    return 0;
}
