/* The generic JSON <-> protobuf codec: what requests may and may not carry. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commands.pb-c.h"
#include "testlib.h"
#include "util.h"

static int decode(const ProtobufCMessageDescriptor *d, const char *text, ProtobufCMessage **m,
                  struct err *err)
{
    cJSON *json = cJSON_Parse(text);
    int rv;
    if (json == NULL) {
        fprintf(stderr, "bad test JSON: %s\n", text);
        exit(2);
    }
    rv = codec_decode(d, json, m, err);
    cJSON_Delete(json);
    return rv;
}

static void expect_error(const ProtobufCMessageDescriptor *d, const char *text,
                         const char *fragment)
{
    ProtobufCMessage *m = NULL;
    struct err err;
    CHECK_INT(decode(d, text, &m, &err), ERR_BAD_REQUEST);
    CHECK_INT(err.code, ERR_BAD_REQUEST);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.message, fragment);
}

static void test_decode_valid(void)
{
    ProtobufCMessage *m;
    struct err err;
    Varasto__DirectoryChangeSensitivity *c;
    CHECK_INT(decode(&varasto__directory_change_sensitivity__descriptor,
                     "{\"Id\":\"abc\",\"Sensitivity\":2}", &m, &err),
              0);
    c = (void *)m;
    CHECK_STR(c->id, "abc");
    CHECK_INT(c->sensitivity, 2);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_rejects_unknown_field(void)
{
    expect_error(&varasto__directory_rename__descriptor,
                 "{\"Id\":\"a\",\"Name\":\"b\",\"Extra\":1}", "'Extra': unknown field");
}

static void test_rejects_missing_required(void)
{
    expect_error(&varasto__directory_rename__descriptor, "{\"Id\":\"a\"}", "'Name': is required");
}

static void test_rejects_wrong_types(void)
{
    expect_error(&varasto__directory_rename__descriptor, "{\"Id\":\"a\",\"Name\":5}",
                 "'Name': expected a string");
    expect_error(&varasto__collection_rate__descriptor, "{\"Collection\":\"a\",\"Rating\":\"5\"}",
                 "'Rating': expected an integer");
    expect_error(&varasto__collection_rate__descriptor, "{\"Collection\":\"a\",\"Rating\":2.5}",
                 "'Rating': expected an integer");
    expect_error(&varasto__collection_rate__descriptor,
                 "{\"Collection\":\"a\",\"Rating\":3000000000}", "'Rating': integer out of range");
    expect_error(&varasto__collection_move__descriptor,
                 "{\"Collections\":\"a\",\"Directory\":\"d\"}", "'Collections': expected a list");
    expect_error(&varasto__collection_move__descriptor,
                 "{\"Collections\":[\"a\",7],\"Directory\":\"d\"}", "'Collections[1]'");
}

static void test_rejects_duplicate_key(void)
{
    expect_error(&varasto__directory_rename__descriptor,
                 "{\"Id\":\"a\",\"Name\":\"b\",\"Name\":\"c\"}", "'Name': given twice");
}

static void test_rejects_long_strings(void)
{
    char body[1024];
    char name[300];
    memset(name, 'x', 256);
    name[256] = '\0';
    snprintf(body, sizeof body, "{\"Id\":\"a\",\"Name\":\"%s\"}", name);
    expect_error(&varasto__directory_rename__descriptor, body, "'Name': longer than 255");
    name[255] = '\0';
    snprintf(body, sizeof body, "{\"Id\":\"a\",\"Name\":\"%s\"}", name);
    {
        ProtobufCMessage *m;
        struct err err;
        CHECK_INT(decode(&varasto__directory_rename__descriptor, body, &m, &err), 0);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* A collection.Move of n collections, as JSON. */
static char *move_body(unsigned n)
{
    struct buf b;
    unsigned i;
    buf_init(&b);
    buf_append_str(&b, "{\"Directory\":\"d\",\"Collections\":[");
    for (i = 0; i < n; i++) {
        buf_appendf(&b, "%s\"c%u\"", i ? "," : "", i);
    }
    buf_append_str(&b, "]}");
    buf_append(&b, "", 1);
    return buf_steal(&b);
}

static void test_bounded_lists(void)
{
    ProtobufCMessage *m;
    struct err err;
    char *body = move_body(1000);
    CHECK_INT(decode(&varasto__collection_move__descriptor, body, &m, &err), 0);
    CHECK_INT(((Varasto__CollectionMove *)m)->n_collections, 1000);
    protobuf_c_message_free_unpacked(m, NULL);
    free(body);
    body = move_body(1001);
    expect_error(&varasto__collection_move__descriptor, body,
                 "'Collections': list longer than 1000 items");
    free(body);
}

static void test_nested_errors_name_the_path(void)
{
    expect_error(&varasto__collection_commit_changeset__descriptor,
                 "{\"Collection\":\"c\",\"ID\":\"x\",\"Parent\":\"\",\"Created\":\"t\","
                 "\"FilesCreated\":[{\"Path\":\"a\",\"Sha256\":\"s\",\"Created\":\"t\","
                 "\"Modified\":\"t\",\"Size\":1},{\"Path\":\"b\"}]}",
                 "'FilesCreated[1].Sha256': is required");
    expect_error(&varasto__collection_commit_changeset__descriptor,
                 "{\"Collection\":\"c\",\"ID\":\"x\",\"Parent\":\"\",\"Created\":\"t\","
                 "\"FilesCreated\":[{\"Path\":\"a\",\"Sha256\":\"s\",\"Created\":\"t\","
                 "\"Modified\":\"t\",\"Size\":1,\"Bogus\":true}]}",
                 "'FilesCreated[0].Bogus': unknown field");
}

static void test_round_trip(void)
{
    const char *text =
        "{\"Collection\":\"c\",\"ID\":\"x\",\"Parent\":\"\",\"Created\":\"t\","
        "\"FilesCreated\":[{\"Path\":\"a\",\"Sha256\":\"s\",\"Created\":\"t\",\"Modified\":\"u\","
        "\"Size\":12,\"BlobRefs\":[\"r1\",\"r2\"]}],\"FilesUpdated\":[],\"FilesDeleted\":[\"z\"]}";
    ProtobufCMessage *m;
    struct err err;
    cJSON *out;
    char *printed;
    CHECK_INT(decode(&varasto__collection_commit_changeset__descriptor, text, &m, &err), 0);
    out = codec_encode(m);
    printed = cJSON_PrintUnformatted(out);
    CHECK_STR(printed, text);
    free(printed);
    cJSON_Delete(out);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_empty_lists_encode_as_arrays(void)
{
    Varasto__CollectionMove mv = VARASTO__COLLECTION_MOVE__INIT;
    cJSON *out;
    char *printed;
    mv.directory = "d";
    out = codec_encode(&mv.base);
    printed = cJSON_PrintUnformatted(out);
    CHECK_STR(printed, "{\"Collections\":[],\"Directory\":\"d\"}");
    free(printed);
    cJSON_Delete(out);
}

/* The direct writer (events) produces the same document as the cJSON path. */
static void test_direct_writer_matches_encode(void)
{
    const char *text =
        "{\"Collection\":\"c\\\"q\\u0001\",\"ID\":\"x\\n\",\"Parent\":\"\",\"Created\":\"t\","
        "\"FilesCreated\":[{\"Path\":\"\\u00e9\\\\\",\"Sha256\":\"s\",\"Created\":\"t\","
        "\"Modified\":\"u\",\"Size\":-12,\"BlobRefs\":[\"r1\",\"r2\"]}],\"FilesUpdated\":[],"
        "\"FilesDeleted\":[\"z\"]}";
    ProtobufCMessage *m;
    struct err err;
    struct buf out;
    cJSON *a, *b;
    char *pa, *pb;

    CHECK_INT(decode(&varasto__collection_commit_changeset__descriptor, text, &m, &err), 0);
    buf_init(&out);
    CHECK_INT(codec_write_json(m, &out), 0);
    a = codec_encode(m);
    b = cJSON_Parse(out.data);
    CHECK(b != NULL);
    pa = cJSON_PrintUnformatted(a);
    pb = cJSON_PrintUnformatted(b);
    CHECK_STR(pb, pa);
    free(pa);
    free(pb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    buf_free(&out);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_rejects_non_object(void)
{
    expect_error(&varasto__directory_rename__descriptor, "[1,2]", "expected a JSON object");
}

/* SPEC 7.3: codec_parse_body takes exactly one JSON value of UTF-8 text
 * whose strings hold no NUL. */
static void parse_fails(const char *body, size_t len, const char *fragment)
{
    struct err err;
    cJSON *json = codec_parse_body(body, len, &err);
    CHECK(json == NULL);
    cJSON_Delete(json);
    CHECK_INT(err.code, ERR_BAD_REQUEST);
    CHECK_CONTAINS(err.message, fragment);
}

#define PARSE_FAILS(literal, fragment) parse_fails(literal, sizeof literal - 1, fragment)

static void parses(const char *body, const char *name)
{
    struct err err;
    cJSON *json = codec_parse_body(body, strlen(body), &err);
    CHECK(json != NULL);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(json, "Name")->valuestring, name);
    cJSON_Delete(json);
}

static void test_parse_body(void)
{
    static const char nul[] = "{\"Name\":\"a\0b\"}";
    parses("{\"Name\":\"b\\u00e4r\"}", "b\xc3\xa4r");
    parses(" {\"Name\":\"x\"} \r\n\t", "x");       /* white space around is fine */
    parses("{\"Name\":\"\\\\u0000\"}", "\\u0000"); /* an escaped backslash, then text */
    parses("{\"Name\":\"\\\"\\u0041\"}", "\"A");
    /* trailing data: it used to be ignored */
    PARSE_FAILS("{\"Name\":\"x\"} GARBAGE", "follows the value");
    PARSE_FAILS("{\"Name\":\"x\"}{}", "follows the value");
    /* \u0000 cut the string short: "a\u0000b" became "a" */
    PARSE_FAILS("{\"Name\":\"a\\u0000b\"}", "u0000");
    /* raw control characters (a NUL byte ends a C string too) */
    parse_fails(nul, sizeof nul - 1, "control character");
    PARSE_FAILS("{\"Name\":\"a\tb\"}", "control character");
    /* invalid UTF-8: a lone continuation byte, an overlong form, a
     * surrogate in UTF-8, a truncated sequence */
    PARSE_FAILS("{\"Name\":\"\x80\"}", "UTF-8");
    PARSE_FAILS("{\"Name\":\"\xc0\xaf\"}", "UTF-8");
    PARSE_FAILS("{\"Name\":\"\xed\xa0\x80\"}", "UTF-8");
    PARSE_FAILS("{\"Name\":\"\xe2\x82\"}", "UTF-8");
    /* lone surrogate escapes do not parse */
    PARSE_FAILS("{\"Name\":\"\\ud800\"}", "malformed JSON");
    PARSE_FAILS("{\"Name\":\"\\udc00x\"}", "malformed JSON");
    PARSE_FAILS("", "malformed JSON");
    parse_fails(NULL, 0, "malformed JSON");
}

int main(void)
{
    RUN(test_decode_valid);
    RUN(test_rejects_unknown_field);
    RUN(test_rejects_missing_required);
    RUN(test_rejects_wrong_types);
    RUN(test_rejects_duplicate_key);
    RUN(test_rejects_long_strings);
    RUN(test_bounded_lists);
    RUN(test_nested_errors_name_the_path);
    RUN(test_round_trip);
    RUN(test_empty_lists_encode_as_arrays);
    RUN(test_rejects_non_object);
    RUN(test_parse_body);
    RUN(test_direct_writer_matches_encode);
    return test_report("codec");
}
