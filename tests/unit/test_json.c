/* test_json.c — unit tests for core/base/json.c (parser, DOM, writers). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static struct json *parse_ok(const char *text)
{
	struct err e = {0};
	struct json *v = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);

	ck_assert_msg(v != NULL, "parse of '%s' failed: %s", text, e.msg);
	return v;
}

/* Parses text (which must fail) and returns the message in *e. */
static void parse_fail(const char *text, size_t len, int depth, struct err *e)
{
	struct json *v;

	memset(e, 0, sizeof(*e));
	v = json_parse(text, len, depth, e);
	ck_assert_msg(v == NULL, "parse of '%.*s' unexpectedly succeeded", (int)len, text);
	json_free(v);
	ck_assert_msg(e->msg[0] != '\0', "no error message for '%.*s'", (int)len, text);
}

/* Asserts the error for text contains want. */
static void fail_with(const char *text, const char *want)
{
	struct err e;

	parse_fail(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(strstr(e.msg, want) != NULL, "'%s': got \"%s\", want \"%s\"", text, e.msg,
		      want);
}

static void fail_exact(const char *text, const char *want)
{
	struct err e;

	parse_fail(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_str_eq(e.msg, want);
}

/* Writes v compactly and compares with want. */
static void write_is(const struct json *v, const char *want)
{
	char *s = json_to_string(v);

	ck_assert_str_eq(s, want);
	free(s);
}

/* Parses text, writes it, and compares with want. */
static void rewrite_is(const char *text, const char *want)
{
	struct json *v = parse_ok(text);

	write_is(v, want);
	json_free(v);
}

static void compact_is(const char *text, const char *want)
{
	struct buf b;
	buf_init(&b);
	json_text_compact(&b, text);
	ck_assert_str_eq(buf_cstr(&b), want);
	buf_clear(&b);
}

/* PostgreSQL's spacing ({"id" : 1}, json_agg's ", \n ") goes; strings keep
 * theirs, escaped quotes included. */
START_TEST(test_text_compact)
{
	compact_is("{\"id\" : \"a b\", \"n\" : [1, \n 2]}", "{\"id\":\"a b\",\"n\":[1,2]}");
	compact_is(" [ {\"q\" : \"say \\\" : \\\\\"} ] ", "[{\"q\":\"say \\\" : \\\\\"}]");
	compact_is("{\"a\":1}", "{\"a\":1}");
	compact_is("", "");
	compact_is("\"unterminated ", "\"unterminated ");
}
END_TEST

START_TEST(test_scalars)
{
	struct json *v;

	v = parse_ok("null");
	ck_assert_int_eq(v->type, JSON_NULL);
	json_free(v);
	v = parse_ok(" true ");
	ck_assert_int_eq(v->type, JSON_BOOL);
	ck_assert_int_eq(v->u.boolean, 1);
	json_free(v);
	v = parse_ok("\t\r\nfalse\n");
	ck_assert_int_eq(v->type, JSON_BOOL);
	ck_assert_int_eq(v->u.boolean, 0);
	json_free(v);
	v = parse_ok("\"hi\"");
	ck_assert_int_eq(v->type, JSON_STRING);
	ck_assert_str_eq(v->u.str.s, "hi");
	ck_assert_uint_eq(v->u.str.len, 2);
	json_free(v);
	v = parse_ok("\"\"");
	ck_assert_str_eq(v->u.str.s, "");
	ck_assert_uint_eq(v->u.str.len, 0);
	json_free(v);
	ck_assert_str_eq(json_type_name(JSON_OBJECT), "object");
	ck_assert_str_eq(json_type_name(JSON_BOOL), "boolean");
}
END_TEST

START_TEST(test_numbers)
{
	struct json *v;

	v = parse_ok("42");
	ck_assert_int_eq(v->u.num.is_int, 1);
	ck_assert_int_eq(v->u.num.i, 42);
	ck_assert_double_eq(v->u.num.d, 42.0);
	json_free(v);
	v = parse_ok("-0");
	ck_assert_int_eq(v->u.num.is_int, 1);
	ck_assert_int_eq(v->u.num.i, 0);
	json_free(v);
	v = parse_ok("1.5");
	ck_assert_int_eq(v->u.num.is_int, 0);
	ck_assert_double_eq(v->u.num.d, 1.5);
	json_free(v);
	v = parse_ok("1e2");
	ck_assert_int_eq(v->u.num.is_int, 0);
	ck_assert_double_eq(v->u.num.d, 100.0);
	json_free(v);
	v = parse_ok("-2.5E-3");
	ck_assert_double_eq(v->u.num.d, -0.0025);
	json_free(v);
	v = parse_ok("1E+2");
	ck_assert_double_eq(v->u.num.d, 100.0);
	json_free(v);
	v = parse_ok("1e-400");
	ck_assert_double_eq(v->u.num.d, 0.0);
	json_free(v);
}
END_TEST

START_TEST(test_int64_limits)
{
	struct json *v;

	v = parse_ok("9223372036854775807");
	ck_assert_int_eq(v->u.num.is_int, 1);
	ck_assert(v->u.num.i == INT64_MAX);
	write_is(v, "9223372036854775807");
	json_free(v);
	v = parse_ok("-9223372036854775808");
	ck_assert_int_eq(v->u.num.is_int, 1);
	ck_assert(v->u.num.i == INT64_MIN);
	write_is(v, "-9223372036854775808");
	json_free(v);
	v = parse_ok("9223372036854775808");
	ck_assert_int_eq(v->u.num.is_int, 0);
	ck_assert_double_eq(v->u.num.d, 9223372036854775808.0);
	json_free(v);
	v = parse_ok("-9223372036854775809");
	ck_assert_int_eq(v->u.num.is_int, 0);
	json_free(v);
	v = parse_ok("123456789012345678901234567890");
	ck_assert_int_eq(v->u.num.is_int, 0);
	json_free(v);
}
END_TEST

START_TEST(test_bad_numbers)
{
	fail_with("01", "leading zeros are not allowed");
	fail_with("-01", "leading zeros are not allowed");
	fail_with("00", "leading zeros");
	fail_with("-", "expected a digit, found end of input");
	fail_with("-a", "expected a digit, found 'a'");
	fail_with("1.", "expected a digit after '.'");
	fail_with("1.e5", "expected a digit after '.'");
	fail_with(".5", "expected a value, found '.'");
	fail_with("+1", "expected a value, found '+'");
	fail_with("1e", "expected a digit in the exponent");
	fail_with("1e+", "expected a digit in the exponent");
	fail_with("1e400", "number out of range");
	fail_with("-1e400", "number out of range");
	fail_with("0x10", "trailing characters");
	fail_with("NaN", "expected a value, found 'N'");
	fail_with("Infinity", "expected a value");
}
END_TEST

START_TEST(test_containers)
{
	struct json *v, *a;
	int64_t i = 0;

	v = parse_ok(
		" { \"a\" : [ 1 , 2.5 , \"x\" , true , null , { } , [ ] ] , \"b\" : { \"c\" : false } } ");
	ck_assert_int_eq(v->type, JSON_OBJECT);
	ck_assert_uint_eq(json_len(v), 2);
	a = json_get(v, "a");
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->type, JSON_ARRAY);
	ck_assert_uint_eq(json_len(a), 7);
	ck_assert_int_eq(json_at(a, 0)->u.num.i, 1);
	ck_assert_str_eq(json_at(a, 2)->u.str.s, "x");
	ck_assert_int_eq(json_at(a, 5)->type, JSON_OBJECT);
	ck_assert_uint_eq(json_len(json_at(a, 6)), 0);
	ck_assert_ptr_null(json_at(a, 7));
	ck_assert_ptr_null(json_at(v, 0));
	ck_assert_int_eq(json_get_bool(json_get(v, "b"), "c"), 0);
	ck_assert_int_eq(json_get_bool(v, "b"), -1);
	ck_assert_int_eq(json_get_bool(v, "zz"), -1);
	ck_assert_ptr_null(json_get_str(v, "a"));
	ck_assert_int_eq(json_get_int(v, "a", &i), -1);
	ck_assert_ptr_null(json_get(a, "a"));
	ck_assert_ptr_null(json_get(NULL, "a"));
	ck_assert_uint_eq(json_len(NULL), 0);
	ck_assert_uint_eq(json_len(json_at(a, 0)), 0);
	json_free(v);

	v = parse_ok("{\"n\":7,\"f\":7.5,\"s\":\"str\",\"t\":true}");
	ck_assert_int_eq(json_get_int(v, "n", &i), 0);
	ck_assert_int_eq(i, 7);
	ck_assert_int_eq(json_get_int(v, "f", &i), -1);
	ck_assert_str_eq(json_get_str(v, "s"), "str");
	ck_assert_int_eq(json_get_bool(v, "t"), 1);
	json_free(v);
}
END_TEST

START_TEST(test_escapes)
{
	struct json *v;

	v = parse_ok("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
	ck_assert_str_eq(v->u.str.s, "\" \\ / \b \f \n \r \t");
	json_free(v);
	v = parse_ok("\"\\u0041\\u00e9\\u20AC\\uFFFF\"");
	ck_assert_str_eq(v->u.str.s, "A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf");
	json_free(v);
	v = parse_ok("\"a\\u0000b\"");
	ck_assert_uint_eq(v->u.str.len, 3);
	ck_assert(memcmp(v->u.str.s, "a\0b", 4) == 0);
	write_is(v, "\"a\\u0000b\"");
	json_free(v);
	/* raw UTF-8 passes through */
	v = parse_ok("\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	ck_assert_str_eq(v->u.str.s, "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	json_free(v);

	fail_with("\"\\x\"", "invalid escape '\\x' in string");
	fail_with("\"\\", "unterminated escape sequence");
	fail_with("\"\\u12\"", "invalid \\u escape (expected 4 hex digits)");
	fail_with("\"\\u12G4\"", "invalid \\u escape");
	fail_with("\"\\u", "invalid \\u escape");
}
END_TEST

START_TEST(test_surrogates)
{
	struct json *v;

	v = parse_ok("\"\\uD83D\\uDE00\"");
	ck_assert_str_eq(v->u.str.s, "\xf0\x9f\x98\x80");
	json_free(v);
	v = parse_ok("\"\\udbff\\udfff\"");
	ck_assert_str_eq(v->u.str.s, "\xf4\x8f\xbf\xbf");
	json_free(v);
	v = parse_ok("\"\\uD800\\uDC00\"");
	ck_assert_str_eq(v->u.str.s, "\xf0\x90\x80\x80");
	json_free(v);

	fail_with("\"\\uD83D\"", "unpaired high surrogate \\uD83D");
	fail_with("\"\\uD83Dx\"", "unpaired high surrogate");
	fail_with("\"\\uD83D\\u0041\"", "unpaired high surrogate");
	fail_with("\"\\uD83D\\uD83D\"", "unpaired high surrogate");
	fail_with("\"\\uDE00\"", "unpaired low surrogate \\uDE00");
}
END_TEST

START_TEST(test_invalid_utf8)
{
	static const char *const bad[] = {
		"\"\x80\"",		/* lone continuation */
		"\"\xc3\"",		/* truncated 2-byte */
		"\"\xc3(\"",		/* bad continuation */
		"\"\xc0\xaf\"",		/* overlong '/' */
		"\"\xc1\xbf\"",		/* overlong */
		"\"\xe0\x80\xaf\"",	/* overlong 3-byte */
		"\"\xed\xa0\x80\"",	/* encoded surrogate U+D800 */
		"\"\xf0\x80\x80\xaf\"", /* overlong 4-byte */
		"\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
		"\"\xf5\x80\x80\x80\"",
		"\"\xff\"",
		"\"\xe2\x82\"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fail_with(bad[i], "invalid UTF-8 in string");
	fail_exact("[\"ok\", \"\xe2\x82\"]", "line 1, column 9: invalid UTF-8 in string");
	/* bytes >= 0x80 outside strings */
	fail_with("\xc3\xa9", "expected a value, found byte 0xC3");
}
END_TEST

START_TEST(test_control_chars)
{
	struct err e;

	fail_with("\"a\nb\"", "unescaped control character 0x0A in string");
	fail_with("\"\t\"", "unescaped control character 0x09 in string");
	parse_fail("\"a\0b\"", 5, 0, &e);
	ck_assert_str_eq(e.msg, "line 1, column 3: unescaped control character 0x00 in string");
	/* DEL is not a control character for JSON */
	json_free(parse_ok("\"\x7f\""));
}
END_TEST

START_TEST(test_error_messages)
{
	struct err e;

	fail_exact("", "line 1, column 1: unexpected end of input, expected a value");
	fail_exact("   ", "line 1, column 4: unexpected end of input, expected a value");
	fail_exact("{\"a\" 1}", "line 1, column 6: expected ':' after object key, found '1'");
	fail_exact("{\n  \"a\": 1,\n  \"b\" 2\n}",
		   "line 3, column 7: expected ':' after object key, found '2'");
	fail_exact("[1,\n\"abc", "line 2, column 1: unterminated string");
	fail_exact("{\"\xc3\xa9\xc3\xa9\" x}",
		   "line 1, column 7: expected ':' after object key, found 'x'");
	fail_exact("[1 2]", "line 1, column 4: expected ',' or ']' after array element, found '2'");
	fail_exact("[1,", "line 1, column 4: unexpected end of input, expected a value");
	fail_exact("[1,]", "line 1, column 4: expected a value, found ']'");
	fail_exact("{\"a\":1 \"b\":2}",
		   "line 1, column 8: expected ',' or '}' after object member, found '\"'");
	fail_exact("{\"a\":1,}", "line 1, column 8: expected a string as object key, found '}'");
	fail_exact("{a:1}", "line 1, column 2: expected a string as object key, found 'a'");
	fail_exact("{\"a\":}", "line 1, column 6: expected a value, found '}'");
	fail_exact("{\"a\"", "line 1, column 5: expected ':' after object key, found end of input");
	fail_exact("[1] x", "line 1, column 5: trailing characters after JSON value, found 'x'");
	fail_exact("{} {}", "line 1, column 4: trailing characters after JSON value, found '{'");
	fail_exact("tru", "line 1, column 1: invalid literal (expected true, false or null)");
	fail_exact("nul", "line 1, column 1: invalid literal (expected true, false or null)");
	fail_with("truex", "trailing characters");
	fail_exact("\"\\q\"", "line 1, column 2: invalid escape '\\q' in string");
	fail_exact("{\"a\\u0000\":1}", "line 1, column 2: object key contains \\u0000");
	fail_with("\xef\xbb\xbf{}", "expected a value, found byte 0xEF");

	/* text is (buffer, length): bytes after len are not looked at */
	{
		struct json *v = json_parse("[1]garbage", 3, 0, &e);
		ck_assert_ptr_nonnull(v);
		json_free(v);
	}
	parse_fail("[1]", 2, 0, &e);
	ck_assert_str_eq(
		e.msg,
		"line 1, column 3: expected ',' or ']' after array element, found end of input");
	/* NULL err is allowed */
	ck_assert_ptr_null(json_parse("[", 1, 0, NULL));
	ck_assert_ptr_null(json_parse(NULL, 0, 0, NULL));
}
END_TEST

static char *nested(int levels, char open, char close)
{
	char *s = malloc((size_t)levels * 2 + 1);
	int i;

	for (i = 0; i < levels; i++) {
		s[i] = open;
		s[levels * 2 - 1 - i] = close;
	}
	s[levels * 2] = '\0';
	return s;
}

START_TEST(test_depth_cap)
{
	struct err e;
	struct json *v;
	char *s;

	s = nested(JSON_DEFAULT_MAX_DEPTH, '[', ']');
	v = json_parse(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_ptr_nonnull(v);
	json_free(v);
	v = json_parse(s, strlen(s), 0, &e); /* <= 0 means the default */
	ck_assert_ptr_nonnull(v);
	json_free(v);
	free(s);

	s = nested(JSON_DEFAULT_MAX_DEPTH + 1, '[', ']');
	parse_fail(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_str_eq(e.msg, "line 1, column 33: nesting deeper than 32");
	v = json_parse(s, strlen(s), JSON_DEFAULT_MAX_DEPTH + 1, &e);
	ck_assert_ptr_nonnull(v);
	json_free(v);
	free(s);

	parse_fail("{\"a\":{\"b\":[1]}}", 15, 2, &e);
	ck_assert_str_eq(e.msg, "line 1, column 11: nesting deeper than 2");
	v = json_parse("{\"a\":{\"b\":1}}", 13, 2, &e);
	ck_assert_ptr_nonnull(v);
	json_free(v);

	/* far deeper than any stack would take without the cap */
	s = nested(1000000, '[', ']');
	parse_fail(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_str_eq(e.msg, "line 1, column 33: nesting deeper than 32");
	free(s);
	s = nested(1000000, '{', '}');
	parse_fail(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, &e);
	free(s);
}
END_TEST

START_TEST(test_duplicate_keys)
{
	struct json *v, *w;

	v = parse_ok("{\"a\":1,\"b\":2,\"a\":3}");
	ck_assert_uint_eq(json_len(v), 3);
	ck_assert_int_eq(json_get(v, "a")->u.num.i, 3);
	/* lookups see {"b":2,"a":3}; key order and shadowed members are ignored */
	w = parse_ok("{\"a\":3,\"b\":2}");
	ck_assert(json_equal(v, w));
	json_free(w);
	w = parse_ok("{\"a\":1,\"b\":2}");
	ck_assert(!json_equal(v, w));
	json_free(w);
	/* set replaces what lookups see */
	json_object_set_take(v, "a", json_new_int(9));
	ck_assert_int_eq(json_get(v, "a")->u.num.i, 9);
	ck_assert_uint_eq(json_len(v), 3);
	/* remove takes out every occurrence */
	ck_assert_int_eq(json_object_remove(v, "a"), 1);
	ck_assert_ptr_null(json_get(v, "a"));
	ck_assert_uint_eq(json_len(v), 1);
	ck_assert_int_eq(json_object_remove(v, "a"), 0);
	write_is(v, "{\"b\":2}");
	json_free(v);
}
END_TEST

START_TEST(test_equal)
{
	static const char *const same[][2] = {
		{"{\"a\":1,\"b\":[1,2,{\"c\":null}]}", "{\"b\":[1,2,{\"c\":null}],\"a\":1}"},
		{"1", "1.0"},
		{"100", "1e2"},
		{"0", "-0"},
		{"\"\\u00e9\"", "\"\xc3\xa9\""},
		{"{}", " { } "},
	};
	static const char *const diff[][2] = {
		{"[1,2]", "[2,1]"},
		{"{\"a\":1}", "{\"a\":1,\"b\":1}"},
		{"{\"a\":1}", "{\"b\":1}"},
		{"1", "\"1\""},
		{"true", "false"},
		{"null", "false"},
		{"\"a\\u0000b\"", "\"a\\u0000c\""},
		{"\"ab\"", "\"abc\""},
		{"9007199254740993", "9007199254740992"},
		{"[]", "{}"},
	};
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct json *a = parse_ok(same[i][0]), *b = parse_ok(same[i][1]);
		ck_assert_msg(json_equal(a, b), "%s != %s", same[i][0], same[i][1]);
		ck_assert_msg(json_equal(b, a), "%s != %s", same[i][1], same[i][0]);
		json_free(a);
		json_free(b);
	}
	for (i = 0; i < sizeof(diff) / sizeof(diff[0]); i++) {
		struct json *a = parse_ok(diff[i][0]), *b = parse_ok(diff[i][1]);
		ck_assert_msg(!json_equal(a, b), "%s == %s", diff[i][0], diff[i][1]);
		ck_assert_msg(!json_equal(b, a), "%s == %s", diff[i][1], diff[i][0]);
		json_free(a);
		json_free(b);
	}
	ck_assert(json_equal(NULL, NULL));
}
END_TEST

START_TEST(test_roundtrip)
{
	static const char *const docs[] = {
		"null",
		"true",
		"false",
		"0",
		"-1",
		"3.25",
		"1e300",
		"-1.5e-300",
		"0.1",
		"123456789012345678901234567890",
		"5e-324",
		"1.7976931348623157e308",
		"\"\"",
		"\"\\u0001\\u001f\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"\xe2\x80\xa8\xe2\x80\xa9 <&> \xf0\x9f\x98\x80\"",
		"[]",
		"{}",
		"[[[[]]]]",
		"{\"\":{\"\":[null,{}]}}",
		"{\"k\\n\":\"v\\u0000\",\"arr\":[1,2.5,-3e10,true,false,null,\"x\"],\"o\":{\"p\":{}}}",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct json *a = parse_ok(docs[i]), *b, *c;
		char *s = json_to_string(a), *s2;

		b = parse_ok(s);
		ck_assert_msg(json_equal(a, b), "round trip of %s via %s", docs[i], s);
		c = json_clone(a);
		ck_assert(json_equal(a, c));
		s2 = json_to_string(c);
		ck_assert_str_eq(s, s2);
		free(s);
		free(s2);
		json_free(a);
		json_free(b);
		json_free(c);
	}
}
END_TEST

START_TEST(test_write_exact)
{
	rewrite_is(" { \"a\" : [ 1 , 2 ] , \"b\" : \"x\" } ", "{\"a\":[1,2],\"b\":\"x\"}");
	rewrite_is("\"\\/\"", "\"/\"");
	rewrite_is("\"\\u0001\\u001F\\u007f\"", "\"\\u0001\\u001f\x7f\"");
	rewrite_is("\"\\b\\f\\n\\r\\t\\\"\\\\\"", "\"\\b\\f\\n\\r\\t\\\"\\\\\"");
	rewrite_is("\"<a href='x'>&amp;</a>\"", "\"<a href='x'>&amp;</a>\"");
	rewrite_is("\"\\u2028\\u2029\"", "\"\\u2028\\u2029\"");
	rewrite_is("\"\xe2\x80\xa8\"", "\"\\u2028\"");
	rewrite_is("\"\\u20AC\xe2\x80\xaa\"", "\"\xe2\x82\xac\xe2\x80\xaa\"");
	rewrite_is("1.0", "1");
	rewrite_is("1e2", "100");
	rewrite_is("-0.0", "-0");
	rewrite_is("0.1", "0.1");
	rewrite_is("1.5e300", "1.5e+300");
	rewrite_is("1e17", "1e+17");
	rewrite_is("123456789012345678", "123456789012345678");
	rewrite_is("1.25", "1.25");
	rewrite_is("9223372036854775808", "9.223372036854776e+18");

	{
		struct buf b;
		buf_init(&b);
		json_write_string(&b, NULL);
		json_write_string(&b, "q\"");
		json_write_stringn(&b, "\xff\xc3", 2); /* invalid UTF-8 is replaced */
		ck_assert_str_eq(buf_cstr(&b), "null\"q\\\"\"\"\\ufffd\\ufffd\"");
		buf_clear(&b);
	}
}
END_TEST

START_TEST(test_builders)
{
	struct json *o = json_new_object(), *a = json_new_array(), *c;
	char *s;

	json_array_push_take(a, json_new_int(-5));
	json_array_push_take(a, json_new_double(0.5));
	json_array_push_take(a, json_new_double(NAN));
	json_array_push_take(a, json_new_double(INFINITY));
	json_array_push_take(a, json_new_string(NULL));
	json_array_push_take(a, NULL);
	json_array_push_take(a, json_new_stringn("a\0b", 3));
	json_array_push_take(a, json_new_bool(7));
	json_array_push_take(a, json_new_null());
	json_object_set_take(o, "list", a);
	json_object_set_take(o, "name", json_new_string("Acme \"Co\""));
	json_object_set_take(o, "n", json_new_int(1));
	json_object_set_take(o, "n", json_new_int(2));
	json_object_set_take(o, "big", json_new_double(1e20));
	write_is(o, "{\"list\":[-5,0.5,null,null,null,null,\"a\\u0000b\",true,null],"
		    "\"name\":\"Acme \\\"Co\\\"\",\"n\":2,\"big\":1e+20}");
	ck_assert_uint_eq(json_len(o), 4);

	c = json_clone(o);
	ck_assert_int_eq(json_object_remove(c, "name"), 1);
	ck_assert_int_eq(json_object_remove(c, "nope"), 0);
	ck_assert_int_eq(json_object_remove(a, "x"), 0); /* not an object */
	ck_assert(!json_equal(o, c));
	s = json_to_string(c);
	ck_assert_str_eq(s, "{\"list\":[-5,0.5,null,null,null,null,\"a\\u0000b\",true,null],"
			    "\"n\":2,\"big\":1e+20}");
	free(s);
	json_free(c);

	/* taking into a non-container frees the value instead of leaking it */
	json_array_push_take(o, json_new_string("x"));
	json_object_set_take(a, "x", json_new_string("x"));
	json_array_push_take(NULL, json_new_int(1));
	ck_assert_uint_eq(json_len(o), 4);
	ck_assert_ptr_null(json_free(o));
	ck_assert_ptr_null(json_free(NULL));
	ck_assert_ptr_null(json_clone(NULL));
}
END_TEST

START_TEST(test_jw)
{
	struct buf b;
	struct jw w;
	struct json *v = parse_ok("{\"x\":[1,{}]}");
	int i;

	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "a");
	jw_int(&w, -9223372036854775807LL - 1);
	jw_key(&w, "b");
	jw_array_begin(&w);
	jw_string(&w, "s\n");
	jw_string(&w, NULL);
	jw_double(&w, 2.5);
	jw_double(&w, NAN);
	jw_bool(&w, 1);
	jw_bool(&w, 0);
	jw_null(&w);
	jw_array_begin(&w);
	jw_array_end(&w);
	jw_object_begin(&w);
	jw_object_end(&w);
	jw_value(&w, v);
	jw_raw(&w, "{\"r\":1}");
	jw_array_end(&w);
	jw_key(&w, "c\"");
	jw_object_begin(&w);
	jw_key(&w, "d");
	jw_value(&w, NULL);
	jw_object_end(&w);
	jw_key(&w, "e");
	jw_raw(&w, "[]");
	jw_object_end(&w);
	ck_assert_str_eq(
		buf_cstr(&b),
		"{\"a\":-9223372036854775808,\"b\":[\"s\\n\",null,2.5,null,true,false,null,"
		"[],{},{\"x\":[1,{}]},{\"r\":1}],\"c\\\"\":{\"d\":null},\"e\":[]}");
	ck_assert_int_eq(w.depth, 0);
	json_free(v);

	/* 64 levels, each holding two values */
	buf_reset(&b);
	jw_init(&w, &b);
	for (i = 0; i < 64; i++) {
		jw_array_begin(&w);
		jw_int(&w, i);
	}
	for (i = 0; i < 64; i++) {
		jw_int(&w, i);
		jw_array_end(&w);
	}
	v = json_parse(b.data, b.len, 64, NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(json_at(v, 0)->u.num.i, 0);
	ck_assert_int_eq(json_at(v, 2)->u.num.i, 63);
	json_free(v);

	/* a scalar at top level */
	buf_reset(&b);
	jw_init(&w, &b);
	jw_string(&w, "top");
	ck_assert_str_eq(buf_cstr(&b), "\"top\"");
	buf_clear(&b);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_scalars);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_int64_limits);
	tcase_add_test(tc, test_bad_numbers);
	tcase_add_test(tc, test_containers);
	tcase_add_test(tc, test_escapes);
	tcase_add_test(tc, test_surrogates);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_control_chars);
	tcase_add_test(tc, test_error_messages);
	tcase_add_test(tc, test_depth_cap);
	tcase_add_test(tc, test_duplicate_keys);
	tcase_add_test(tc, test_equal);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_write_exact);
	tcase_add_test(tc, test_builders);
	tcase_add_test(tc, test_jw);
	tcase_add_test(tc, test_text_compact);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
