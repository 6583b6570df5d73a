/* Raft log entry codec: the Entry envelope (proto/entry.proto), one per
 * command, framed for raft_uv, whose entry buffers must be a multiple of 8
 * bytes long. A raft log entry holds one or more frames back to back: the
 * commands a leader accepted in one loop iteration.
 *
 * Frame: [u32 magic LE][u32 payload length LE][protobuf Entry][zero padding]. */
#ifndef VARASTO_ENTRY_H
#define VARASTO_ENTRY_H

#include <raft.h>

#include "entry.pb-c.h"

#define ENTRY_MAGIC 0x56415231u /* "VAR1" */

/* Pack @e into a new raft_malloc'ed, 8-byte-aligned buffer in @out.
 * Returns 0 or RAFT_NOMEM. On success the caller owns out->base. */
int entry_encode(const Varasto__Entry *e, struct raft_buffer *out);

/* Unpack the first frame of @buf. Returns a new Entry (free with
 * varasto__entry__free_unpacked(e, NULL)) or NULL if the frame is malformed. */
Varasto__Entry *entry_decode(const struct raft_buffer *buf);

/* The size of the frame at @p (header, entry, padding), or 0 if the @avail
 * bytes there do not start with a whole frame. Frames concatenate: a batch
 * of entries is frames back to back. */
size_t entry_frame_size(const void *p, size_t avail);

/* How many frames the @len bytes at @p hold, each a whole frame holding a
 * well-formed Entry, back to back to the end; 0 when any is not (or there
 * are none). */
size_t entry_frames_check(const void *p, size_t len);

#endif
