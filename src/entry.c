#include "entry.h"

#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int entry_encode(const Varasto__Entry *e, struct raft_buffer *out)
{
    size_t len = varasto__entry__get_packed_size(e);
    size_t total = (8 + len + 7) & ~(size_t)7;
    uint8_t *p = raft_malloc(total);

    if (p == NULL) {
        return RAFT_NOMEM;
    }
    put_u32(p, ENTRY_MAGIC);
    put_u32(p + 4, (uint32_t)len);
    varasto__entry__pack(e, p + 8);
    memset(p + 8 + len, 0, total - 8 - len);
    out->base = p;
    out->len = total;
    return 0;
}

Varasto__Entry *entry_decode(const struct raft_buffer *buf)
{
    const uint8_t *p = buf->base;
    uint32_t len;

    if (buf->len < 8 || get_u32(p) != ENTRY_MAGIC) {
        return NULL;
    }
    len = get_u32(p + 4);
    if ((size_t)len > buf->len - 8) {
        return NULL;
    }
    return varasto__entry__unpack(NULL, len, p + 8);
}

size_t entry_frame_size(const void *p, size_t avail)
{
    const uint8_t *b = p;
    size_t total;
    if (avail < 8 || get_u32(b) != ENTRY_MAGIC) {
        return 0;
    }
    total = (8 + (size_t)get_u32(b + 4) + 7) & ~(size_t)7;
    return total <= avail ? total : 0;
}

size_t entry_frames_check(const void *p, size_t len)
{
    const uint8_t *bytes = p;
    size_t off = 0, n = 0;
    while (bytes != NULL && off < len) {
        struct raft_buffer view;
        Varasto__Entry *e;
        size_t size = entry_frame_size(bytes + off, len - off);
        if (size == 0) {
            return 0;
        }
        view.base = (void *)(bytes + off);
        view.len = size;
        e = entry_decode(&view);
        if (e == NULL) {
            return 0;
        }
        varasto__entry__free_unpacked(e, NULL);
        off += size;
        n++;
    }
    return n;
}
