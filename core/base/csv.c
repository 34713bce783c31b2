/* csv.c — RFC 4180 reader; see csv.h. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len;
	unsigned min;
	unsigned cp;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2, min = 0x80, cp = s[0] & 0x1Fu;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3, min = 0x800, cp = s[0] & 0x0Fu;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4, min = 0x10000, cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

struct reader {
	const char *p, *end;
	size_t line;
	const struct csv_limits *lim;
	struct csv *out;
	struct buf field;
	struct csv_record rec; /* the record being read */
	struct err *e;
};

static int fail(struct reader *r, const char *what)
{
	return err_set(r->e, "line %zu, field %zu: %s", r->line, r->rec.n + 1, what);
}

static int field_add_bytes(struct reader *r, const char *s, size_t n)
{
	if (r->lim->max_field && r->field.len + n > r->lim->max_field)
		return err_set(r->e, "line %zu, field %zu: longer than %zu bytes", r->line,
			       r->rec.n + 1, r->lim->max_field);
	buf_append(&r->field, s, n);
	return 0;
}

/* One character (or UTF-8 sequence) of field text at r->p. */
static int field_char(struct reader *r)
{
	const unsigned char *s = (const unsigned char *)r->p;
	if (*s == '\0')
		return fail(r, "contains a NUL byte");
	size_t n = utf8_seq(s, (size_t)(r->end - r->p));
	if (!n)
		return fail(r, "is not valid UTF-8");
	if (field_add_bytes(r, r->p, n))
		return -1;
	r->p += n;
	return 0;
}

static int field_end(struct reader *r)
{
	if (r->lim->max_fields && r->rec.n >= r->lim->max_fields)
		return err_set(r->e, "line %zu: more than %zu fields", r->line, r->lim->max_fields);
	r->rec.fields = xrealloc(r->rec.fields, (r->rec.n + 1) * sizeof(char *));
	r->rec.fields[r->rec.n++] = xstrndup(r->field.data ? r->field.data : "", r->field.len);
	buf_reset(&r->field);
	return 0;
}

static void record_drop(struct csv_record *rec)
{
	for (size_t i = 0; i < rec->n; i++)
		free(rec->fields[i]);
	free(rec->fields);
	memset(rec, 0, sizeof(*rec));
}

static int record_end(struct reader *r)
{
	/* a blank line is one empty unquoted field: skip it */
	if (r->rec.n == 1 && !r->rec.fields[0][0]) {
		record_drop(&r->rec);
		return 0;
	}
	if (r->lim->max_records && r->out->n >= r->lim->max_records)
		return err_set(r->e, "line %zu: more than %zu records", r->rec.line,
			       r->lim->max_records);
	r->out->records = xrealloc(r->out->records, (r->out->n + 1) * sizeof(struct csv_record));
	r->out->records[r->out->n++] = r->rec;
	memset(&r->rec, 0, sizeof(r->rec));
	return 0;
}

/* At a line end (CR, LF or CRLF): consume it. */
static void eat_eol(struct reader *r)
{
	if (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n')
		r->p++;
	r->p++;
	r->line++;
}

static int quoted_field(struct reader *r)
{
	size_t start_line = r->line;
	r->p++; /* the opening quote */
	for (;;) {
		if (r->p >= r->end)
			return err_set(r->e,
				       "line %zu, field %zu: the quote opened here is never closed",
				       start_line, r->rec.n + 1);
		if (*r->p == '"') {
			if (r->p + 1 < r->end && r->p[1] == '"') {
				if (field_add_bytes(r, "\"", 1))
					return -1;
				r->p += 2;
				continue;
			}
			r->p++;
			break;
		}
		if (*r->p == '\r' || *r->p == '\n') {
			/* line ends inside quotes are data; count them for positions */
			int crlf = *r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n';
			if (field_add_bytes(r, r->p, crlf ? 2 : 1))
				return -1;
			r->p += crlf ? 2 : 1;
			r->line++;
			continue;
		}
		if (field_char(r))
			return -1;
	}
	if (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n')
		return fail(r, "text after the closing quote (a field is either all quoted or not "
			       "quoted)");
	return 0;
}

static int unquoted_field(struct reader *r)
{
	while (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n') {
		if (*r->p == '"')
			return fail(r,
				    "a quote inside an unquoted field (quote the whole field and "
				    "double the quote: \"a \"\"b\"\"\")");
		if (field_char(r))
			return -1;
	}
	return 0;
}

int csv_parse(const char *data, size_t len, const struct csv_limits *lim, struct csv *out,
	      struct err *e)
{
	static const struct csv_limits none = {0};
	struct reader r = {.p = data,
			   .end = data + len,
			   .line = 1,
			   .lim = lim ? lim : &none,
			   .out = out,
			   .e = e};
	memset(out, 0, sizeof(*out));
	buf_init(&r.field);
	if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
		r.p += 3;
	int rc = 0;
	while (r.p < r.end) {
		r.rec.line = r.line;
		for (;;) {
			rc = r.p < r.end && *r.p == '"' ? quoted_field(&r) : unquoted_field(&r);
			if (rc || (rc = field_end(&r)))
				goto out;
			if (r.p < r.end && *r.p == ',') {
				r.p++;
				continue;
			}
			break;
		}
		if (r.p < r.end)
			eat_eol(&r);
		if ((rc = record_end(&r)))
			goto out;
	}
out:
	record_drop(&r.rec);
	buf_clear(&r.field);
	if (rc)
		csv_clear(out);
	return rc ? -1 : 0;
}

void csv_clear(struct csv *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		record_drop(&c->records[i]);
	free(c->records);
	c->records = NULL;
	c->n = 0;
}
