/* Raft's open log segments are filled with zeros when they are allocated.
 *
 * raft_uv (libraft 0.15) prepares each open segment ahead of use with
 * posix_fallocate, which on ext4 and xfs leaves "unwritten" extents, and
 * then appends to it with direct I/O, first trying io_submit with
 * RWF_NOWAIT on the loop thread. A write that reaches a block never
 * written before needs its extent converted, which the kernel will not do
 * without blocking: the write completes with EAGAIN and raft_uv submits it
 * again from libuv's thread pool, a thread hop and one or two loop
 * iterations later. On a loaded leader every append that extended into a
 * fresh block, about two in three, took that path.
 *
 * Writing real zeros over the new segment (as PostgreSQL does for each new
 * WAL file) turns every later append into an overwrite, which RWF_NOWAIT
 * accepts. libraft has no hook for this, so this file defines
 * posix_fallocate; the dynamic linker binds libraft's call to it (libraft
 * is its only caller in the process). For any file other than a raft open
 * segment it hands the call to the C library unchanged.
 *
 * The fill runs where raft_uv allocates, on a thread-pool thread, through
 * a second descriptor opened with O_DIRECT (no page cache for raft's own
 * direct writes to contend with), in chunks small enough not to hold a
 * concurrent raft write behind a long transfer, and ends with one
 * fdatasync so the extents are durable before the first append. */
#define _GNU_SOURCE /* O_DIRECT, RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILL_CHUNK (256u << 10)
#define FILL_ALIGN 4096u

int posix_fallocate(int fd, off_t offset, off_t len);

static int libc_posix_fallocate(int fd, off_t offset, off_t len)
{
    int (*next)(int, off_t, off_t);

    *(void **)&next = dlsym(RTLD_NEXT, "posix_fallocate");
    if (next == NULL) {
        return ENOSYS;
    }
    return next(fd, offset, len);
}

static int is_open_segment(int fd)
{
    char link[64];
    char path[4096];
    const char *base;
    ssize_t n;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return 0;
    }
    path[n] = '\0';
    base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    return strncmp(base, "open-", 5) == 0;
}

/* Overwrites [offset, offset + len) with zeros, whole aligned blocks only.
 * Returns 0 or an errno value. A file system without direct I/O (tmpfs)
 * has no unwritten extents to convert, and a device that refuses our
 * alignment keeps them: the segment then stays as allocated, which is
 * only slower. */
static int zero_fill(int fd, off_t offset, off_t len)
{
    char link[64];
    void *zeros = NULL;
    off_t end = offset + len;
    int direct;
    int err = 0;

    if (offset % FILL_ALIGN != 0) {
        return 0;
    }
    end -= end % FILL_ALIGN;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    direct = open(link, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (direct < 0) {
        return errno == EINVAL ? 0 : errno;
    }
    if (posix_memalign(&zeros, FILL_ALIGN, FILL_CHUNK) != 0) {
        close(direct);
        return ENOMEM;
    }
    memset(zeros, 0, FILL_CHUNK);
    while (offset < end) {
        size_t n = (size_t)(end - offset) < FILL_CHUNK ? (size_t)(end - offset) : FILL_CHUNK;
        ssize_t w = pwrite(direct, zeros, n, offset);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EINVAL) {
            break; /* the device wants larger alignment: leave it unwritten */
        }
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        offset += w;
    }
    if (err == 0 && fdatasync(direct) != 0) {
        err = errno;
    }
    free(zeros);
    close(direct);
    return err;
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    int rv = libc_posix_fallocate(fd, offset, len);

    if (rv != 0 || !is_open_segment(fd)) {
        return rv;
    }
    return zero_fill(fd, offset, len);
}
