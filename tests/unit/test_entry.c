/* The log entry codec: what raft_uv stores is a frame of a multiple of 8
 * bytes, and anything that is not a whole, well-formed frame is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "testlib.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* An entry with every field set; @command's length varies the frame size. */
static void encode(const char *command, const char *payload, struct raft_buffer *out)
{
    static uint8_t hash[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    e.command = (char *)command;
    e.payload.data = (uint8_t *)payload;
    e.payload.len = strlen(payload);
    e.idempotencykey = "key-1";
    e.has_requesthash = 1;
    e.requesthash.data = hash;
    e.requesthash.len = sizeof hash;
    e.nodeid = 3;
    e.timems = 1764180000123LL;
    e.generatedid = "gen-id";
    e.has_tokenhash = 1;
    e.tokenhash.data = hash;
    e.tokenhash.len = sizeof hash;
    out->base = NULL;
    out->len = 0;
    CHECK_INT(entry_encode(&e, out), 0);
}

/* A directory.Create message: Parent "root", Name "a" (9 bytes). */
#define CREATE_PAYLOAD "\n\004root\022\001a"

static void test_round_trip(void)
{
    struct raft_buffer buf;
    Varasto__Entry *d;

    encode("directory.Create", CREATE_PAYLOAD, &buf);
    d = entry_decode(&buf);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_STR(d->command, "directory.Create");
        CHECK_INT(d->payload.len, 9);
        CHECK(memcmp(d->payload.data, CREATE_PAYLOAD, 9) == 0);
        CHECK_STR(d->idempotencykey, "key-1");
        CHECK_INT(d->has_requesthash, 1);
        CHECK_INT(d->requesthash.len, 32);
        CHECK_INT(d->requesthash.data[7], 8);
        CHECK_INT(d->nodeid, 3);
        CHECK_INT(d->timems, 1764180000123LL);
        CHECK_STR(d->generatedid, "gen-id");
        CHECK_INT(d->has_tokenhash, 1);
        varasto__entry__free_unpacked(d, NULL);
    }
    raft_free(buf.base);
}

/* Every frame is a multiple of 8 bytes, with the fewest zero bytes that
 * make it so, and entry_frame_size measures exactly that frame. */
static void test_padding(void)
{
    char command[32];
    size_t n;

    for (n = 1; n < sizeof command; n++) {
        struct raft_buffer buf;
        const uint8_t *p;
        size_t len, i;
        memset(command, 'c', n);
        command[n] = '\0';
        encode(command, "payload", &buf);
        p = buf.base;
        len = (size_t)p[4] | (size_t)p[5] << 8 | (size_t)p[6] << 16 | (size_t)p[7] << 24;
        CHECK_INT(buf.len % 8, 0);
        CHECK(buf.len >= 8 + len && buf.len < 8 + len + 8);
        for (i = 8 + len; i < buf.len; i++) {
            CHECK_INT(p[i], 0);
        }
        CHECK_INT(entry_frame_size(buf.base, buf.len), buf.len);
        raft_free(buf.base);
    }
}

static void test_frame_size_truncated(void)
{
    struct raft_buffer buf;
    size_t avail;

    encode("directory.Create", "x", &buf);
    CHECK_INT(entry_frame_size(buf.base, buf.len), buf.len);
    /* a batch cut anywhere inside a frame holds no whole frame */
    for (avail = 0; avail < buf.len; avail++) {
        CHECK_INT(entry_frame_size(buf.base, avail), 0);
    }
    /* bytes after the frame are the next frame's, not this one's */
    {
        uint8_t *big = calloc(1, buf.len + 16);
        memcpy(big, buf.base, buf.len);
        CHECK_INT(entry_frame_size(big, buf.len + 16), buf.len);
        free(big);
    }
    raft_free(buf.base);
}

static void test_frame_size_garbage(void)
{
    uint8_t junk[64];
    size_t i;
    for (i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 37 + 11);
    }
    CHECK_INT(entry_frame_size(junk, sizeof junk), 0);
    memset(junk, 0, sizeof junk);
    CHECK_INT(entry_frame_size(junk, sizeof junk), 0);
}

static void test_back_to_back(void)
{
    struct raft_buffer a, b;
    uint8_t *batch;
    size_t off = 0, first, second;
    Varasto__Entry *d;
    struct raft_buffer view;

    encode("directory.Create", "first", &a);
    encode("collection.ChangeDescription", "second, longer", &b);
    batch = malloc(a.len + b.len);
    memcpy(batch, a.base, a.len);
    memcpy(batch + a.len, b.base, b.len);

    first = entry_frame_size(batch, a.len + b.len);
    CHECK_INT(first, a.len);
    off += first;
    second = entry_frame_size(batch + off, a.len + b.len - off);
    CHECK_INT(second, b.len);
    off += second;
    CHECK_INT(entry_frame_size(batch + off, a.len + b.len - off), 0);

    /* each frame decodes on its own */
    view.base = batch + first;
    view.len = second;
    d = entry_decode(&view);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_STR(d->command, "collection.ChangeDescription");
        varasto__entry__free_unpacked(d, NULL);
    }
    free(batch);
    raft_free(a.base);
    raft_free(b.base);
}

static void test_wrong_magic(void)
{
    struct raft_buffer buf;
    encode("directory.Create", "x", &buf);
    put_u32(buf.base, ENTRY_MAGIC ^ 0x100u);
    CHECK(entry_decode(&buf) == NULL);
    CHECK_INT(entry_frame_size(buf.base, buf.len), 0);
    raft_free(buf.base);
}

static void test_length_past_buffer(void)
{
    struct raft_buffer buf;
    uint8_t *p;
    encode("directory.Create", "x", &buf);
    p = buf.base;
    put_u32(p + 4, (uint32_t)(buf.len - 8 + 1));
    CHECK(entry_decode(&buf) == NULL);
    CHECK_INT(entry_frame_size(buf.base, buf.len), 0);
    put_u32(p + 4, 0xffffffffu);
    CHECK(entry_decode(&buf) == NULL);
    CHECK_INT(entry_frame_size(buf.base, buf.len), 0);
    /* shorter than a header */
    buf.len = 7;
    CHECK(entry_decode(&buf) == NULL);
    raft_free(buf.base);
}

static void test_corrupt_payload(void)
{
    struct raft_buffer buf;
    uint8_t *p;
    uint32_t len;
    encode("directory.Create", "x", &buf);
    p = buf.base;
    len = (uint32_t)p[4] | (uint32_t)p[5] << 8;
    /* invalid protobuf: an unterminated varint */
    memset(p + 8, 0xff, len);
    CHECK(entry_decode(&buf) == NULL);
    /* valid protobuf framing that lacks the required fields */
    put_u32(p + 4, 0);
    CHECK(entry_decode(&buf) == NULL);
    raft_free(buf.base);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_padding);
    RUN(test_frame_size_truncated);
    RUN(test_frame_size_garbage);
    RUN(test_back_to_back);
    RUN(test_wrong_magic);
    RUN(test_length_past_buffer);
    RUN(test_corrupt_payload);
    return test_report("entry");
}
