/* fuzz_csv.c — libFuzzer target for core/base/csv.c.
 *
 * Invariants: parsing never crashes or leaks; whatever parses, written back
 * with every field quoted and CRLF line ends, parses again to the same
 * records; errors always carry a message with a line number.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_quoted(struct buf *b, const struct csv *c)
{
	for (size_t i = 0; i < c->n; i++) {
		for (size_t k = 0; k < c->records[i].n; k++) {
			if (k)
				buf_putc(b, ',');
			buf_putc(b, '"');
			for (const char *p = c->records[i].fields[k]; *p; p++) {
				if (*p == '"')
					buf_putc(b, '"');
				buf_putc(b, *p);
			}
			buf_putc(b, '"');
		}
		buf_puts(b, "\r\n");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_limits lim = {.max_records = 1000, .max_fields = 100, .max_field = 4096};
	struct csv a, b;
	struct err e;
	memset(&e, 0, sizeof(e));
	if (csv_parse((const char *)data, size, &lim, &a, &e)) {
		if (a.n || !strstr(e.msg, "line "))
			abort();
		return 0;
	}
	struct buf out;
	buf_init(&out);
	write_quoted(&out, &a);
	if (csv_parse(out.data ? out.data : "", out.len, &lim, &b, &e))
		abort();
	if (a.n != b.n)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		if (a.records[i].n != b.records[i].n)
			abort();
		for (size_t k = 0; k < a.records[i].n; k++)
			if (strcmp(a.records[i].fields[k], b.records[i].fields[k]))
				abort();
	}
	buf_clear(&out);
	csv_clear(&a);
	csv_clear(&b);
	return 0;
}
