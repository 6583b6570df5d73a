#include "util.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm):
 * strftime and gmtime_r cost more than the rest of a read. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    int64_t era, yy;
    unsigned doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

void util_format_time(int64_t ms, char *out, size_t size)
{
    int64_t secs = ms / 1000;
    int64_t millis = ms % 1000;
    int64_t days, rem;
    unsigned m, d;
    int y;

    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    days = secs / 86400;
    rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    civil_from_days(days, &y, &m, &d);
    if (size < 25 || y < 0 || y > 9999) {
        snprintf(out, size, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60), (int)millis);
        return;
    }
    /* YYYY-MM-DDTHH:MM:SS.mmmZ by hand: this runs for every event and row. */
    {
        unsigned v[7] = {(unsigned)y,
                         m,
                         d,
                         (unsigned)(rem / 3600),
                         (unsigned)(rem / 60 % 60),
                         (unsigned)(rem % 60),
                         (unsigned)millis};
        static const char seps[] = "--T::.Z";
        static const int widths[] = {4, 2, 2, 2, 2, 2, 3};
        char *p = out;
        int i, k;
        for (i = 0; i < 7; i++) {
            for (k = widths[i] - 1; k >= 0; k--) {
                p[k] = (char)('0' + v[i] % 10);
                v[i] /= 10;
            }
            p += widths[i];
            *p++ = seps[i];
        }
        *p = '\0';
    }
}

void util_random_bytes(void *p, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((char *)p + got, len - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "varastod: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        got += (size_t)n;
    }
}

void util_random_id(char *out, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint8_t raw[64];
    size_t i = 0, k = sizeof raw;

    while (i < len) {
        if (k == sizeof raw) {
            util_random_bytes(raw, sizeof raw);
            k = 0;
        }
        /* 248 = 4 x 62: bytes above would favour the first characters */
        if (raw[k] < 248) {
            out[i++] = alphabet[raw[k] % 62];
        }
        k++;
    }
    out[len] = '\0';
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void util_sha256(const void *data, size_t len, uint8_t digest[32])
{
    /* OpenSSL 3's SHA256() looks the algorithm up and makes a context on
     * every call: ~0.9 us of each authenticated request (its token is
     * hashed) in a profile of the read path. One fetched digest, and one
     * context per thread, instead. */
    static __thread EVP_MD_CTX *ctx;
    unsigned n = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
    }
    if (sha256_md == NULL || ctx == NULL || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, digest, &n) != 1 ||
        n != 32) {
        SHA256(data, len, digest);
    }
}

void util_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

static int buf_reserve(struct buf *b, size_t extra)
{
    size_t cap;
    char *p;

    if (b->len + extra + 1 <= b->cap) {
        return 0;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != 0) {
        return -1;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    /* Format straight into the spare room; only a long result formats twice. */
    if (buf_reserve(b, 64) != 0) {
        return -1;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (buf_reserve(b, (size_t)n) != 0) {
            return -1;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int buf_append_int(struct buf *b, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    return buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void util_copy(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (size == 0) {
        return;
    }
    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

char *buf_steal(struct buf *b)
{
    char *data = b->data;
    buf_init(b);
    return data;
}

uint64_t util_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL;
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int util_mkdir_p(const char *path)
{
    char tmp[4096];
    char *p;
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int buf_append_json_string(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    int rv = buf_append(out, "\"", 1);

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6];
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        rv |= buf_append(out, run, (size_t)(s - run));
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rv |= buf_append(out, esc, n);
        run = s + 1;
    }
    rv |= buf_append(out, run, (size_t)(s - run));
    rv |= buf_append(out, "\"", 1);
    return rv;
}

int util_write_file_durably(const char *dir, const char *path, const void *data, size_t len)
{
    char tmp[4096];
    const char *p = data;
    int fd, dfd, saved;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            goto err;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto err;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return -1;
    }
    saved = fsync(dfd);
    close(dfd);
    return saved;
err:
    saved = errno;
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    errno = saved;
    return -1;
}

uint64_t util_random_u64(void)
{
    uint64_t v = 0;
    while (v == 0) {
        util_random_bytes(&v, sizeof v);
    }
    return v;
}

int util_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c = *p;
        size_t n, i;
        unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
            hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n || p[1] < lo || p[1] > hi) {
            return 0;
        }
        for (i = 2; i <= n; i++) {
            if (p[i] < 0x80 || p[i] > 0xBF) {
                return 0;
            }
        }
        p += n + 1;
    }
    return 1;
}
