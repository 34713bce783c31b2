/* test_predicate.c — unit tests for core/base/predicate.c: the evaluation table
 * over a fixed client/outputs/job, and parse errors with their columns. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "predicate.h"
#include "testlib.h"

static struct json *parse(const char *text)
{
	struct err e = {0};
	struct json *v = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(v != NULL, "parse of '%s' failed: %s", text, e.msg);
	return v;
}

static const char *const client_text =
	"{\"name\":\"Acme\",\"country\":\"US\",\"phone\":null,\"tags\":[\"a\",\"b\",3],"
	"\"custom_values\":{\"plan\":\"pro\",\"seats\":5,\"price\":9.5,\"vip\":true,"
	"\"address\":{\"city\":\"Austin\",\"zip\":\"78701\"},\"items\":[{\"sku\":\"x1\"}]}}";
static const char *const outputs_text = "{\"user_reused\":false,\"location_id\":\"loc_1\"}";
static const char *const job_text = "{\"id\":\"j1\",\"attempt\":2,\"snapshot\":null}";

struct ecase {
	const char *text;
	int want; /* 1 true, 0 false */
};

/* clang-format off */
static const struct ecase ecases[] = {
	{"client.custom_values.plan == \"pro\"", 1},
	{"client.custom_values.plan == 'pro'", 1},
	{"client.custom_values.plan != \"pro\"", 0},
	{"client.custom_values.plan == \"basic\"", 0},
	{"exists(client.name)", 1},
	{"exists(client.phone)", 0},           /* null counts as absent */
	{"exists(client.website)", 0},
	{"exists(client.custom_values.address.city)", 1},
	{"exists(client.name.first)", 0},       /* below a string: nothing */
	{"outputs.user_reused == false", 1},
	{"outputs.user_reused", 0},             /* a condition is true only when it is true */
	{"client.custom_values.vip", 1},
	{"client.custom_values.plan", 0}, /* a string is not true */
	{"not client.custom_values.plan", 1},
	{"client.phone == null", 1},
	{"client.website == null", 1},
	{"client.country in [\"US\",\"CA\"] and not exists(client.phone)", 1},
	{"client.country in [\"DE\", \"FR\"]", 0},
	{"client.country in []", 0},
	{"\"b\" in client.tags", 1},
	{"3 in client.tags", 1},
	{"\"3\" in client.tags", 0},            /* no conversions */
	{"\"c\" in client.tags", 0},
	{"\"x\" in client.name", 0},            /* not an array */
	{"client.custom_values.seats == 5", 1},
	{"client.custom_values.seats == 5.0", 1},
	{"client.custom_values.seats == \"5\"", 0},
	{"client.custom_values.seats > 4 and client.custom_values.seats <= 5", 1},
	{"client.custom_values.seats < 5", 0},
	{"client.custom_values.seats >= 6", 0},
	{"client.custom_values.price > 9.25", 1},
	{"client.custom_values.price < -1", 0},
	{"client.custom_values.seats > 1e0", 1},
	{"client.custom_values.plan > \"pr\"", 1},            /* strings bytewise */
	{"client.custom_values.plan < \"prp\"", 1},
	{"client.custom_values.plan < 5", 0},                 /* mixed kinds: false */
	{"client.website < 5", 0},
	{"client.custom_values.address.city == \"Austin\"", 1},
	{"client.custom_values.address.zip == \"78701\"", 1},
	{"client.custom_values.items.0.sku == \"x1\"", 1},
	{"client.custom_values.items.1.sku == null", 1},
	{"client.tags.1 == \"b\"", 1},
	{"client.custom_values.address == client.custom_values.address", 1},
	{"job.attempt == 2", 1},
	{"job.id == \"j1\"", 1},
	{"exists(job.snapshot)", 0},
	{"true", 1},
	{"false", 0},
	{"null", 0},
	{"not false", 1},
	{"not not true", 1},
	{"true or false and false", 1},         /* and binds tighter */
	{"(true or false) and false", 0},
	{"false or not (client.custom_values.plan == \"pro\")", 0},
	{"(client.custom_values.plan == \"pro\") == true", 1},
	{"  client.custom_values.plan   ==\"pro\"  ", 1},
	{"client.custom_values.plan==\"pro\"and\nclient.custom_values.seats>1", 1},
	{"exists( client.name )", 1},
	{"outputs.location_id != null and outputs.user_reused == false", 1},
};
/* clang-format on */

START_TEST(test_eval_table)
{
	const struct ecase *c = &ecases[_i];
	struct json *client = parse(client_text), *outputs = parse(outputs_text),
		    *job = parse(job_text);
	struct predicate_roots roots = {client, outputs, job};
	struct err e = {0};
	int rc = predicate_eval(c->text, strlen(c->text), &roots, &e);
	ck_assert_msg(rc == c->want, "%s: got %d, want %d (%s)", c->text, rc, c->want, e.msg);
	ck_assert_int_eq(predicate_check(c->text, strlen(c->text), &e), 0);
	json_free(client);
	json_free(outputs);
	json_free(job);
}
END_TEST

/* Without roots (and with roots that are missing) every path is null. */
START_TEST(test_eval_without_roots)
{
	struct predicate_roots none = {0};
	const char *t =
		"client.custom_values.plan == null and not exists(outputs.x) and job.id == null";
	ck_assert_int_eq(predicate_eval(t, strlen(t), NULL, NULL), 1);
	ck_assert_int_eq(predicate_eval(t, strlen(t), &none, NULL), 1);
}
END_TEST

struct pcase {
	const char *text;
	const char *want; /* e.msg */
};

/* clang-format off */
static const struct pcase pcases[] = {
	{"", "expected a value at column 1"},
	{"   ", "expected a value at column 4"},
	{"client.city ==", "expected a value at column 15"},
	{"client.city == \"pro\" and", "expected a value at column 25"},
	{"client.city = \"pro\"", "expected and, or or the end at column 13"},
	{"client.city == \"pro\" xor true", "expected and, or or the end at column 22"},
	{"outputs.a == 1 == 2", "expected and, or or the end at column 16"},
	{"plan == \"pro\"", "unknown name \"plan\" (a path starts with client, outputs or job) at column 1"},
	{"true and settings.x", "unknown name \"settings\" (a path starts with client, outputs or job) at column 10"},
	{"client. plan == 1", "expected a name after '.' at column 8"},
	{"client.city..x == 1", "expected a name after '.' at column 13"},
	{"client.city == \"pro", "unterminated string at column 16"},
	{"(client.city == 'pro'", "expected ')' at column 22"},
	{"exists client.city", "expected '(' after exists at column 8"},
	{"exists(\"x\")", "expected a path inside exists() at column 8"},
	{"exists(client.city", "expected ')' at column 19"},
	{"client.country in \"US\"", "expected '[' or a path after in at column 19"},
	{"client.country in [\"US\" \"CA\"]", "expected ',' or ']' at column 25"},
	{"client.country in [\"US\",]", "expected a value at column 25"},
	{"client.country in [\"US\"", "expected ',' or ']' at column 24"},
	{"and", "expected a value at column 1"},
	{"not", "expected a value at column 4"},
	{"outputs.x == 1e999", "a number out of range at column 14"},
	{"outputs.x == - 1", "expected a value at column 14"},
	{"outputs.x == #", "expected a value at column 14"},
	{"outputs.x == 1.", "expected and, or or the end at column 15"},
	{"client.city == \"pro\" )", "expected and, or or the end at column 22"},
	{"client.plan == \"pro\"", "unknown client field \"plan\" (client data has name, email, first_name, last_name, phone, address, city, state, postal_code, country, website, timezone, custom_values, tags, external_id) at column 8"},
	{"exists(client.tags) and job.step == 1", "unknown job field \"step\" (job has id, agency_id, company_id, snapshot, attempt, retry_count) at column 29"},
};
/* clang-format on */

START_TEST(test_parse_errors)
{
	const struct pcase *c = &pcases[_i];
	struct err e = {0};
	ck_assert_int_eq(predicate_check(c->text, strlen(c->text), &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, c->want);
	ck_assert_int_eq(e.code, ERR_INVALID);
	/* evaluation refuses the same text with the same words */
	struct err e2 = {0};
	ck_assert_int_eq(predicate_eval(c->text, strlen(c->text), NULL, &e2), ERR_INVALID);
	ck_assert_str_eq(e2.msg, c->want);
}
END_TEST

/* The bounds: length, nesting, names, numbers; a NUL inside the text. */
START_TEST(test_limits)
{
	struct err e = {0};
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "outputs.a == \"");
	while (b.len < PREDICATE_MAX_LEN - 1)
		buf_putc(&b, 'x');
	buf_putc(&b, '"');
	ck_assert_int_eq(b.len, PREDICATE_MAX_LEN);
	ck_assert_int_eq(predicate_check(b.data, b.len, &e), 0);
	buf_putc(&b, ' ');
	ck_assert_int_eq(predicate_check(b.data, b.len, &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "longer than 1000 characters");
	buf_clear(&b);

	for (int i = 0; i < PREDICATE_MAX_DEPTH - 1; i++)
		buf_putc(&b, '(');
	buf_puts(&b, "true");
	for (int i = 0; i < PREDICATE_MAX_DEPTH - 1; i++)
		buf_putc(&b, ')');
	ck_assert_int_eq(predicate_eval(b.data, b.len, NULL, &e), 1);
	buf_reset(&b);
	for (int i = 0; i < PREDICATE_MAX_DEPTH; i++)
		buf_putc(&b, '(');
	buf_puts(&b, "true");
	ck_assert_int_eq(predicate_check(b.data, b.len, &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "nested deeper than 32 at column 33");
	buf_reset(&b);
	for (int i = 0; i < 40; i++)
		buf_puts(&b, "not ");
	buf_puts(&b, "true");
	ck_assert_int_eq(predicate_check(b.data, b.len, &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "nested deeper than 32 at column 129");
	buf_clear(&b);

	const char *longname =
		"client.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa == 1";
	ck_assert_int_eq(predicate_check(longname, strlen(longname), &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "a name longer than 64 characters at column 8");
	const char *longnum =
		"outputs.a == 1234567890123456789012345678901234567890123456789012345678901234";
	ck_assert_int_eq(predicate_check(longnum, strlen(longnum), &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "a number longer than 63 characters at column 14");
	const char nul[] = "true\0 or false";
	ck_assert_int_eq(predicate_check(nul, sizeof(nul) - 1, &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "expected and, or or the end at column 5");
	ck_assert_int_eq(predicate_check(NULL, 0, &e), ERR_INVALID);
	ck_assert_str_eq(e.msg, "expected a value at column 1");
	ck_assert_int_eq(predicate_check("client.", 7, NULL), ERR_INVALID); /* e may be NULL */
}
END_TEST

static Suite *predicate_suite(void)
{
	Suite *s = suite_create("predicate");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_eval_table, 0, (int)(sizeof(ecases) / sizeof(ecases[0])));
	tcase_add_test(tc, test_eval_without_roots);
	tcase_add_loop_test(tc, test_parse_errors, 0, (int)(sizeof(pcases) / sizeof(pcases[0])));
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(predicate_suite());
}
