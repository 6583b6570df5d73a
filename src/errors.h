/* Project error codes and the one table mapping them to HTTP (SPEC §2). */
#ifndef VARASTO_ERRORS_H
#define VARASTO_ERRORS_H

enum err_code {
    ERR_OK = 0,
    ERR_BAD_REQUEST,
    ERR_UNAUTHORIZED,
    ERR_FORBIDDEN,
    ERR_NOT_FOUND,
    ERR_CONFLICT,
    ERR_GONE,
    ERR_TOO_LARGE,
    ERR_IDEMPOTENCY_MISMATCH,
    ERR_UNAVAILABLE,
    ERR_TIMEOUT,
    ERR_INTERNAL,
};

/* HTTP status for @code (500 for unknown codes). */
int err_http_status(enum err_code code);

/* The snake_case `Code` string of the error body. */
const char *err_code_string(enum err_code code);

/* An error with a human-readable message, carried as a value. */
struct err {
    enum err_code code;
    char message[320];
};

/* Set @e and return @code, for `return err_set(e, ERR_CONFLICT, "...")`. */
int err_set(struct err *e, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct buf;

/* Append the error document {"Error":@message,"Code":"..."} to @out, with
 * @extra (a JSON member such as "\"OldestSeq\":5", or NULL) before the
 * closing brace: every error body of the API is written by this function.
 * Returns 0 or -1 when out of memory. */
int err_write_body(struct buf *out, enum err_code code, const char *message, const char *extra);

#endif
