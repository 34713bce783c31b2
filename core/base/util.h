/* util.h — small shared helpers: error carrier, growable buffer, string helpers.
 *
 * Error convention (STYLE.md, docs/ARCHITECTURE.md "Conventions"): functions
 * return 0 or a negative code; rich text goes into an optional `struct err *`
 * out-parameter, which records the code too.
 */
#ifndef GHL_UTIL_H
#define GHL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes, libuv's UV__ERR style: 0 is success, every failure negative,
 * so callers test `< 0`. ERR_FAIL is the generic failure whose message says
 * why; ERR_SYS(errno) is a system call's failure (EPERM, whose -1 is
 * ERR_FAIL, is told apart by its message only); the agent's own kinds sit
 * below -4000 so that they never meet an errno. */
#define ERR_SYS(x) (-(x))
enum err_code {
	ERR_FAIL = -1,
	ERR_INVALID = -4001,   /* bad input: configuration, a file's contents, a request */
	ERR_NOT_FOUND = -4002, /* what was asked for does not exist */
	ERR_RETRY = -4003,     /* transient: the same call may work later */
};

struct err {
	char msg[512];
	int code; /* the negative code the failing call returned */
};

/* Format a message into *e (no-op when e is NULL) and record ERR_FAIL.
 * Returns ERR_FAIL (-1) so that callers can write `return err_set(e, "...")`. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with a code of its own (negative: ERR_SYS(errno), ERR_INVALID, …);
 * returns code: `return err_setc(e, ERR_SYS(errno), "%s: %s", path, strerror(errno))`. */
int err_setc(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "prefix: old"; the code stays. Returns -1. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation helpers that abort on out-of-memory. The only other abort is
 * config.c's check of its own defaults at start-up (a bug, not input). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer, always NUL-terminated when len > 0 or after buf_cstr. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
/* Frees b's data and leaves b empty (b itself is the caller's). */
void buf_clear(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns the NUL-terminated contents (never NULL; "" when empty). */
const char *buf_cstr(struct buf *b);
/* Hands the allocation to the caller (NUL-terminated, never NULL); b is reset. */
char *buf_take(struct buf *b);

/* Strings. */
int str_eq(const char *a, const char *b); /* NULL-safe equality */
int str_has_prefix(const char *s, const char *prefix);
char *str_trim(char *s); /* in place; returns s advanced */
/* Strict integer parse of the whole string; 0 on success, -1 otherwise. */
int str_to_ll(const char *s, long long min, long long max, long long *out);
/* Parse a duration like "30", "30s", "500ms", "5m", "1h", "90d" into milliseconds. */
int str_to_duration_ms(const char *s, long long *out_ms);

/* Monotonic and wall clocks. */
int64_t now_monotonic_ms(void);
int64_t now_wall_ms(void);

/* Constant-time memory comparison (1 when equal). */
int mem_eq_ct(const void *a, const void *b, size_t n);

/* Read a whole file into a NUL-terminated malloc'd buffer; size in *len. */
int file_read_all(const char *path, char **out, size_t *len, struct err *e);

/* Backoff before retry number n (1-based): min(max, base * 2^(n-1)), with
 * jitter drawn uniformly from [d/2, d]; at least retry_after_ms when the
 * server said so (and never above max unless it said so). Pure, for tests;
 * the scheduler's job retries and the GHL client's request retries use it. */
long long backoff_ms(int n, long long base_ms, long long max_ms, long long retry_after_ms,
		     uint64_t random);

#endif
