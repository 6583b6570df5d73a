#include "type_filter.h"

#include <string.h>

int type_filter_parse(struct type_filter *f, const char *list)
{
    const char *p = list;
    f->n = 0;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            if (f->n == TYPE_FILTER_MAX || len >= sizeof f->prefixes[0]) {
                return -1;
            }
            memcpy(f->prefixes[f->n], p, len);
            f->prefixes[f->n][len] = '\0';
            f->n++;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

int type_filter_match(const struct type_filter *f, const char *type)
{
    unsigned i;
    if (f->n == 0) {
        return 1;
    }
    for (i = 0; i < f->n; i++) {
        if (strncmp(type, f->prefixes[i], strlen(f->prefixes[i])) == 0) {
            return 1;
        }
    }
    return 0;
}
