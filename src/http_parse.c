/* Request parsing for the HTTP server: percent-decoding, query parameters,
 * headers, integers, and matching a path against a route pattern. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

#define HTTP_SEGMENT_MAX 512

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int http_url_decode(const char *src, size_t len, char *out, size_t size, int plus_is_space)
{
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                return -1;
            }
            hi = hexval(src[i + 1]);
            lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= size || c == '\0') {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return util_utf8_valid(out, o) ? 0 : -1;
}

int http_query(h2o_req_t *req, const char *name, char *out, size_t size)
{
    const char *p, *end;
    size_t nlen = strlen(name);

    if (req->query_at == SIZE_MAX) {
        return 0;
    }
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            return http_url_decode(v, (size_t)(stop - v), out, size, 1) == 0 ? 1 : -1;
        }
        p = stop + 1;
    }
    return 0;
}

int http_header(h2o_req_t *req, const char *name, char *out, size_t size)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    h2o_iovec_t v;
    if (i < 0) {
        return 0;
    }
    v = req->headers.entries[i].value;
    if (v.len + 1 > size) {
        return -1;
    }
    memcpy(out, v.base, v.len);
    out[v.len] = '\0';
    return 1;
}

int http_u64_param(h2o_req_t *req, const char *qname, const char *hname, unsigned long long *out)
{
    char text[32];
    char *end;
    int rv = 0;

    if (hname != NULL) {
        rv = http_header(req, hname, text, sizeof text);
    }
    if (rv == 0 && qname != NULL) {
        rv = http_query(req, qname, text, sizeof text);
    }
    if (rv <= 0) {
        return rv;
    }
    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }
    errno = 0;
    *out = strtoull(text, &end, 10);
    /* Seqs and indexes are int64 in SQLite: above 2^63-1 is out of range */
    return *end == '\0' && errno == 0 && *out <= INT64_MAX ? 1 : -1;
}

int http_route_match(h2o_mem_pool_t *pool, const char *pattern, const char *path, size_t len,
                     char **params)
{
    const char *p = path, *end = path + len;
    unsigned n = 0;
    int bad = 0;

    while (*pattern != '\0') {
        if (*pattern == '*') {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *stop = slash ? slash : end;
            char seg[HTTP_SEGMENT_MAX];
            size_t l;
            if (stop == p || n == HTTP_MAX_PARAMS) {
                return 0;
            }
            if (http_url_decode(p, (size_t)(stop - p), seg, sizeof seg, 0) != 0) {
                bad = 1; /* -1 if the rest matches: the path has this shape */
                seg[0] = '\0';
            }
            l = strlen(seg);
            params[n] = h2o_mem_alloc_pool(pool, l + 1);
            memcpy(params[n], seg, l + 1);
            n++;
            p = stop;
            pattern++;
            continue;
        }
        if (p == end || *p != *pattern) {
            return 0;
        }
        p++;
        pattern++;
    }
    return p != end ? 0 : bad ? -1 : 1;
}
