#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

static const struct {
    int status;
    const char *code;
} err_table[] = {
    [ERR_OK] = {200, "ok"},
    [ERR_BAD_REQUEST] = {400, "bad_request"},
    [ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [ERR_FORBIDDEN] = {403, "forbidden"},
    [ERR_NOT_FOUND] = {404, "not_found"},
    [ERR_CONFLICT] = {409, "conflict"},
    [ERR_GONE] = {410, "gone"},
    [ERR_TOO_LARGE] = {413, "too_large"},
    [ERR_IDEMPOTENCY_MISMATCH] = {422, "idempotency_mismatch"},
    [ERR_UNAVAILABLE] = {503, "unavailable"},
    [ERR_TIMEOUT] = {504, "timeout"},
    [ERR_INTERNAL] = {500, "internal"},
};

int err_http_status(enum err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0]) {
        return 500;
    }
    return err_table[code].status;
}

const char *err_code_string(enum err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0]) {
        return "internal";
    }
    return err_table[code].code;
}

int err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return (int)code;
}

int err_write_body(struct buf *out, enum err_code code, const char *message, const char *extra)
{
    int rv = buf_append_str(out, "{\"Error\":");
    rv |= buf_append_json_string(out, message);
    rv |= buf_append_str(out, ",\"Code\":\"");
    rv |= buf_append_str(out, err_code_string(code));
    rv |= buf_append_str(out, "\"");
    if (extra != NULL) {
        rv |= buf_append_str(out, ",");
        rv |= buf_append_str(out, extra);
    }
    rv |= buf_append_str(out, "}");
    return rv != 0 ? -1 : 0;
}
