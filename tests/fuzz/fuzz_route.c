/* URL paths against the route table, and percent-decoding: a path either
 * does not match, is refused as malformed, or matches with parameters that
 * are valid UTF-8 without NUL; the scope a command route asks for is one of
 * the known ones. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "http.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = (const char *)data;
    char out[512];
    size_t i;

    for (i = 0; i < api_n_routes; i++) {
        h2o_mem_pool_t pool;
        char *params[HTTP_MAX_PARAMS] = {NULL, NULL};
        int m;
        unsigned k;
        h2o_mem_init_pool(&pool);
        m = http_route_match(&pool, api_routes[i].pattern, path, size, params);
        if (m == 1) {
            for (k = 0; k < HTTP_MAX_PARAMS && params[k] != NULL; k++) {
                if (!util_utf8_valid(params[k], strlen(params[k])) || strlen(params[k]) > size) {
                    abort();
                }
            }
            if (api_routes[i].scope_of != NULL) {
                int scope = api_routes[i].scope_of(params);
                if (scope != AUTH_WRITE && scope != AUTH_ADMIN) {
                    abort();
                }
            }
        } else if (m != 0 && m != -1) {
            abort();
        }
        h2o_mem_clear_pool(&pool);
    }
    for (i = 0; i < 2; i++) {
        if (http_url_decode(path, size, out, sizeof out, (int)i) == 0 &&
            (strlen(out) > size || !util_utf8_valid(out, strlen(out)))) {
            abort();
        }
    }
    return 0;
}
