/* GET /api_v2/directories/{id}: a directory with its parents (root first),
 * its subdirectories and its collections. */
#include <string.h>

#include "api.h"
#include "api_views.h"
#include "store.h"

#define PARENTS_MAX_DEPTH 1024 /* a moved subtree can end below DOMAIN_MAX_DEPTH */

static void directory_json(struct buf *out, const struct store_dir *row)
{
    api_put_text(out, "{\"Id\":", row->id);
    api_put_time(out, ",\"Created\":", row->created);
    api_put_text(out, ",\"Parent\":", row->parent);
    api_put_text(out, ",\"Name\":", row->name);
    api_put_text(out, ",\"Description\":", row->description);
    api_put_text(out, ",\"Type\":", row->type);
    api_put_int(out, ",\"Sensitivity\":", row->sensitivity);
    buf_append(out, "}", 1);
}

/* A JSON array being written by a scan's callbacks. */
struct array {
    struct buf *out;
    int first;
};

static void array_next(struct array *a)
{
    if (!a->first) {
        buf_append(a->out, ",", 1);
    }
    a->first = 0;
}

static int subdirectory_row(void *data, const struct store_dir *row)
{
    struct array *a = data;
    array_next(a);
    directory_json(a->out, row);
    return 0;
}

static int collection_row(void *data, const struct store_coll *row)
{
    struct array *a = data;
    array_next(a);
    api_collection_json(a->out, row, 1);
    return 0;
}

/* The parents of a directory whose parent is @cur (copied, changed), root
 * first: collected walking up, each followed by its length, then written in
 * reverse. */
static int parents_json(struct store *st, char *cur, size_t size, struct buf *out)
{
    struct store_dir row;
    struct buf chain;
    size_t end, len;
    unsigned depth;
    int rv = 0;

    buf_init(&chain);
    for (depth = 0; cur[0] != '\0' && depth < PARENTS_MAX_DEPTH; depth++) {
        size_t start = chain.len;
        if ((rv = store_dir_get(st, cur, &row)) <= 0) {
            break;
        }
        directory_json(&chain, &row);
        util_copy(cur, size, row.parent);
        len = chain.len - start;
        buf_append(&chain, &len, sizeof len);
    }
    for (end = chain.len; rv >= 0 && end > 0;) {
        memcpy(&len, chain.data + end - sizeof len, sizeof len);
        end -= sizeof len + len;
        buf_append(out, chain.data + end, len);
        if (end > 0) {
            buf_append(out, ",", 1);
        }
    }
    buf_free(&chain);
    return rv < 0 ? rv : 0;
}

int api_directory_view(struct store *st, const char *id, struct buf *out)
{
    struct array a = {out, 1};
    struct store_dir row;
    char cur[128];
    int rv;

    buf_append(out, "{\"Directory\":", 13);
    if ((rv = store_dir_get(st, id, &row)) <= 0) {
        return rv;
    }
    directory_json(out, &row);
    util_copy(cur, sizeof cur, row.parent);
    buf_append(out, ",\"Parents\":[", 12);
    if ((rv = parents_json(st, cur, sizeof cur, out)) < 0) {
        return rv;
    }
    buf_append(out, "],\"SubDirectories\":[", 20);
    if ((rv = store_dir_children(st, id, subdirectory_row, &a)) < 0) {
        return rv;
    }
    buf_append(out, "],\"Collections\":[", 17);
    a.first = 1;
    if ((rv = store_dir_collections(st, id, collection_row, &a)) < 0) {
        return rv;
    }
    buf_append(out, "]}", 2);
    return 1;
}

void api_directory_get(struct api *api, h2o_req_t *req, char **params)
{
    struct buf out;
    int rv;

    buf_init(&out);
    store_read_begin(api->store);
    rv = api_directory_view(api->store, params[0], &out);
    if (rv < 0) {
        http_reply_error(req, ERR_INTERNAL, "store: %s", api->store->errmsg);
    } else if (rv == 0) {
        http_reply_error(req, ERR_NOT_FOUND, "directory '%s' not found", params[0]);
    } else {
        http_reply_json(req, 200, out.data, out.len);
    }
    buf_free(&out);
}
