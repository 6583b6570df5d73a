/* The JSON codec: any body, decoded as any command's message, checked the
 * way the API checks it, and encoded again: the output is well-formed UTF-8
 * JSON that decodes to the same message. The first byte picks the command. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "domain.h"
#include "util.h"

static const char *const commands[] = {
    "directory.Create",
    "directory.Rename",
    "directory.ChangeDescription",
    "directory.SetType",
    "directory.ChangeSensitivity",
    "directory.Move",
    "directory.Delete",
    "collection.Create",
    "collection.Rename",
    "collection.ChangeDescription",
    "collection.Move",
    "collection.Tag",
    "collection.Untag",
    "collection.Rate",
    "collection.ChangeSensitivity",
    "collection.Delete",
    "collection.CommitChangeset",
    "apikey.Create",
    "apikey.Remove",
    "subscription.Create",
    "subscription.Ack",
    "subscription.Delete",
    "cluster.Announce",
    "cluster.RecordNodeAdded",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct domain_command *cmd;
    ProtobufCMessage *msg = NULL, *again = NULL;
    struct err e;
    cJSON *json, *parsed;
    struct buf out;

    if (size < 1) {
        return 0;
    }
    cmd = domain_find(commands[data[0] % (sizeof commands / sizeof commands[0])]);
    json = codec_parse_body((const char *)data + 1, size - 1, &e);
    if (cmd == NULL || json == NULL) {
        return 0;
    }
    if (codec_decode(cmd->desc, json, &msg, &e) == 0) {
        (void)domain_check(cmd, msg, &e);
        buf_init(&out);
        if (codec_write_json(msg, &out) == 0) {
            if (!util_utf8_valid(out.data, out.len)) {
                abort();
            }
            parsed = codec_parse_body(out.data, out.len, &e);
            if (parsed == NULL || codec_decode(cmd->desc, parsed, &again, &e) != 0) {
                abort(); /* what we write, we read back */
            }
            {
                size_t a = protobuf_c_message_get_packed_size(msg);
                size_t b = protobuf_c_message_get_packed_size(again);
                uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
                protobuf_c_message_pack(msg, pa);
                protobuf_c_message_pack(again, pb);
                if (a != b || memcmp(pa, pb, a) != 0) {
                    abort(); /* the same message */
                }
                free(pa);
                free(pb);
            }
            protobuf_c_message_free_unpacked(again, NULL);
            cJSON_Delete(parsed);
        }
        buf_free(&out);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    cJSON_Delete(json);
    return 0;
}
