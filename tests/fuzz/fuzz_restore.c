/* Snapshot restore: whatever bytes arrive as a snapshot, the node neither
 * crashes nor leaks; a snapshot that is not ours is refused; one it takes
 * leaves a read model that answers queries and applies the next command.
 * Input: a selector byte (even: our 32-byte header is put in front of the
 * rest, so the search spends its time on the database image; odd: the
 * rest is the whole snapshot, header included). */
#include <raft.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.pb-c.h"
#include "entry.h"
#include "fsm.h"
#include "store.h"

#define HEADER 32
#define MAGIC 0x5641525354534e50ull /* "VARSTSNP", fsm_snapshot.c */

static char path[96];

static void remove_files(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", ".restore"};
    char p[128];
    size_t i;
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

/* A directory.Create under root, framed as a log entry. */
static int next_entry(struct raft_buffer *out)
{
    Varasto__DirectoryCreate c = VARASTO__DIRECTORY_CREATE__INIT;
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    uint8_t payload[64];
    c.parent = "root";
    c.name = "after-restore";
    e.command = "directory.Create";
    e.payload.len = protobuf_c_message_pack(&c.base, payload);
    e.payload.data = payload;
    e.nodeid = 1;
    e.timems = 1;
    e.generatedid = "fuzz-restore-dir";
    return entry_encode(&e, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store store;
    struct fsm fsm;
    struct raft_buffer buf;
    uint8_t *p;
    int rv;

    if (size < 1) {
        return 0;
    }
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/varasto-fuzz-restore-%d.db", (int)getpid());
    }
    remove_files();
    memset(&store, 0, sizeof store);
    if (store_open(&store, path) != 0) {
        abort();
    }
    fsm_init(&fsm, &store);

    buf.len = (data[0] % 2 == 0 ? HEADER : 0) + size - 1;
    buf.base = p = raft_malloc(buf.len + 1);
    if (data[0] % 2 == 0) {
        int i;
        memset(p, 0, HEADER);
        for (i = 0; i < 8; i++) {
            p[i] = (uint8_t)(MAGIC >> (8 * i));
        }
        p[8] = 5; /* index 5, past the fresh read model's 0 */
        p[16] = 3;
        p += HEADER;
    }
    memcpy(p, data + 1, size - 1);
    rv = fsm.raft_fsm.restore(&fsm.raft_fsm, &buf);
    if (rv != 0) {
        raft_free(buf.base); /* refused: still the caller's */
    } else {
        /* taken (restore freed the buffer): the read model works */
        struct raft_buffer entry;
        if (store.db == NULL) {
            abort();
        }
        if (next_entry(&entry) == 0) {
            if (fsm_apply_entry(&fsm, &entry, fsm.applied_index + 1) == 0 &&
                fsm.result.status == 0) {
                abort(); /* applied, yet no outcome */
            }
            raft_free(entry.base);
        }
    }
    fsm_close(&fsm);
    store_close(&store);
    remove_files();
    return 0;
}
