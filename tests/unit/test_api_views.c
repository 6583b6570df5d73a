/* The read documents of the REST API, rendered from the store: the events
 * page, directories, collections and subscriptions. */
#include <stdlib.h>

#include "api_views.h"
#include "apply.h"
#include "testlib.h"
#include "type_filter.h"
#include "util.h"

static void test_events_page(void)
{
    struct harness h;
    struct type_filter f;
    struct buf out;
    uint64_t scanned;
    cJSON *arr;
    harness_open(&h);
    harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1", NULL);
    harness_apply(&h, "collection.Create", "{\"ParentDir\":\"d1\",\"Name\":\"c\"}", "c1", NULL);
    harness_apply(&h, "directory.Rename", "{\"Id\":\"d1\",\"Name\":\"b\"}", NULL, NULL);
    harness_apply(&h, "collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"t\"}", NULL, NULL);

    buf_init(&out);
    CHECK_INT(api_events_view(&h.store, 0, 100, NULL, &out, &scanned), 4);
    arr = cJSON_Parse(out.data);
    CHECK(cJSON_IsArray(arr));
    CHECK_INT(cJSON_GetArraySize(arr), 4);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "Type")->valuestring,
              "directory.Renamed");
    CHECK_CONTAINS(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "Time")->valuestring, "Z");
    cJSON_Delete(arr);

    out.len = 0;
    CHECK_INT(api_events_view(&h.store, 1, 2, NULL, &out, &scanned), 2);
    CHECK_CONTAINS(out.data, "\"Seq\":2");
    CHECK_CONTAINS(out.data, "\"Seq\":3");

    type_filter_parse(&f, "collection.");
    out.len = 0;
    CHECK_INT(api_events_view(&h.store, 0, 1, &f, &out, &scanned), 1);
    CHECK_CONTAINS(out.data, "collection.Created");
    CHECK_INT(scanned, 2); /* stopped at the limit, right after the match */
    out.len = 0;
    CHECK_INT(api_events_view(&h.store, 4, 10, NULL, &out, &scanned), 0);
    CHECK_STR(out.data, "[]");
    buf_free(&out);
    harness_close(&h);
}

static cJSON *view(struct harness *h, int (*fn)(struct store *, const char *, struct buf *),
                   const char *id)
{
    struct buf out;
    cJSON *doc = NULL;
    buf_init(&out);
    if (fn(&h->store, id, &out)) {
        doc = cJSON_Parse(out.data);
        CHECK(doc != NULL);
    }
    buf_free(&out);
    return doc;
}

static void test_directory_view(void)
{
    struct harness h;
    cJSON *v;
    char *text;
    harness_open(&h);
    harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1", NULL);
    harness_apply(&h, "directory.Create", "{\"Parent\":\"d1\",\"Name\":\"b \\\"q\\\"\"}", "d2",
                  NULL);
    harness_apply(&h, "collection.Create", "{\"ParentDir\":\"d2\",\"Name\":\"c\"}", "c1", NULL);
    harness_apply(&h, "collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"t\\n\"}", NULL, NULL);
    v = view(&h, api_directory_view, "d2");
    text = cJSON_PrintUnformatted(v);
    /* parents root first, then d1 */
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "Parents"), 0), "Id")
                  ->valuestring,
              "root");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "Parents"), 1), "Id")
                  ->valuestring,
              "d1");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "Directory"), "Name")->valuestring,
              "b \"q\"");
    CHECK_CONTAINS(text, "\"SubDirectories\":[]");
    CHECK_CONTAINS(text, "\"Collections\":[{\"Id\":\"c1\"");
    free(text);
    cJSON_Delete(v);
    CHECK(view(&h, api_directory_view, "nope") == NULL);
    v = view(&h, api_collection_view, "c1");
    text = cJSON_PrintUnformatted(v);
    CHECK_CONTAINS(text, "\"Rating\":null");
    CHECK_CONTAINS(text, "\"Head\":\"\"");
    CHECK_CONTAINS(text, "\"Tags\":[\"t\\n\"]");
    CHECK_CONTAINS(text, "\"Files\":[]");
    free(text);
    cJSON_Delete(v);
    harness_close(&h);
}

static void test_document_bytes(void)
{
    struct harness h;
    struct buf out;
    harness_open(&h);
    harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1", NULL);
    harness_apply(&h, "collection.Create", "{\"ParentDir\":\"d1\",\"Name\":\"c\"}", "c1", NULL);
    harness_apply(&h, "collection.Rate", "{\"Collection\":\"c1\",\"Rating\":4}", NULL, NULL);
    harness_apply(&h, "collection.CommitChangeset",
                  "{\"Collection\":\"c1\",\"ID\":\"cs1\",\"Parent\":\"\",\"Created\":\"t\","
                  "\"FilesCreated\":[{\"Path\":\"p\",\"Sha256\":\"ab\",\"Created\":\"x\","
                  "\"Modified\":\"y\",\"Size\":3,\"BlobRefs\":[\"r1\",\"r2\"]}]}",
                  NULL, NULL);
    harness_apply(&h, "subscription.Create", "{\"Name\":\"s\",\"Types\":[\"a.\",\"b.\"]}", NULL,
                  NULL);

    /* the documents byte for byte, as clients get them */
    buf_init(&out);
    CHECK_INT(api_directory_view(&h.store, "d1", &out), 1);
    CHECK_STR(out.data,
              "{\"Directory\":{\"Id\":\"d1\",\"Created\":\"2025-11-26T18:00:00.000Z\","
              "\"Parent\":\"root\",\"Name\":\"a\",\"Description\":\"\",\"Type\":\"generic\","
              "\"Sensitivity\":0},\"Parents\":[{\"Id\":\"root\",\"Created\":"
              "\"1970-01-01T00:00:00.000Z\",\"Parent\":\"\",\"Name\":\"root\",\"Description\":\"\","
              "\"Type\":\"generic\",\"Sensitivity\":0}],\"SubDirectories\":[],\"Collections\":"
              "[{\"Id\":\"c1\",\"Created\":\"2025-11-26T18:00:00.000Z\",\"Directory\":\"d1\","
              "\"Name\":\"c\",\"Description\":\"\",\"Sensitivity\":0,\"Rating\":4,\"Head\":"
              "\"cs1\"}]}");
    out.len = 0;
    CHECK_INT(api_collection_view(&h.store, "c1", &out), 1);
    CHECK_STR(out.data,
              "{\"Id\":\"c1\",\"Created\":\"2025-11-26T18:00:00.000Z\",\"Directory\":\"d1\","
              "\"Name\":\"c\",\"Description\":\"\",\"Sensitivity\":0,\"Rating\":4,\"Head\":"
              "\"cs1\",\"Tags\":[],\"Changesets\":[{\"Id\":\"cs1\",\"Parent\":\"\",\"Created\":"
              "\"t\"}],\"Files\":[{\"Path\":\"p\",\"Sha256\":\"ab\",\"Created\":\"x\","
              "\"Modified\":\"y\",\"Size\":3,\"BlobRefs\":[\"r1\",\"r2\"]}]}");
    out.len = 0;
    CHECK_INT(api_collection_view(&h.store, "nope", &out), 0);
    out.len = 0;
    CHECK_INT(api_subscriptions_view(&h.store, 10, &out), 1);
    CHECK_STR(out.data, "[{\"Name\":\"s\",\"Types\":[\"a.\",\"b.\"],\"Cursor\":0,\"Lag\":10}]");
    buf_free(&out);
    harness_close(&h);
}

int main(void)
{
    RUN(test_events_page);
    RUN(test_directory_view);
    RUN(test_document_bytes);
    return test_report("api_views");
}
