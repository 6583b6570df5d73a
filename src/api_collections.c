/* GET /api_v2/collections/{id}: a collection with its tags, changesets
 * (oldest first) and files. */
#include "api.h"
#include "api_views.h"
#include "store.h"

void api_collection_json(struct buf *out, const struct store_coll *row, int close)
{
    api_put_text(out, "{\"Id\":", row->id);
    api_put_time(out, ",\"Created\":", row->created);
    api_put_text(out, ",\"Directory\":", row->directory);
    api_put_text(out, ",\"Name\":", row->name);
    api_put_text(out, ",\"Description\":", row->description);
    api_put_int(out, ",\"Sensitivity\":", row->sensitivity);
    if (row->has_rating) {
        api_put_int(out, ",\"Rating\":", row->rating);
    } else {
        buf_append_str(out, ",\"Rating\":null");
    }
    api_put_text(out, ",\"Head\":", row->head);
    if (close) {
        buf_append(out, "}", 1);
    }
}

/* A JSON array being written by a scan's callbacks. */
struct array {
    struct buf *out;
    int first;
};

static int tag_json(void *data, const char *tag)
{
    struct array *a = data;
    if (!a->first) {
        buf_append(a->out, ",", 1);
    }
    a->first = 0;
    codec_write_string(a->out, tag);
    return 0;
}

static int changeset_json(void *data, const struct store_changeset *row)
{
    struct array *a = data;
    api_put_text(a->out, a->first ? "{\"Id\":" : ",{\"Id\":", row->id);
    api_put_text(a->out, ",\"Parent\":", row->parent);
    api_put_text(a->out, ",\"Created\":", row->created);
    buf_append(a->out, "}", 1);
    a->first = 0;
    return 0;
}

static int file_json(void *data, const struct store_file *row)
{
    struct array *a = data;
    api_put_text(a->out, a->first ? "{\"Path\":" : ",{\"Path\":", row->path);
    api_put_text(a->out, ",\"Sha256\":", row->sha256);
    api_put_text(a->out, ",\"Created\":", row->created);
    api_put_text(a->out, ",\"Modified\":", row->modified);
    api_put_int(a->out, ",\"Size\":", row->size);
    buf_append_str(a->out, ",\"BlobRefs\":");
    /* stored as the JSON array written at apply */
    buf_append(a->out, row->blobrefs, row->blobrefs_len);
    buf_append(a->out, "}", 1);
    a->first = 0;
    return 0;
}

int api_collection_view(struct store *st, const char *id, struct buf *out)
{
    struct array a = {out, 1};
    struct store_coll row;
    int rv;

    if ((rv = store_coll_get(st, id, &row)) <= 0) {
        return rv;
    }
    api_collection_json(out, &row, 0);
    buf_append(out, ",\"Tags\":[", 9);
    if ((rv = store_tags(st, id, tag_json, &a)) < 0) {
        return rv;
    }
    buf_append(out, "],\"Changesets\":[", 16);
    a.first = 1;
    if ((rv = store_changesets(st, id, changeset_json, &a)) < 0) {
        return rv;
    }
    buf_append(out, "],\"Files\":[", 11);
    a.first = 1;
    if ((rv = store_files(st, id, file_json, &a)) < 0) {
        return rv;
    }
    buf_append(out, "]}", 2);
    return 1;
}

void api_collection_get(struct api *api, h2o_req_t *req, char **params)
{
    struct buf out;
    int rv;

    buf_init(&out);
    store_read_begin(api->store);
    rv = api_collection_view(api->store, params[0], &out);
    if (rv < 0) {
        http_reply_error(req, ERR_INTERNAL, "store: %s", api->store->errmsg);
    } else if (rv == 0) {
        http_reply_error(req, ERR_NOT_FOUND, "collection '%s' not found", params[0]);
    } else {
        http_reply_json(req, 200, out.data, out.len);
    }
    buf_free(&out);
}
