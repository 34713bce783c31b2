/* csv.h — an RFC 4180 reader for uploads (the batch job import): a pure
 * function over a buffer, so it has a fuzz target (tests/fuzz/fuzz_csv.c).
 *
 * Accepted: fields separated by ',', records ended by CRLF, LF or a lone CR;
 * an optional UTF-8 byte order mark at the start; fields quoted with '"'
 * (separators, line ends and doubled quotes "" inside); a final line end or
 * none; blank lines (skipped). Refused, with the line and field: a quote
 * inside an unquoted field, text after a closing quote, an unterminated
 * quote, NUL bytes, invalid UTF-8, and anything over the limits. */
#ifndef GHL_CSV_H
#define GHL_CSV_H

#include <stddef.h>

#include "util.h"

struct csv_limits {
	size_t max_records; /* records, the header included; 0 = no cap */
	size_t max_fields;  /* per record; 0 = no cap */
	size_t max_field;   /* bytes per field; 0 = no cap */
};

struct csv_record {
	char **fields; /* NUL-terminated copies (no NUL inside: refused) */
	size_t n;
	size_t line; /* 1-based line where the record starts */
};

struct csv {
	struct csv_record *records;
	size_t n;
};

/* Parse len bytes of data into *out (zeroed first). 0 on success; -1 with
 * e set ("line 4, field 2: ...") and *out empty on failure. The caller frees
 * *out with csv_clear. */
int csv_parse(const char *data, size_t len, const struct csv_limits *lim, struct csv *out,
	      struct err *e);

/* Free the records of c (c itself is the caller's); c is left empty. */
void csv_clear(struct csv *c);

#endif
