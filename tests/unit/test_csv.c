/* test_csv.c — unit tests for core/base/csv.c (RFC 4180 reader). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

static const struct csv_limits lim = {.max_records = 100, .max_fields = 20, .max_field = 64};

static void parse_ok(const char *text, size_t len, struct csv *c)
{
	struct err e = {0};
	ck_assert_msg(csv_parse(text, len, &lim, c, &e) == 0, "parse of '%.*s' failed: %s",
		      (int)len, text, e.msg);
}

static void parse_fails(const char *text, const char *want)
{
	struct err e = {0};
	struct csv c;
	ck_assert_msg(csv_parse(text, strlen(text), &lim, &c, &e) == -1,
		      "parse of '%s' unexpectedly succeeded", text);
	ck_assert_msg(c.n == 0 && c.records == NULL, "records left after a failure");
	ck_assert_msg(strstr(e.msg, want), "error '%s' does not contain '%s'", e.msg, want);
}

static void assert_field(const struct csv *c, size_t rec, size_t f, const char *want)
{
	ck_assert_msg(rec < c->n, "record %zu missing (have %zu)", rec, c->n);
	ck_assert_msg(f < c->records[rec].n, "record %zu field %zu missing (have %zu)", rec, f,
		      c->records[rec].n);
	ck_assert_msg(!strcmp(c->records[rec].fields[f], want),
		      "record %zu field %zu: '%s' != '%s'", rec, f, c->records[rec].fields[f],
		      want);
}

START_TEST(test_plain_lf_crlf_cr)
{
	const char *texts[] = {"a,b\n1,2\n", "a,b\r\n1,2\r\n", "a,b\r1,2\r", "a,b\n1,2"};
	for (size_t i = 0; i < 4; i++) {
		struct csv c;
		parse_ok(texts[i], strlen(texts[i]), &c);
		ck_assert_uint_eq(c.n, 2);
		assert_field(&c, 0, 0, "a");
		assert_field(&c, 0, 1, "b");
		assert_field(&c, 1, 0, "1");
		assert_field(&c, 1, 1, "2");
		ck_assert_uint_eq(c.records[1].line, 2);
		csv_clear(&c);
	}
}
END_TEST

START_TEST(test_quoting)
{
	const char
		*t = "name,note\r\n\"Smith, Jones\",\"say \"\"hi\"\"\"\r\n\"two\r\nlines\",\"\"\r\n"
		     "x,\r\n";
	struct csv c;
	parse_ok(t, strlen(t), &c);
	ck_assert_uint_eq(c.n, 4);
	assert_field(&c, 1, 0, "Smith, Jones");
	assert_field(&c, 1, 1, "say \"hi\"");
	assert_field(&c, 2, 0, "two\r\nlines");
	assert_field(&c, 2, 1, "");
	ck_assert_uint_eq(c.records[2].line, 3);
	assert_field(&c, 3, 0, "x");
	assert_field(&c, 3, 1, "");
	ck_assert_uint_eq(c.records[3].line, 5); /* the quoted line end counts */
	csv_clear(&c);
}
END_TEST

START_TEST(test_bom_blank_lines_utf8)
{
	const char *t = "\xEF\xBB\xBFname,city\n\n\"Zoë\",Zürich\n\n";
	struct csv c;
	parse_ok(t, strlen(t), &c);
	ck_assert_uint_eq(c.n, 2);
	assert_field(&c, 0, 0, "name"); /* the BOM is not part of the first name */
	assert_field(&c, 1, 0, "Zoë");
	assert_field(&c, 1, 1, "Zürich");
	ck_assert_uint_eq(c.records[1].line, 3);
	csv_clear(&c);
	parse_ok("", 0, &c);
	ck_assert_uint_eq(c.n, 0);
	csv_clear(&c);
	parse_ok("\xEF\xBB\xBF", 3, &c);
	ck_assert_uint_eq(c.n, 0);
	csv_clear(&c);
}
END_TEST

START_TEST(test_errors)
{
	parse_fails("a,b\n\"open,2\n3,4\n",
		    "line 2, field 1: the quote opened here is never closed");
	parse_fails("a,b\nx,y\"z\n", "line 2, field 2: a quote inside an unquoted field");
	parse_fails("a,b\n\"x\"y,2\n", "line 2, field 1: text after the closing quote");
	parse_fails("a,\xff\n", "line 1, field 2: is not valid UTF-8");
	parse_fails("a,\xC0\xAF\n", "not valid UTF-8");	    /* overlong */
	parse_fails("a,\xED\xA0\x80\n", "not valid UTF-8"); /* surrogate */
	struct err e = {0};
	struct csv c;
	ck_assert_int_eq(csv_parse("a,b\0c\n", 6, &lim, &c, &e), -1);
	ck_assert_msg(strstr(e.msg, "line 1, field 2: contains a NUL byte"), "%s", e.msg);
}
END_TEST

START_TEST(test_limits)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 101; i++)
		buf_puts(&b, "x\n");
	struct err e = {0};
	struct csv c;
	ck_assert_int_eq(csv_parse(b.data, b.len, &lim, &c, &e), -1);
	ck_assert_msg(strstr(e.msg, "line 101: more than 100 records"), "%s", e.msg);
	buf_reset(&b);
	for (int i = 0; i < 21; i++)
		buf_puts(&b, "x,");
	ck_assert_int_eq(csv_parse(b.data, b.len, &lim, &c, &e), -1);
	ck_assert_msg(strstr(e.msg, "more than 20 fields"), "%s", e.msg);
	buf_reset(&b);
	buf_putc(&b, '"');
	for (int i = 0; i < 65; i++)
		buf_putc(&b, 'y');
	buf_putc(&b, '"');
	ck_assert_int_eq(csv_parse(b.data, b.len, &lim, &c, &e), -1);
	ck_assert_msg(strstr(e.msg, "longer than 64 bytes"), "%s", e.msg);
	buf_clear(&b);
	/* NULL limits: no caps */
	ck_assert_int_eq(csv_parse("a\n", 2, NULL, &c, &e), 0);
	ck_assert_uint_eq(c.n, 1);
	csv_clear(&c);
	csv_clear(NULL);
}
END_TEST

static Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_plain_lf_crlf_cr);
	tcase_add_test(tc, test_quoting);
	tcase_add_test(tc, test_bom_blank_lines_utf8);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
