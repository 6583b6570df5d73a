/* The command API: POST /command/{name} and the changeset endpoint.
 * Request → decoded, checked command → log entry → raft → answer after apply. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec.h"
#include "domain.h"
#include "entry.h"
#include "log.h"
#include "node.h"
#include "util.h"

#define IDEMPOTENCY_KEY_MAX 128
#define GENERATED_ID_LEN 12
#define TOKEN_LEN 40

/* One command on its way through raft. Freed when both the raft request and
 * the timeout timer are done with it. */
struct pending_cmd {
    struct raft_apply apply;
    struct req_ref ref;
    struct node *node;
    uv_timer_t timer;
    int answered;
    int raft_done;
    char token[TOKEN_LEN + 1]; /* apikey.Create: shown once, never logged */
};

static void pending_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void pending_release(struct pending_cmd *p)
{
    if (p->raft_done && p->answered) {
        p->timer.data = p;
        uv_close((uv_handle_t *)&p->timer, pending_timer_closed);
    }
}

static void pending_gone(struct req_ref *ref)
{
    struct pending_cmd *p = (struct pending_cmd *)((char *)ref - offsetof(struct pending_cmd, ref));
    p->answered = 1;
    uv_timer_stop(&p->timer);
    pending_release(p);
}

static void pending_answer_unavailable(struct pending_cmd *p, const char *message)
{
    h2o_req_t *req;
    if (p->answered) {
        return;
    }
    req = req_ref_detach(&p->ref);
    p->answered = 1;
    uv_timer_stop(&p->timer);
    if (req != NULL) {
        http_reply_unavailable(p->node, req, message);
    }
}

static void pending_timeout(uv_timer_t *t)
{
    struct pending_cmd *p = t->data;
    pending_answer_unavailable(p, "the command was not committed in time; it may still be "
                                  "applied: retry with the same Idempotency-Key");
    pending_release(p);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct pending_cmd *p = req->data;
    const struct fsm_result *r = result;
    h2o_req_t *hreq;

    p->raft_done = 1;
    if (p->answered) {
        pending_release(p);
        return;
    }
    if (status != 0 || r == NULL || r->status == 0) {
        pending_answer_unavailable(p, "leadership was lost; the command may have been "
                                      "applied: retry with the same Idempotency-Key");
        pending_release(p);
        return;
    }
    hreq = req_ref_detach(&p->ref);
    p->answered = 1;
    uv_timer_stop(&p->timer);
    if (hreq != NULL) {
        http_prepare(p->node, hreq, r->status);
        if (r->replayed) {
            http_add_header(hreq, "idempotent-replayed", "true");
        }
        if (p->token[0] != '\0' && r->status == 200 && !r->replayed && r->body.len > 1) {
            /* The token is added here, by the node that made it: it is in
             * neither the log nor the idempotency record. */
            size_t n = r->body.len - 1 + sizeof ",\"Token\":\"\"}" + TOKEN_LEN;
            char *body = h2o_mem_alloc_pool(&hreq->pool, n);
            int len = snprintf(body, n, "%.*s,\"Token\":\"%s\"}", (int)(r->body.len - 1),
                               r->body.data, p->token);
            h2o_send_inline(hreq, body, (size_t)len);
        } else {
            h2o_send_inline(hreq, r->body.data, r->body.len);
        }
    }
    pending_release(p);
}

static int valid_idempotency_key(const char *k)
{
    size_t n = strlen(k);
    size_t i;
    if (n < 1 || n > IDEMPOTENCY_KEY_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (k[i] < 0x20 || k[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Answer from this node's idempotency record if it has one; returns 1 if
 * answered. A node that has not yet applied the first attempt lets the
 * entry through: apply makes the same decision from the log. */
static int idempotency_answer(struct node *node, h2o_req_t *req, const char *key,
                              const uint8_t hash[32])
{
    struct store *st = &node->store;
    sqlite3_stmt *s;

    if (store_run(st, ST_IDEM_GET, "s", key) != SQLITE_ROW) {
        sqlite3_reset(st->stmts[ST_IDEM_GET]);
        return 0;
    }
    s = st->stmts[ST_IDEM_GET];
    if (sqlite3_column_bytes(s, 0) == 32 && memcmp(sqlite3_column_blob(s, 0), hash, 32) == 0) {
        http_prepare(node, req, sqlite3_column_int(s, 1));
        http_add_header(req, "idempotent-replayed", "true");
        h2o_send_inline(req, (const char *)sqlite3_column_text(s, 2),
                        (size_t)sqlite3_column_bytes(s, 2));
    } else {
        http_reply_error(node, req, ERR_IDEMPOTENCY_MISMATCH,
                         "Idempotency-Key was already used with a different command");
    }
    sqlite3_reset(s);
    return 1;
}

/* Validate, encode and submit @cmd with the decoded body @json. */
static void submit_command(struct node *node, h2o_req_t *req, const struct domain_command *cmd,
                           cJSON *json)
{
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    struct codec_error cerr;
    struct err derr;
    ProtobufCMessage *msg = NULL;
    struct pending_cmd *p = NULL;
    struct raft_buffer buf = {NULL, 0};
    char key[IDEMPOTENCY_KEY_MAX + 2];
    char id[GENERATED_ID_LEN + 1];
    uint8_t hash[32], token_hash[32];
    uint8_t *payload = NULL;
    size_t payload_len;
    int has_key, rv;

    has_key = http_header(req, "idempotency-key", key, sizeof key);
    if (has_key < 0 || (has_key == 1 && !valid_idempotency_key(key))) {
        http_reply_error(node, req, ERR_BAD_REQUEST,
                         "Idempotency-Key must be 1 to 128 printable ASCII characters");
        return;
    }
    if (codec_decode(cmd->desc, json, &msg, &cerr) != 0) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "%s", cerr.message);
        return;
    }
    if (domain_check(cmd, msg, &derr) != 0) {
        http_reply_error(node, req, derr.code, "%s", derr.message);
        goto out;
    }
    payload_len = protobuf_c_message_get_packed_size(msg);
    payload = malloc(payload_len + strlen(cmd->name) + 1);
    if (payload == NULL) {
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* The request hash covers the command name and its canonical encoding,
     * so whitespace or key order in the JSON do not matter. */
    memcpy(payload, cmd->name, strlen(cmd->name) + 1);
    protobuf_c_message_pack(msg, payload + strlen(cmd->name) + 1);
    if (has_key == 1) {
        util_sha256(payload, payload_len + strlen(cmd->name) + 1, hash);
        if (idempotency_answer(node, req, key, hash)) {
            goto out;
        }
    }
    if (!cluster_is_leader(&node->cluster)) {
        http_reply_unavailable(node, req, "no leader is reachable; retry");
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        goto out;
    }
    e.command = (char *)cmd->name;
    e.payload.data = payload + strlen(cmd->name) + 1;
    e.payload.len = payload_len;
    if (has_key == 1) {
        e.idempotencykey = key;
        e.has_requesthash = 1;
        e.requesthash.data = hash;
        e.requesthash.len = 32;
    }
    e.nodeid = node->config.id;
    e.timems = util_now_ms();
    if (cmd->creates_id) {
        util_random_id(id, GENERATED_ID_LEN);
        e.generatedid = id;
    }
    if (strcmp(cmd->name, "apikey.Create") == 0) {
        util_random_id(p->token, TOKEN_LEN);
        util_sha256(p->token, TOKEN_LEN, token_hash);
        e.has_tokenhash = 1;
        e.tokenhash.data = token_hash;
        e.tokenhash.len = 32;
    }
    if (entry_encode(&e, &buf) != 0) {
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        free(p);
        goto out;
    }
    p->node = node;
    p->apply.data = p;
    rv = cluster_submit(&node->cluster, &p->apply, &buf, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        http_reply_unavailable(node, req, rv == RAFT_NOTLEADER ? "no leader is reachable; retry"
                                                               : "the log is not accepting "
                                                                 "commands now; retry");
        goto out;
    }
    req_ref_attach(&p->ref, req);
    p->ref.on_gone = pending_gone;
    uv_timer_init(&node->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, pending_timeout, node->config.command_timeout_ms, 0);
out:
    free(payload);
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* Parse the body as a JSON object; answers and returns NULL on error. */
static cJSON *parse_body(struct node *node, h2o_req_t *req)
{
    cJSON *json;
    if (req->entity.len > HTTP_MAX_BODY) {
        http_reply_error(node, req, ERR_TOO_LARGE, "request body over %d bytes", HTTP_MAX_BODY);
        return NULL;
    }
    json = cJSON_ParseWithLength(req->entity.base ? req->entity.base : "", req->entity.len);
    if (json == NULL) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "malformed JSON");
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        http_reply_error(node, req, ERR_BAD_REQUEST, "the body must be a JSON object");
        return NULL;
    }
    return json;
}

void api_command(struct node *node, h2o_req_t *req, char **params)
{
    const struct domain_command *cmd = domain_find(params[0]);
    cJSON *json;

    if (cmd == NULL || cmd->api_only) {
        http_reply_error(node, req, ERR_NOT_FOUND, "unknown command '%s'", params[0]);
        return;
    }
    json = parse_body(node, req);
    if (json == NULL) {
        return;
    }
    submit_command(node, req, cmd, json);
    cJSON_Delete(json);
}

void api_changeset(struct node *node, h2o_req_t *req, char **params)
{
    const struct domain_command *cmd = domain_find("collection.CommitChangeset");
    cJSON *json = parse_body(node, req);

    if (json == NULL) {
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(json, "Collection") != NULL) {
        cJSON_Delete(json);
        http_reply_error(node, req, ERR_BAD_REQUEST, "field 'Collection': unknown field");
        return;
    }
    cJSON_AddStringToObject(json, "Collection", params[0]);
    submit_command(node, req, cmd, json);
    cJSON_Delete(json);
}
