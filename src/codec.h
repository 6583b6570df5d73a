/* The generic JSON <-> protobuf codec, driven by protobuf-c descriptors.
 *
 * JSON keys are the proto field names. Decoding rejects unknown and duplicate
 * keys, wrong types, missing required fields, out-of-range integers and
 * over-long strings, and names the offending field. Encoding writes every
 * required and repeated field and every optional field that is set. */
#ifndef VARASTO_CODEC_H
#define VARASTO_CODEC_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "errors.h"

#define CODEC_DEFAULT_MAX_STRING 255
#define CODEC_MAX_REPEATED 10000

/* Parse the request body @body (@len bytes) as exactly one JSON value
 * (SPEC 7.3): well-formed UTF-8, no \u0000 in a string (C strings would
 * cut it there), nothing but white space after the value. Returns the
 * value (caller frees), or NULL with @err set (ERR_BAD_REQUEST). */
cJSON *codec_parse_body(const char *body, size_t len, struct err *err);

/* Decode the JSON object @json into a new message of type @desc, returned in
 * @out (free with protobuf_c_message_free_unpacked(msg, NULL)).
 * Returns 0, or an err_code (ERR_BAD_REQUEST with a message naming the
 * field, ERR_INTERNAL when out of memory) with @err set. */
int codec_decode(const ProtobufCMessageDescriptor *desc, const cJSON *json, ProtobufCMessage **out,
                 struct err *err);

/* Encode @msg as a new cJSON object (caller frees), or NULL when out of
 * memory. */
cJSON *codec_encode(const ProtobufCMessage *msg);

struct buf;

/* Append @msg as compact JSON to @out: the same document as codec_encode,
 * written directly (the event path, where a cJSON tree per event costs more
 * than the rest of apply). Returns 0 or -1 when out of memory. */
int codec_write_json(const ProtobufCMessage *msg, struct buf *out);

/* Append @s as a JSON string literal (quoted and escaped) to @out. */
int codec_write_string(struct buf *out, const char *s);

/* The longest string accepted for a field of this name, in bytes. */
size_t codec_max_string(const char *field_name);

/* The most items accepted in a list field of this name. */
size_t codec_max_list(const char *field_name);

#endif
