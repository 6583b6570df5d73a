/* Store queries behind the REST reads: events pages and views. */
#include <stdlib.h>

#include "apply.h"
#include "type_filter.h"
#include "testlib.h"
#include "util.h"

static void test_events_page(void)
{
    struct harness h;
    struct type_filter f;
    struct buf out;
    cJSON *arr;
    harness_open(&h);
    harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1", NULL);
    harness_apply(&h, "collection.Create", "{\"ParentDir\":\"d1\",\"Name\":\"c\"}", "c1", NULL);
    harness_apply(&h, "directory.Rename", "{\"Id\":\"d1\",\"Name\":\"b\"}", NULL, NULL);
    harness_apply(&h, "collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"t\"}", NULL, NULL);

    buf_init(&out);
    CHECK_INT(store_events_page(&h.store, 0, 100, NULL, &out), 4);
    arr = cJSON_Parse(out.data);
    CHECK(cJSON_IsArray(arr));
    CHECK_INT(cJSON_GetArraySize(arr), 4);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "Type")->valuestring,
              "directory.Renamed");
    CHECK_CONTAINS(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "Time")->valuestring, "Z");
    cJSON_Delete(arr);

    out.len = 0;
    CHECK_INT(store_events_page(&h.store, 1, 2, NULL, &out), 2);
    CHECK_CONTAINS(out.data, "\"Seq\":2");
    CHECK_CONTAINS(out.data, "\"Seq\":3");

    type_filter_parse(&f, "collection.");
    out.len = 0;
    CHECK_INT(store_events_page(&h.store, 0, 1, &f, &out), 1);
    CHECK_CONTAINS(out.data, "collection.Created");
    out.len = 0;
    CHECK_INT(store_events_page(&h.store, 4, 10, NULL, &out), 0);
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
    v = view(&h, store_directory_view, "d2");
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
    CHECK(view(&h, store_directory_view, "nope") == NULL);
    v = view(&h, store_collection_view, "c1");
    text = cJSON_PrintUnformatted(v);
    CHECK_CONTAINS(text, "\"Rating\":null");
    CHECK_CONTAINS(text, "\"Head\":\"\"");
    CHECK_CONTAINS(text, "\"Tags\":[\"t\\n\"]");
    CHECK_CONTAINS(text, "\"Files\":[]");
    free(text);
    cJSON_Delete(v);
    harness_close(&h);
}

int main(void)
{
    RUN(test_events_page);
    RUN(test_directory_view);
    return test_report("store");
}
