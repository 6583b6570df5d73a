/* Event type prefix filters (?types=P,Q, a subscription's Types): which
 * events a page, a stream or a push subscriber passes on. */
#ifndef VARASTO_TYPE_FILTER_H
#define VARASTO_TYPE_FILTER_H

#define TYPE_FILTER_MAX 16    /* prefixes in one filter */
#define TYPE_FILTER_PREFIX 64 /* bytes per prefix, with its NUL */

struct type_filter {
    unsigned n;
    char prefixes[TYPE_FILTER_MAX][TYPE_FILTER_PREFIX];
};

/* Parse a comma-separated list into @f (empty items are skipped); returns
 * 0, or -1 when there are too many prefixes or one is too long. */
int type_filter_parse(struct type_filter *f, const char *list);

/* True when @f is empty or @type starts with one of its prefixes. */
int type_filter_match(const struct type_filter *f, const char *type);

#endif
