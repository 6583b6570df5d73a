/* Type filters (?types=, a subscription's Types): any list parses into at
 * most TYPE_FILTER_MAX bounded prefixes or is refused; a parsed filter
 * passes a type exactly when the type starts with one of its prefixes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "type_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *list, *type;
    const uint8_t *split = memchr(data, '\n', size);
    size_t llen = split != NULL ? (size_t)(split - data) : size;
    struct type_filter f;
    unsigned i;
    int want = 0;

    list = strndup((const char *)data, llen);
    type = split != NULL ? strndup((const char *)split + 1, size - llen - 1) : strdup("a.B");
    if (list != NULL && type != NULL && type_filter_parse(&f, list) == 0) {
        if (f.n > TYPE_FILTER_MAX) {
            abort();
        }
        for (i = 0; i < f.n; i++) {
            size_t n = strnlen(f.prefixes[i], TYPE_FILTER_PREFIX);
            if (n == 0 || n >= TYPE_FILTER_PREFIX) {
                abort();
            }
            want |= strncmp(type, f.prefixes[i], n) == 0;
        }
        if (f.n == 0) {
            want = 1;
        }
        if (!type_filter_match(&f, type) != !want) {
            abort();
        }
    }
    free(list);
    free(type);
    return 0;
}
