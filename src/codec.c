#include "codec.h"

#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t codec_max_string(const char *field_name)
{
    static const struct {
        const char *name;
        size_t max;
    } limits[] = {
        {"Description", 4096}, {"Path", 4096},    {"FilesDeleted", 4096},
        {"Sha256", 64},        {"Id", 64},        {"Parent", 64},
        {"ParentDir", 64},     {"Directory", 64}, {"Collection", 64},
        {"Collections", 64},   {"ID", 128},
    };
    size_t i;
    for (i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (strcmp(limits[i].name, field_name) == 0) {
            return limits[i].max;
        }
    }
    return CODEC_DEFAULT_MAX_STRING;
}

/* What RFC 8259 or a C string forbids in the strings of the JSON text @p
 * (@len bytes) that cJSON lets through: raw control characters (a NUL
 * would end the string early) and the escape \u0000. NULL if none. */
static const char *string_problem(const char *p, size_t len)
{
    size_t i;
    int in_string = 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            in_string = !in_string;
        } else if (!in_string) {
            continue;
        } else if (c < 0x20) {
            return "a string holds a raw control character";
        } else if (c == '\\' && i + 1 < len) {
            if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0) {
                return "strings may not hold \\u0000";
            }
            i++; /* the escaped character: a quote or backslash is no delimiter */
        }
    }
    return NULL;
}

cJSON *codec_parse_body(const char *body, size_t len, struct err *err)
{
    const char *end = NULL, *problem;
    cJSON *json;

    if (body == NULL) {
        body = "";
        len = 0;
    }
    if (!util_utf8_valid(body, len)) {
        err_set(err, ERR_BAD_REQUEST, "the body is not valid UTF-8");
        return NULL;
    }
    if ((problem = string_problem(body, len)) != NULL) {
        err_set(err, ERR_BAD_REQUEST, "%s", problem);
        return NULL;
    }
    json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (json == NULL) {
        err_set(err, ERR_BAD_REQUEST, "malformed JSON");
        return NULL;
    }
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
        end++;
    }
    if (end != body + len) {
        cJSON_Delete(json);
        err_set(err, ERR_BAD_REQUEST, "malformed JSON: something follows the value");
        return NULL;
    }
    return json;
}

size_t codec_max_list(const char *field_name)
{
    /* collection.Move checks and moves each collection on every node's
     * loop: 10,000 held it (and raft) for 300 ms (SPEC 7.3) */
    return strcmp(field_name, "Collections") == 0 ? 1000 : CODEC_MAX_REPEATED;
}

static int fail(struct err *err, const char *path, const char *fmt, const char *what)
{
    char detail[200];
    snprintf(detail, sizeof detail, fmt, what);
    err_set(err, ERR_BAD_REQUEST, "field '%s': %s", path, detail);
    return -1;
}

/* "@prefix.@name", or "@name" at the top (truncated to @size): every field's
 * path, for error messages. Built on each field, so no printf. */
static void field_path(char *out, size_t size, const char *prefix, const char *name)
{
    size_t n = 0;
    if (prefix[0] != '\0') {
        util_copy(out, size, prefix);
        n = strlen(out);
        if (n + 1 < size) {
            out[n++] = '.';
        }
    }
    util_copy(out + n, size - n, name);
}

static int decode_message(const ProtobufCMessageDescriptor *desc, const cJSON *json,
                          ProtobufCMessage **out, const char *prefix, struct err *err);

/* Decode one scalar or message value of field @f at @dst. */
static int decode_value(const ProtobufCFieldDescriptor *f, const cJSON *v, void *dst,
                        const char *path, struct err *err)
{
    double d;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        size_t len;
        char *s;
        if (!cJSON_IsString(v)) {
            return fail(err, path, "%s", "expected a string");
        }
        len = strlen(v->valuestring);
        if (!util_utf8_valid(v->valuestring, len)) {
            /* cJSON writes a lone surrogate escape as bytes no UTF-8 has */
            return fail(err, path, "%s", "not valid UTF-8");
        }
        if (len > codec_max_string(f->name)) {
            char lim[32];
            snprintf(lim, sizeof lim, "%zu", codec_max_string(f->name));
            return fail(err, path, "longer than %s bytes", lim);
        }
        s = strdup(v->valuestring);
        if (s == NULL) {
            return fail(err, path, "%s", "out of memory");
        }
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool(v)) {
            return fail(err, path, "%s", "expected true or false");
        }
        *(protobuf_c_boolean *)dst = cJSON_IsTrue(v);
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        int is32 = f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_SINT32 ||
                   f->type == PROTOBUF_C_TYPE_SFIXED32 || f->type == PROTOBUF_C_TYPE_UINT32 ||
                   f->type == PROTOBUF_C_TYPE_FIXED32;
        int is_unsigned = f->type == PROTOBUF_C_TYPE_UINT32 || f->type == PROTOBUF_C_TYPE_FIXED32 ||
                          f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;
        double lo, hi;
        if (!cJSON_IsNumber(v)) {
            return fail(err, path, "%s", "expected an integer");
        }
        d = v->valuedouble;
        if (d != floor(d)) {
            return fail(err, path, "%s", "expected an integer");
        }
        /* JSON numbers are doubles: integers are exact up to 2^53. */
        lo = is_unsigned ? 0 : (is32 ? (double)INT32_MIN : -9007199254740992.0);
        hi = is32 ? (is_unsigned ? (double)UINT32_MAX : (double)INT32_MAX) : 9007199254740992.0;
        if (d < lo || d > hi) {
            return fail(err, path, "%s", "integer out of range");
        }
        if (is32) {
            if (is_unsigned) {
                *(uint32_t *)dst = (uint32_t)d;
            } else {
                *(int32_t *)dst = (int32_t)d;
            }
        } else if (is_unsigned) {
            *(uint64_t *)dst = (uint64_t)d;
        } else {
            *(int64_t *)dst = (int64_t)d;
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!cJSON_IsObject(v)) {
            return fail(err, path, "%s", "expected an object");
        }
        return decode_message(f->descriptor, v, (ProtobufCMessage **)dst, path, err);
    default:
        return fail(err, path, "%s", "has a type the JSON API does not carry");
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4;
    }
}

static int decode_field(const ProtobufCFieldDescriptor *f, const cJSON *v, ProtobufCMessage *msg,
                        const char *path, struct err *err)
{
    char *base = (char *)msg;

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n, i, sz = value_size(f);
        char *arr;
        const cJSON *item;
        if (!cJSON_IsArray(v)) {
            return fail(err, path, "%s", "expected a list");
        }
        n = (size_t)cJSON_GetArraySize(v);
        if (n > codec_max_list(f->name)) {
            char lim[32];
            snprintf(lim, sizeof lim, "%zu", codec_max_list(f->name));
            return fail(err, path, "list longer than %s items", lim);
        }
        arr = calloc(n ? n : 1, sz);
        if (arr == NULL) {
            return fail(err, path, "%s", "out of memory");
        }
        /* Store the array first so that a failure frees what was decoded. */
        *(void **)(base + f->offset) = arr;
        i = 0;
        cJSON_ArrayForEach(item, v)
        {
            char sub[192];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            /* Count the slot first: a half-decoded item is freed with the rest. */
            *(size_t *)(base + f->quantifier_offset) = ++i;
            if (decode_value(f, item, arr + (i - 1) * sz, sub, err) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (cJSON_IsNull(v) && f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        return 0; /* null means absent */
    }
    if (decode_value(f, v, base + f->offset, path, err) != 0) {
        return -1;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    return 0;
}

static int decode_message(const ProtobufCMessageDescriptor *desc, const cJSON *json,
                          ProtobufCMessage **out, const char *prefix, struct err *err)
{
    ProtobufCMessage *msg;
    const cJSON *item;
    unsigned i;
    uint8_t seen[64] = {0};

    *out = NULL;
    if (!cJSON_IsObject(json)) {
        err_set(err, ERR_BAD_REQUEST, "expected a JSON object");
        return -1;
    }
    msg = calloc(1, desc->sizeof_message);
    if (msg == NULL) {
        err_set(err, ERR_INTERNAL, "out of memory");
        return -1;
    }
    protobuf_c_message_init(desc, msg);
    *out = msg;

    cJSON_ArrayForEach(item, json)
    {
        const ProtobufCFieldDescriptor *f = NULL;
        char path[192];
        unsigned k;
        for (k = 0; k < desc->n_fields; k++) {
            if (strcmp(desc->fields[k].name, item->string) == 0) {
                f = &desc->fields[k];
                break;
            }
        }
        field_path(path, sizeof path, prefix, item->string);
        if (f == NULL) {
            return fail(err, path, "%s", "unknown field");
        }
        if (k < sizeof seen * 8) {
            if (seen[k / 8] & (1u << (k % 8))) {
                return fail(err, path, "%s", "given twice");
            }
            seen[k / 8] |= (uint8_t)(1u << (k % 8));
        }
        if (decode_field(f, item, msg, path, err) != 0) {
            return -1;
        }
    }
    for (i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        int present = i < sizeof seen * 8 && (seen[i / 8] & (1u << (i % 8)));
        if (f->label == PROTOBUF_C_LABEL_REQUIRED && !present) {
            char path[192];
            field_path(path, sizeof path, prefix, f->name);
            return fail(err, path, "%s", "is required");
        }
    }
    return 0;
}

int codec_decode(const ProtobufCMessageDescriptor *desc, const cJSON *json, ProtobufCMessage **out,
                 struct err *err)
{
    int rv = decode_message(desc, json, out, "", err);
    if (rv != 0 && *out != NULL) {
        protobuf_c_message_free_unpacked(*out, NULL);
        *out = NULL;
    }
    return rv != 0 ? (int)err->code : 0;
}

/* Whether a singular field of the message at @base is set (required fields
 * always are; an optional one when it has a value). */
static int field_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL) {
        return 1;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *p = *(void *const *)(base + f->offset);
        return p != NULL && p != f->default_value;
    }
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
}

static cJSON *encode_value(const ProtobufCFieldDescriptor *f, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        return cJSON_CreateString(s != NULL ? s : "");
    }
    case PROTOBUF_C_TYPE_BOOL:
        return cJSON_CreateBool(*(const protobuf_c_boolean *)src);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return cJSON_CreateNumber(*(const int32_t *)src);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return cJSON_CreateNumber(*(const uint32_t *)src);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return cJSON_CreateNumber((double)*(const int64_t *)src);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return cJSON_CreateNumber((double)*(const uint64_t *)src);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)src;
        return m != NULL ? codec_encode(m) : cJSON_CreateNull();
    }
    default:
        return cJSON_CreateNull();
    }
}

cJSON *codec_encode(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    cJSON *obj = cJSON_CreateObject();
    unsigned i;

    if (obj == NULL) {
        return NULL;
    }
    for (i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        cJSON *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            size_t k, sz = value_size(f);
            v = cJSON_CreateArray();
            for (k = 0; v != NULL && k < n; k++) {
                cJSON *item = encode_value(f, arr + k * sz);
                if (item == NULL) {
                    cJSON_Delete(v);
                    v = NULL;
                    break;
                }
                cJSON_AddItemToArray(v, item);
            }
        } else {
            if (!field_present(f, base)) {
                continue;
            }
            v = encode_value(f, base + f->offset);
        }
        if (v == NULL) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, f->name, v);
    }
    return obj;
}

int codec_write_string(struct buf *out, const char *s)
{
    return buf_append_json_string(out, s);
}

static int write_value(const ProtobufCFieldDescriptor *f, const void *src, struct buf *out)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        return codec_write_string(out, s != NULL ? s : "");
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)src ? buf_append(out, "true", 4)
                                                : buf_append(out, "false", 5);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return buf_append_int(out, *(const int32_t *)src);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return buf_append_int(out, *(const uint32_t *)src);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return buf_append_int(out, (long long)*(const int64_t *)src);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return buf_appendf(out, "%llu", (unsigned long long)*(const uint64_t *)src);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)src;
        return m != NULL ? codec_write_json(m, out) : buf_append(out, "null", 4);
    }
    default:
        return buf_append(out, "null", 4);
    }
}

int codec_write_json(const ProtobufCMessage *msg, struct buf *out)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    int first = 1;
    int rv = buf_append(out, "{", 1);
    unsigned i;

    for (i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->label != PROTOBUF_C_LABEL_REPEATED && !field_present(f, base)) {
            continue;
        }
        rv |= first ? buf_append(out, "\"", 1) : buf_append(out, ",\"", 2);
        rv |= buf_append_str(out, f->name);
        rv |= buf_append(out, "\":", 2);
        first = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            size_t k, sz = value_size(f);
            rv |= buf_append(out, "[", 1);
            for (k = 0; k < n; k++) {
                if (k > 0) {
                    rv |= buf_append(out, ",", 1);
                }
                rv |= write_value(f, arr + k * sz, out);
            }
            rv |= buf_append(out, "]", 1);
        } else {
            rv |= write_value(f, base + f->offset, out);
        }
    }
    rv |= buf_append(out, "}", 1);
    return rv ? -1 : 0;
}
