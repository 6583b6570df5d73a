/* The read documents the REST API serves, rendered from typed store rows
 * straight into a buffer: the read path is the hottest in the server, and a
 * cJSON tree per response cost more than the queries themselves (measured
 * with callgrind). The route handlers (api.h) answer with them; tests call
 * them on a store directly.
 *
 * The views run in the store's shared read transaction (store_read_begin)
 * and return 1 with the document appended to @out, 0 when there is no such
 * entity (then @out holds a partial document to discard), or a negative
 * enum store_rc with st->errmsg set. */
#ifndef VARASTO_API_VIEWS_H
#define VARASTO_API_VIEWS_H

#include <stdint.h>

#include "codec.h"
#include "store.h"
#include "util.h"

struct type_filter;

/* GET /api_v2/directories/{id} (api_directories.c). */
int api_directory_view(struct store *st, const char *id, struct buf *out);

/* GET /api_v2/collections/{id} (api_collections.c). */
int api_collection_view(struct store *st, const char *id, struct buf *out);
/* A collection's own fields as a JSON object, closed with '}' when @close
 * (left open for the view to add what the collection holds). */
void api_collection_json(struct buf *out, const struct store_coll *row, int close);

/* GET /api_v2/events: events with seq > @after (at most @limit, matching
 * @types when not NULL) as a JSON array. A filter looks at a bounded
 * number of events: @scanned is where it stopped (the next page's after;
 * 0 without a filter). Returns the number, or < 0. */
int api_events_view(struct store *st, uint64_t after, unsigned limit,
                    const struct type_filter *types, struct buf *out, uint64_t *scanned);

/* GET /api_v2/subscriptions: every durable subscription with its lag
 * behind @last_seq, as a JSON array. Returns the number, or < 0. */
int api_subscriptions_view(struct store *st, uint64_t last_seq, struct buf *out);

/* ---- JSON members; @key is a literal such as ",\"Name\":" ---- */

static inline void api_put_text(struct buf *out, const char *key, const char *text)
{
    buf_append_str(out, key);
    codec_write_string(out, text);
}

static inline void api_put_int(struct buf *out, const char *key, long long v)
{
    buf_append_str(out, key);
    buf_append_int(out, v);
}

static inline void api_put_time(struct buf *out, const char *key, int64_t ms)
{
    char t[40];
    util_format_time(ms, t, sizeof t);
    buf_append_str(out, key);
    buf_append(out, "\"", 1);
    buf_append_str(out, t);
    buf_append(out, "\"", 1);
}

#endif
