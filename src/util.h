/* Small helpers shared by several modules: time, ids, hashing, buffers. */
#ifndef VARASTO_UTIL_H
#define VARASTO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch (only the accepting node reads the
 * clock; apply uses the time carried in the log entry). */
int64_t util_now_ms(void);

/* Monotonic milliseconds, for timeouts. */
uint64_t util_mono_ms(void);

/* Format @ms as RFC 3339 UTC with milliseconds into @out (at least 32 bytes). */
void util_format_time(int64_t ms, char *out, size_t size);

/* Fill @out with @len random characters from [0-9A-Za-z] and a NUL. */
void util_random_id(char *out, size_t len);

/* SHA-256 of @data into @digest (32 bytes). */
void util_sha256(const void *data, size_t len, uint8_t digest[32]);

/* FNV-1a, 64 bits: a cheap fingerprint (not for anything adversarial). */
uint64_t util_hash64(const void *data, size_t len);

/* Lower-case hex of @len bytes into @out (2 * len + 1 bytes). */
void util_hex(const uint8_t *data, size_t len, char *out);

/* Copy @src (NULL as "") into @dst of @size bytes, truncating. */
void util_copy(char *dst, size_t size, const char *src);

/* Create directory @path and its missing parents (mode 0700). Returns 0,
 * or -1 with errno set. */
int util_mkdir_p(const char *path);

/* Replace file @path in directory @dir with @len bytes of @data (mode
 * 0600), durably: a temporary file fsync'd, renamed over @path, and the
 * directory fsync'd. Returns 0, or -1 with errno set. */
int util_write_file_durably(const char *dir, const char *path, const void *data, size_t len);

/* Whether @len bytes at @s are well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
int util_utf8_valid(const char *s, size_t len);

/* Fill @p with @len bytes from the kernel's CSPRNG. Ids, tokens and nonces
 * must not be guessable: a failure is fatal, never a weaker fallback. */
void util_random_bytes(void *p, size_t len);

/* A random number other than 0. */
uint64_t util_random_u64(void);

/* A growable byte buffer. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Append; returns 0 or -1 when out of memory. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a decimal integer / a NUL-terminated string. */
int buf_append_int(struct buf *b, long long v);
int buf_append_str(struct buf *b, const char *s);
/* Append @s as a JSON string literal (quoted, with '"', '\\' and control
 * characters escaped). */
int buf_append_json_string(struct buf *b, const char *s);
/* Give up ownership of the data to the caller; the buffer becomes empty. */
char *buf_steal(struct buf *b);

#endif
