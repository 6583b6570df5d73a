/* The HTTP server's request parsing (http_parse.c): percent-decoding,
 * route patterns, query parameters, headers and integer parameters. */
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "testlib.h"

static void test_url_decode(void)
{
    char out[16];
    CHECK_INT(http_url_decode("a%20b", 5, out, sizeof out, 0), 0);
    CHECK_STR(out, "a b");
    CHECK_INT(http_url_decode("a+b", 3, out, sizeof out, 1), 0);
    CHECK_STR(out, "a b");
    CHECK_INT(http_url_decode("a+b", 3, out, sizeof out, 0), 0);
    CHECK_STR(out, "a+b"); /* '+' is a space in queries only */
    CHECK_INT(http_url_decode("%2F%2f", 6, out, sizeof out, 0), 0);
    CHECK_STR(out, "//");
    /* truncated or bad escapes, a NUL, and a result that does not fit */
    CHECK_INT(http_url_decode("a%2", 3, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("a%g0", 4, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("a%00b", 5, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("0123456789abcdef", 16, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("0123456789abcde", 15, out, sizeof out, 0), 0);
    /* the result must be UTF-8: a stray continuation byte, a truncated
     * sequence, an overlong '/', a surrogate */
    CHECK_INT(http_url_decode("%80", 3, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("%E2%82", 6, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("%C0%AF", 6, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("%ED%A0%80", 9, out, sizeof out, 0), -1);
    CHECK_INT(http_url_decode("%E2%82%AC", 9, out, sizeof out, 0), 0);
    CHECK_STR(out, "\xe2\x82\xac");
}

static void test_route_match(void)
{
    h2o_mem_pool_t pool;
    char *params[HTTP_MAX_PARAMS] = {NULL, NULL};
    const char *p;

    h2o_mem_init_pool(&pool);
    p = "/api_v2/collections/c%201/changesets";
    CHECK_INT(http_route_match(&pool, "/api_v2/collections/*/changesets", p, strlen(p), params), 1);
    CHECK_STR(params[0], "c 1");
    p = "/command/directory.Create";
    CHECK_INT(http_route_match(&pool, "/command/*", p, strlen(p), params), 1);
    CHECK_STR(params[0], "directory.Create");
    /* a '*' is one non-empty segment: no more, no less */
    p = "/command/";
    CHECK_INT(http_route_match(&pool, "/command/*", p, strlen(p), params), 0);
    p = "/command/a/b";
    CHECK_INT(http_route_match(&pool, "/command/*", p, strlen(p), params), 0);
    /* literal parts must match whole */
    p = "/api_v2/events/streamx";
    CHECK_INT(http_route_match(&pool, "/api_v2/events/stream", p, strlen(p), params), 0);
    p = "/api_v2/events";
    CHECK_INT(http_route_match(&pool, "/api_v2/events/stream", p, strlen(p), params), 0);
    /* a segment that does not decode, holds NUL or is no UTF-8: the path
     * has the route's shape but is malformed (400, not 404) */
    p = "/api_v2/directories/a%zz";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p, strlen(p), params), -1);
    p = "/api_v2/directories/a%00";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p, strlen(p), params), -1);
    p = "/api_v2/directories/%C3%28";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p, strlen(p), params), -1);
    p = "/api_v2/directories/a%zz/more";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p, strlen(p), params), 0);
    p = "/api_v2/directories/%C3%A4";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p, strlen(p), params), 1);
    CHECK_STR(params[0], "\xc3\xa4");
    /* the path's length bounds the match, not a NUL */
    p = "/api_v2/directories/root?x=1";
    CHECK_INT(http_route_match(&pool, "/api_v2/directories/*", p,
                               strlen("/api_v2/directories/root"), params),
              1);
    CHECK_STR(params[0], "root");
    h2o_mem_clear_pool(&pool);
}

/* A request with @path (query included) and one header. */
static void fake_request(h2o_req_t *req, const char *path, const char *header, const char *value)
{
    const char *q = strchr(path, '?');
    memset(req, 0, sizeof *req);
    h2o_mem_init_pool(&req->pool);
    req->path = h2o_iovec_init(path, strlen(path));
    req->query_at = q != NULL ? (size_t)(q - path) : SIZE_MAX;
    if (header != NULL) {
        h2o_add_header_by_str(&req->pool, &req->headers, header, strlen(header), 0, NULL, value,
                              strlen(value));
    }
}

static void test_query_and_headers(void)
{
    h2o_req_t req;
    char out[16];
    unsigned long long v = 0;

    fake_request(&req, "/api_v2/events?after=12&types=a.%2Cb&limit=&x", "last-event-id", "40");
    CHECK_INT(http_query(&req, "after", out, sizeof out), 1);
    CHECK_STR(out, "12");
    CHECK_INT(http_query(&req, "types", out, sizeof out), 1);
    CHECK_STR(out, "a.,b");
    CHECK_INT(http_query(&req, "limit", out, sizeof out), 1);
    CHECK_STR(out, "");
    CHECK_INT(http_query(&req, "x", out, sizeof out), 1);
    CHECK_INT(http_query(&req, "afte", out, sizeof out), 0); /* whole names only */
    CHECK_INT(http_query(&req, "missing", out, sizeof out), 0);
    CHECK_INT(http_query(&req, "after", out, 2), -1); /* does not fit */
    CHECK_INT(http_header(&req, "last-event-id", out, sizeof out), 1);
    CHECK_STR(out, "40");
    CHECK_INT(http_header(&req, "authorization", out, sizeof out), 0);
    /* the header wins over the query parameter */
    CHECK_INT(http_u64_param(&req, "after", "last-event-id", &v), 1);
    CHECK_INT(v, 40);
    CHECK_INT(http_u64_param(&req, "after", NULL, &v), 1);
    CHECK_INT(v, 12);
    CHECK_INT(http_u64_param(&req, "limit", NULL, &v), -1); /* empty */
    CHECK_INT(http_u64_param(&req, "nothing", NULL, &v), 0);
    h2o_mem_clear_pool(&req.pool);

    fake_request(&req, "/x?a=-1&b=1x&c=%2B1&d=007", NULL, NULL);
    CHECK_INT(http_u64_param(&req, "a", NULL, &v), -1);
    CHECK_INT(http_u64_param(&req, "b", NULL, &v), -1);
    CHECK_INT(http_u64_param(&req, "c", NULL, &v), -1);
    CHECK_INT(http_u64_param(&req, "d", NULL, &v), 1);
    CHECK_INT(v, 7);
    h2o_mem_clear_pool(&req.pool);

    /* above 2^63-1 is out of range (it used to wrap: after=2^64-1 read as
     * "after 0"), and so is anything strtoull cannot hold */
    fake_request(&req,
                 "/x?a=9223372036854775807&b=9223372036854775808&c=18446744073709551615"
                 "&d=99999999999999999999",
                 NULL, NULL);
    CHECK_INT(http_u64_param(&req, "a", NULL, &v), 1);
    CHECK(v == 9223372036854775807ULL);
    CHECK_INT(http_u64_param(&req, "b", NULL, &v), -1);
    CHECK_INT(http_u64_param(&req, "c", NULL, &v), -1);
    CHECK_INT(http_u64_param(&req, "d", NULL, &v), -1);
    h2o_mem_clear_pool(&req.pool);

    fake_request(&req, "/no-query", NULL, NULL);
    CHECK_INT(http_query(&req, "a", out, sizeof out), 0);
    h2o_mem_clear_pool(&req.pool);
}

int main(void)
{
    RUN(test_url_decode);
    RUN(test_route_match);
    RUN(test_query_and_headers);
    return test_report("http");
}
