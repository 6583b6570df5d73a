/* Helpers with their own arithmetic: time formatting, buffers and
 * random ids. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "util.h"

/* util_format_time against gmtime_r + strftime over a wide range of days,
 * including leap days and dates before 1970. */
static void test_format_time_matches_libc(void)
{
    int64_t ms;
    unsigned checked = 0;
    for (ms = -4102444800000LL; ms < 7258118400000LL; ms += 86399123LL * 7 + 17) {
        char ours[40], libc[40], date[32];
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int millis = (int)(ms - (int64_t)secs * 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(libc, sizeof libc, "%s.%03dZ", date, millis);
        util_format_time(ms, ours, sizeof ours);
        if (strcmp(ours, libc) != 0) {
            CHECK_STR(ours, libc);
            break;
        }
        checked++;
    }
    CHECK(checked > 10000);
    {
        char t[40];
        util_format_time(1795717800123LL, t, sizeof t);
        CHECK_STR(t, "2026-11-26T18:30:00.123Z");
        util_format_time(951782400000LL, t, sizeof t);
        CHECK_STR(t, "2000-02-29T00:00:00.000Z");
    }
}

static void test_buf(void)
{
    struct buf b;
    char big[300];
    buf_init(&b);
    CHECK_INT(buf_append_int(&b, -9007199254740992LL), 0);
    CHECK_INT(buf_append_str(&b, ","), 0);
    CHECK_INT(buf_append_int(&b, 0), 0);
    CHECK_STR(b.data, "-9007199254740992,0");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(buf_appendf(&b, "[%s]", big), 0);
    CHECK_INT(b.len, 19 + 2 + 299);
    CHECK(b.data[b.len - 1] == ']' && b.data[b.len] == '\0');
    buf_free(&b);
}

/* Generated ids and tokens: the alphabet only, of the length asked, and
 * not twice the same. */
static void test_sha256_vectors(void)
{
    uint8_t d[32];
    char hex[65];
    unsigned i;
    util_sha256("abc", 3, d);
    util_hex(d, sizeof d, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* the same again (the context is reused), and the empty input */
    for (i = 0; i < 2; i++) {
        util_sha256("", 0, d);
        util_hex(d, sizeof d, hex);
        CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}

static void test_random_id(void)
{
    char a[101], b[101];
    size_t i;
    util_random_id(a, 100);
    util_random_id(b, 100);
    CHECK_INT(strlen(a), 100);
    for (i = 0; i < 100; i++) {
        CHECK((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'Z') ||
              (a[i] >= 'a' && a[i] <= 'z'));
    }
    CHECK(strcmp(a, b) != 0);
    CHECK(util_random_u64() != util_random_u64());
}

int main(void)
{
    RUN(test_sha256_vectors);
    RUN(test_random_id);
    RUN(test_format_time_matches_libc);
    RUN(test_buf);
    return test_report("util");
}
