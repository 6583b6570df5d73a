/* posix_fallocate as varastod defines it (src/segment_fill.c): raft's open
 * segments come back allocated and written with zeros, so raft_uv's
 * RWF_NOWAIT appends never meet an unwritten extent; every other file gets
 * the C library's plain allocation. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define LEN ((off_t)(1u << 20) + 4096)

static char dir[64];

/* Bytes of the file in extents flagged unwritten, or -1 if FIEMAP is not
 * available here. */
static long long unwritten_bytes(int fd)
{
    enum { MAX_EXTENTS = 64 };
    struct fiemap *fm = calloc(1, sizeof *fm + MAX_EXTENTS * sizeof(struct fiemap_extent));
    long long total = 0;

    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = MAX_EXTENTS;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
        free(fm);
        return -1;
    }
    for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
        if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) {
            total += (long long)fm->fm_extents[i].fe_length;
        }
    }
    free(fm);
    return total;
}

static int create(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* raft_uv opens its segments this way before allocating them */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_DSYNC, 0600);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    return fd;
}

static int all_zero(const char *name, off_t len)
{
    char path[128];
    char buf[4096];
    off_t seen = 0;
    ssize_t n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != 0) {
                close(fd);
                return 0;
            }
        }
        seen += n;
    }
    close(fd);
    return seen == len;
}

static void test_open_segment_is_written(void)
{
    int plain = create("plain");
    int segment = create("open-7");
    struct stat st;

    CHECK_INT(posix_fallocate(plain, 0, LEN), 0);
    CHECK_INT(posix_fallocate(segment, 0, LEN), 0);
    CHECK_INT(fstat(segment, &st), 0);
    CHECK_INT(st.st_size, LEN);
    CHECK(all_zero("open-7", LEN));
    long long plain_unwritten = unwritten_bytes(plain);
    if (plain_unwritten <= 0) {
        /* tmpfs and the like: no unwritten extents to tell apart */
        fprintf(stderr, "note: %s has no unwritten extents; only size and zeros checked\n", dir);
    } else {
        CHECK_INT(plain_unwritten, LEN);
        CHECK_INT(unwritten_bytes(segment), 0);
    }
    close(plain);
    close(segment);
}

static void test_errors_come_back(void)
{
    /* a descriptor that is not open for writing: the C library's error */
    char path[128];
    snprintf(path, sizeof path, "%s/open-8", dir);
    close(create("open-8"));
    int fd = open(path, O_RDONLY);
    CHECK_INT(posix_fallocate(fd, 0, LEN), EBADF);
    close(fd);
    CHECK_INT(posix_fallocate(-1, 0, LEN), EBADF);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    RUN(test_open_segment_is_written);
    RUN(test_errors_come_back);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return test_report("segment_fill");
}
