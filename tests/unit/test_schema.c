/* test_schema.c — unit tests for core/base/schema.c: which schemas are accepted,
 * and the exact problems (field paths and messages) validation reports. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "schema.h"
#include "testlib.h"

static struct json *parse(const char *text)
{
	struct err e = {0};
	struct json *v = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);

	ck_assert_msg(v != NULL, "parse of '%s' failed: %s", text, e.msg);
	return v;
}

/* Canonical compact form of JSON text. */
static char *canon(const char *text)
{
	struct json *v = parse(text);
	char *s = json_to_string(v);

	json_free(v);
	return s;
}

/* ---- schema_validate ---------------------------------------------------- */

struct vcase {
	const char *schema;
	const char *value;
	const char *path;
	const char *want; /* the problems array */
};

/* clang-format off */
static const struct vcase vcases[] = {
	/* type */
	{ "{\"type\":\"integer\"}", "\"x\"", "config",
	  "[{\"field\":\"config\",\"message\":\"expected integer, got string\"}]" },
	{ "{\"type\":\"integer\"}", "1.5", "config",
	  "[{\"field\":\"config\",\"message\":\"expected integer, got number\"}]" },
	{ "{\"type\":\"integer\"}", "1e2", "config",
	  "[{\"field\":\"config\",\"message\":\"expected integer, got number\"}]" },
	{ "{\"type\":\"integer\"}", "1.0", "config",
	  "[{\"field\":\"config\",\"message\":\"expected integer, got number\"}]" },
	{ "{\"type\":\"integer\"}", "-3", "config", "[]" },
	{ "{\"type\":\"number\"}", "3", "config", "[]" },
	{ "{\"type\":\"number\"}", "-0.5e-3", "config", "[]" },
	{ "{\"type\":\"number\"}", "\"3\"", "n",
	  "[{\"field\":\"n\",\"message\":\"expected number, got string\"}]" },
	{ "{\"type\":\"string\"}", "\"\"", "config", "[]" },
	{ "{\"type\":\"string\"}", "7", "config",
	  "[{\"field\":\"config\",\"message\":\"expected string, got integer\"}]" },
	{ "{\"type\":\"boolean\"}", "false", "config", "[]" },
	{ "{\"type\":\"boolean\"}", "null", "config",
	  "[{\"field\":\"config\",\"message\":\"expected boolean, got null\"}]" },
	{ "{\"type\":\"boolean\"}", "0", "config",
	  "[{\"field\":\"config\",\"message\":\"expected boolean, got integer\"}]" },
	{ "{\"type\":\"null\"}", "null", "config", "[]" },
	{ "{\"type\":\"null\"}", "{}", "config",
	  "[{\"field\":\"config\",\"message\":\"expected null, got object\"}]" },
	{ "{\"type\":\"array\"}", "{}", "config",
	  "[{\"field\":\"config\",\"message\":\"expected array, got object\"}]" },
	{ "{\"type\":\"object\"}", "[]", "config",
	  "[{\"field\":\"config\",\"message\":\"expected object, got array\"}]" },
	{ "{\"type\":\"object\"}", "{\"anything\":1}", "config", "[]" },
	{ "{\"type\":[\"string\",\"null\"]}", "null", "config", "[]" },
	{ "{\"type\":[\"string\",\"null\"]}", "5", "config",
	  "[{\"field\":\"config\",\"message\":\"expected string or null, got integer\"}]" },
	{ "{\"type\":[\"string\",\"integer\",\"null\"]}", "true", "config",
	  "[{\"field\":\"config\",\"message\":\"expected string, integer or null, got boolean\"}]" },
	{ "{\"type\":[\"integer\",\"number\"]}", "2.5", "config", "[]" },
	/* a wrong type stops the checks below it */
	{ "{\"type\":\"string\",\"minLength\":5}", "3", "config",
	  "[{\"field\":\"config\",\"message\":\"expected string, got integer\"}]" },
	/* keywords of other types do not apply */
	{ "{\"minLength\":5,\"minimum\":9,\"minItems\":3}", "{}", "config", "[]" },
	{ "{\"minLength\":5,\"properties\":{\"a\":{\"type\":\"string\"}}}", "7", "config", "[]" },
	/* properties, additionalProperties, required */
	{ "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\"},\"role\":"
	  "{\"type\":\"string\"}},\"additionalProperties\":false}",
	  "{\"role\":\"admin\",\"x\":1}", "config",
	  "[{\"field\":\"config.x\",\"message\":\"unknown field\"}]" },
	{ "{\"additionalProperties\":false}", "{\"a\":1}", "config",
	  "[{\"field\":\"config.a\",\"message\":\"unknown field\"}]" },
	{ "{\"additionalProperties\":false}", "{}", "config", "[]" },
	/* a repeated key is refused, whatever the schema allows */
	{ "{}", "{\"a\":1,\"b\":2,\"a\":3}", "config",
	  "[{\"field\":\"config.a\",\"message\":\"duplicate field\"}]" },
	{ "{\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":true}",
	  "{\"b\":\"x\",\"a\":1}", "config", "[]" },
	{ "{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"b\":\"x\"}", "config", "[]" },
	{ "{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"a\":\"x\"}", "config",
	  "[{\"field\":\"config.a\",\"message\":\"expected integer, got string\"}]" },
	{ "{\"required\":[\"role\"]}", "{}", "config",
	  "[{\"field\":\"config.role\",\"message\":\"required\"}]" },
	{ "{\"required\":[\"role\"]}", "{\"role\":null}", "config", "[]" },
	{ "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":"
	  "{\"type\":\"string\"}},\"required\":[\"a\",\"b\",\"c\"]}",
	  "{\"b\":1,\"z\":0}", "config",
	  "[{\"field\":\"config.b\",\"message\":\"expected string, got integer\"},"
	  "{\"field\":\"config.a\",\"message\":\"required\"},"
	  "{\"field\":\"config.c\",\"message\":\"required\"}]" },
	{ "{\"properties\":{\"a\":{\"properties\":{\"b\":{\"properties\":{\"c\":"
	  "{\"type\":\"boolean\"}}}}}}}",
	  "{\"a\":{\"b\":{\"c\":\"yes\"}}}", "config",
	  "[{\"field\":\"config.a.b.c\",\"message\":\"expected boolean, got string\"}]" },
	/* keys that need quoting in paths */
	{ "{\"additionalProperties\":false}", "{\"a.b\":1,\"c d\":2,\"\":3,\"ok_-9\":4}", "config",
	  "[{\"field\":\"config[\\\"a.b\\\"]\",\"message\":\"unknown field\"},"
	  "{\"field\":\"config[\\\"c d\\\"]\",\"message\":\"unknown field\"},"
	  "{\"field\":\"config[\\\"\\\"]\",\"message\":\"unknown field\"},"
	  "{\"field\":\"config.ok_-9\",\"message\":\"unknown field\"}]" },
	/* enum */
	{ "{\"enum\":[\"admin\",\"user\"]}", "\"root\"", "config.role",
	  "[{\"field\":\"config.role\",\"message\":\"must be one of: admin, user\"}]" },
	{ "{\"enum\":[\"admin\",\"user\"]}", "\"user\"", "config.role", "[]" },
	{ "{\"enum\":[1,\"a b\",null,\"\",\"x,y\",true,2.5]}", "2", "config",
	  "[{\"field\":\"config\",\"message\":\"must be one of: 1, a b, null, \\\"\\\", "
	  "\\\"x,y\\\", true, 2.5\"}]" },
	{ "{\"enum\":[{\"a\":[1,2]}]}", "{\"a\":[1,2]}", "config", "[]" },
	{ "{\"enum\":[{\"a\":[1,2]}]}", "{\"a\":[2,1]}", "config",
	  "[{\"field\":\"config\",\"message\":\"must be one of: {\\\"a\\\":[1,2]}\"}]" },
	{ "{\"enum\":[1]}", "1", "config", "[]" },
	{ "{\"enum\":[\"ab\"],\"maxLength\":1}", "\"xyz\"", "config",
	  "[{\"field\":\"config\",\"message\":\"must be one of: ab\"}]" },
	/* minimum, maximum */
	{ "{\"minimum\":1}", "0", "config",
	  "[{\"field\":\"config\",\"message\":\"must be >= 1\"}]" },
	{ "{\"minimum\":1}", "1", "config", "[]" },
	{ "{\"minimum\":0.1}", "0", "config",
	  "[{\"field\":\"config\",\"message\":\"must be >= 0.1\"}]" },
	{ "{\"minimum\":-5}", "-5.5", "config",
	  "[{\"field\":\"config\",\"message\":\"must be >= -5\"}]" },
	{ "{\"maximum\":2.5}", "3", "config",
	  "[{\"field\":\"config\",\"message\":\"must be <= 2.5\"}]" },
	{ "{\"maximum\":2.5}", "2.5", "config", "[]" },
	{ "{\"minimum\":1,\"maximum\":1}", "1", "config", "[]" },
	{ "{\"type\":\"integer\",\"minimum\":1,\"maximum\":10}", "11", "max_retries",
	  "[{\"field\":\"max_retries\",\"message\":\"must be <= 10\"}]" },
	/* minLength, maxLength (code points) */
	{ "{\"maxLength\":3}", "\"abcd\"", "config",
	  "[{\"field\":\"config\",\"message\":\"longer than 3 characters\"}]" },
	{ "{\"maxLength\":1}", "\"ab\"", "config",
	  "[{\"field\":\"config\",\"message\":\"longer than 1 character\"}]" },
	{ "{\"maxLength\":3}", "\"h\\u00e9\\u00e9\"", "config", "[]" },
	{ "{\"maxLength\":3}", "\"abc\"", "config", "[]" },
	{ "{\"minLength\":1}", "\"\"", "config",
	  "[{\"field\":\"config\",\"message\":\"must not be empty\"}]" },
	{ "{\"minLength\":3}", "\"ab\"", "config",
	  "[{\"field\":\"config\",\"message\":\"shorter than 3 characters\"}]" },
	{ "{\"minLength\":2}", "\"\\ud83d\\ude00\"", "config",
	  "[{\"field\":\"config\",\"message\":\"shorter than 2 characters\"}]" },
	{ "{\"minLength\":0}", "\"\"", "config", "[]" },
	{ "{\"type\":\"string\"}", "\"a\\u0000b\"", "config",
	  "[{\"field\":\"config\",\"message\":\"must not contain NUL characters\"}]" },
	/* format: formats.h's checks, with their messages */
	{ "{\"format\":\"email\"}", "\"ada@lovelace.example\"", "config", "[]" },
	{ "{\"format\":\"email\"}", "\"ada at example\"", "config.email",
	  "[{\"field\":\"config.email\",\"message\":\"not a valid email address: ' ' in the "
	  "local part needs quoting\"}]" },
	{ "{\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"", "id", "[]" },
	{ "{\"format\":\"uuid\"}", "\"123e4567e89b12d3a456426614174000\"", "id",
	  "[{\"field\":\"id\",\"message\":\"not a UUID (8-4-4-4-12 hexadecimal digits)\"}]" },
	{ "{\"format\":\"e164\"}", "\"+15555550100\"", "p", "[]" },
	{ "{\"format\":\"e164\"}", "\"555 0100\"", "p",
	  "[{\"field\":\"p\",\"message\":\"not an E.164 phone number: start with '+' and the "
	  "country code, e.g. +15555550100\"}]" },
	{ "{\"format\":\"country\"}", "\"UK\"", "c",
	  "[{\"field\":\"c\",\"message\":\"not an ISO 3166-1 alpha-2 code (the United Kingdom is GB)\"}]" },
	{ "{\"format\":\"url\"}", "\"ftp://acme.example\"", "w",
	  "[{\"field\":\"w\",\"message\":\"not a valid web site URL: must be an http:// or https:// URL\"}]" },
	{ "{\"format\":\"url\"}", "\"https://acme.example/x\"", "w", "[]" },
	{ "{\"format\":\"uuid\"}", "42", "id", "[]" }, /* formats apply to strings only */
	/* minItems, maxItems, items */
	{ "{\"minItems\":2}", "[1]", "config",
	  "[{\"field\":\"config\",\"message\":\"fewer than 2 items\"}]" },
	{ "{\"minItems\":1}", "[]", "config",
	  "[{\"field\":\"config\",\"message\":\"must not be empty\"}]" },
	{ "{\"maxItems\":1}", "[1,2]", "config",
	  "[{\"field\":\"config\",\"message\":\"more than 1 item\"}]" },
	{ "{\"maxItems\":50}", "[1,2]", "config", "[]" },
	{ "{\"items\":{\"type\":\"string\"}}", "[\"a\",2,\"c\",false]", "config.tags",
	  "[{\"field\":\"config.tags[1]\",\"message\":\"expected string, got integer\"},"
	  "{\"field\":\"config.tags[3]\",\"message\":\"expected string, got boolean\"}]" },
	{ "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"maxItems\":2,"
	  "\"items\":{\"type\":\"string\",\"minLength\":1}}}}",
	  "{\"tags\":[\"a\",\"b\",\"\"]}", "config",
	  "[{\"field\":\"config.tags\",\"message\":\"more than 2 items\"},"
	  "{\"field\":\"config.tags[2]\",\"message\":\"must not be empty\"}]" },
	{ "{\"items\":{\"items\":{\"type\":\"integer\"}}}", "[[1],[2,\"x\"]]", "m",
	  "[{\"field\":\"m[1][1]\",\"message\":\"expected integer, got string\"}]" },
	/* the root path may be empty */
	{ "{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"a\":\"x\"}", "",
	  "[{\"field\":\"a\",\"message\":\"expected integer, got string\"}]" },
	{ "{\"items\":{\"type\":\"integer\"}}", "[1,\"x\"]", "",
	  "[{\"field\":\"[1]\",\"message\":\"expected integer, got string\"}]" },
	{ "{\"type\":\"integer\"}", "\"x\"", "",
	  "[{\"field\":\"\",\"message\":\"expected integer, got string\"}]" },
	/* annotations do not validate */
	{ "{\"description\":\"the role\",\"default\":\"user\"}", "42", "config", "[]" },
	{ "{}", "[1,{\"a\":null}]", "config", "[]" },
	/* the pipeline example from DESIGN.md */
	{ "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"role\"],"
	  "\"properties\":{\"role\":{\"type\":\"string\",\"enum\":[\"admin\",\"user\"]},"
	  "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":255}}}}",
	  "{\"rolle\":\"admin\",\"tags\":[\"ok\",7]}", "pipeline[2].config",
	  "[{\"field\":\"pipeline[2].config.rolle\",\"message\":\"unknown field (did you "
	  "mean \\\"role\\\"?)\"},"
	  "{\"field\":\"pipeline[2].config.tags[1]\",\"message\":\"expected string, got "
	  "integer\"},"
	  "{\"field\":\"pipeline[2].config.role\",\"message\":\"required\"}]" },
	/* noControlCharacters, notBlank: one problem per string, the first found */
	{ "{\"noControlCharacters\":true}", "\"a\\tb\"", "s",
	  "[{\"field\":\"s\",\"message\":\"contains a control character\"}]" },
	{ "{\"type\":\"string\",\"noControlCharacters\":true}", "\"a\\u0000b\"", "s",
	  "[{\"field\":\"s\",\"message\":\"contains a control character\"}]" },
	{ "{\"noControlCharacters\":true}", "\"a\\u007fb\"", "s",
	  "[{\"field\":\"s\",\"message\":\"contains a control character\"}]" },
	{ "{\"noControlCharacters\":false}", "\"a\\tb\"", "s", "[]" },
	{ "{\"noControlCharacters\":true}", "\"caf\\u00e9 \\u2028\"", "s", "[]" },
	{ "{\"notBlank\":true}", "\" \\t \"", "s",
	  "[{\"field\":\"s\",\"message\":\"must not be blank\"}]" },
	{ "{\"notBlank\":true}", "\"\"", "s", "[]" },
	{ "{\"notBlank\":true}", "\" a \"", "s", "[]" },
	{ "{\"minLength\":1,\"notBlank\":true,\"format\":\"email\"}", "\"\"", "s",
	  "[{\"field\":\"s\",\"message\":\"must not be empty\"}]" },
	{ "{\"maxLength\":3,\"notBlank\":true,\"format\":\"country\"}", "\"    \"", "s",
	  "[{\"field\":\"s\",\"message\":\"longer than 3 characters\"}]" },
	{ "{\"notBlank\":true,\"format\":\"country\"}", "\"  \"", "s",
	  "[{\"field\":\"s\",\"message\":\"must not be blank\"}]" },
	/* minProperties, maxProperties */
	{ "{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "o",
	  "[{\"field\":\"o\",\"message\":\"more than 1 key\"}]" },
	{ "{\"maxProperties\":2}", "{\"a\":1,\"b\":2}", "o", "[]" },
	{ "{\"minProperties\":2}", "{\"a\":1}", "o",
	  "[{\"field\":\"o\",\"message\":\"fewer than 2 keys\"}]" },
	{ "{\"minProperties\":1}", "{}", "o",
	  "[{\"field\":\"o\",\"message\":\"must not be empty\"}]" },
	/* propertyNames: the name's problem, then not the value's */
	{ "{\"propertyNames\":{\"minLength\":1,\"maxLength\":3,\"noControlCharacters\":true},"
	  "\"unevaluatedProperties\":{\"type\":\"integer\"}}",
	  "{\"\":\"x\",\"abcd\":\"x\",\"a\\nb\":1,\"ok\":\"x\",\"ok2\":2}", "o",
	  "[{\"field\":\"o[\\\"\\\"]\",\"message\":\"empty key\"},"
	  "{\"field\":\"o.abcd\",\"message\":\"key longer than 3 characters\"},"
	  "{\"field\":\"o[\\\"a\\\\nb\\\"]\",\"message\":\"key contains a control character\"},"
	  "{\"field\":\"o.ok\",\"message\":\"expected integer, got string\"}]" },
	{ "{\"propertyNames\":{\"enum\":[\"a\",\"b\"]}}", "{\"a\":1,\"c\":2}", "o",
	  "[{\"field\":\"o.c\",\"message\":\"key must be one of: a, b\"}]" },
	/* unevaluatedProperties: the members "properties" does not name */
	{ "{\"properties\":{\"a\":{\"type\":\"string\"}},\"unevaluatedProperties\":"
	  "{\"type\":[\"number\",\"boolean\"]}}",
	  "{\"a\":\"x\",\"b\":true,\"c\":\"y\",\"d\":[1]}", "o",
	  "[{\"field\":\"o.c\",\"message\":\"expected number or boolean, got string\"},"
	  "{\"field\":\"o.d\",\"message\":\"expected number or boolean, got array\"}]" },
	{ "{\"properties\":{\"a\":{}},\"additionalProperties\":false,"
	  "\"unevaluatedProperties\":{\"type\":\"string\"}}",
	  "{\"b\":\"x\"}", "o",
	  "[{\"field\":\"o.b\",\"message\":\"unknown field\"}]" },
	{ "{\"unevaluatedProperties\":{}}", "{\"a\":1,\"a\":2}", "o",
	  "[{\"field\":\"o.a\",\"message\":\"duplicate field\"}]" },
};
/* clang-format on */

START_TEST(test_validate_table)
{
	const struct vcase *c = &vcases[_i];
	struct json *schema = parse(c->schema), *value = parse(c->value);
	struct json *problems = json_new_array();
	char *got, *want = canon(c->want);
	size_t n;

	n = schema_validate(schema, value, c->path, problems);
	got = json_to_string(problems);
	ck_assert_msg(strcmp(got, want) == 0, "schema %s, value %s:\n got  %s\n want %s", c->schema,
		      c->value, got, want);
	ck_assert_uint_eq(n, json_len(problems));
	free(got);
	free(want);
	json_free(problems);
	json_free(value);
	json_free(schema);
}
END_TEST

START_TEST(test_validate_null_schema)
{
	struct json *value = parse("{\"x\":[1,2,{\"y\":null}]}");
	struct json *problems = json_new_array();

	ck_assert_uint_eq(schema_validate(NULL, value, "config", problems), 0);
	ck_assert_uint_eq(json_len(problems), 0);
	ck_assert_int_eq(schema_check(NULL, NULL), 0);
	json_free(problems);
	json_free(value);
}
END_TEST

START_TEST(test_validate_appends_and_counts)
{
	struct json *schema = parse("{\"type\":\"object\",\"required\":[\"a\",\"b\"]}");
	struct json *value = parse("{}");
	struct json *problems = parse("[{\"field\":\"earlier\",\"message\":\"x\"}]");

	ck_assert_uint_eq(schema_validate(schema, value, "cfg", problems), 2);
	ck_assert_uint_eq(json_len(problems), 3);
	ck_assert_str_eq(json_get_str(json_at(problems, 0), "field"), "earlier");
	ck_assert_str_eq(json_get_str(json_at(problems, 2), "field"), "cfg.b");
	/* problems may be NULL: only count */
	ck_assert_uint_eq(schema_validate(schema, value, "cfg", NULL), 2);
	ck_assert_uint_eq(schema_validate(schema, value, NULL, NULL), 2);
	json_free(problems);
	json_free(value);
	json_free(schema);
}
END_TEST

START_TEST(test_validate_caps_problems)
{
	struct json *schema = parse("{\"items\":{\"type\":\"integer\"}}");
	struct json *value = json_new_array();
	struct json *problems = json_new_array();
	const struct json *last;
	size_t i, n;

	for (i = 0; i < 500; i++)
		json_array_push_take(value, json_new_string("x"));
	n = schema_validate(schema, value, "config", problems);
	ck_assert_uint_eq(n, SCHEMA_MAX_PROBLEMS + 1);
	ck_assert_uint_eq(json_len(problems), SCHEMA_MAX_PROBLEMS + 1);
	ck_assert_str_eq(json_get_str(json_at(problems, 99), "field"), "config[99]");
	last = json_at(problems, SCHEMA_MAX_PROBLEMS);
	ck_assert_str_eq(json_get_str(last, "field"), "config");
	ck_assert_str_eq(json_get_str(last, "message"),
			 "too many problems; only the first 100 are listed");
	json_free(problems);
	json_free(value);
	json_free(schema);
}
END_TEST

START_TEST(test_path_key_and_utf8_len)
{
	struct buf b;

	buf_init(&b);
	schema_path_key(&b, "a", 1);
	schema_path_key(&b, "b_c-1", 5);
	schema_path_key(&b, "x.y", 3);
	schema_path_key(&b, "q\"", 2);
	ck_assert_str_eq(buf_cstr(&b), "a.b_c-1[\"x.y\"][\"q\\\"\"]");
	buf_clear(&b);
	ck_assert_uint_eq(schema_utf8_len("", 0), 0);
	ck_assert_uint_eq(schema_utf8_len("abc", 3), 3);
	ck_assert_uint_eq(schema_utf8_len("h\xc3\xa9", 3), 2);
	ck_assert_uint_eq(schema_utf8_len("\xf0\x9f\x98\x80", 4), 1);
}
END_TEST

START_TEST(test_problem_add)
{
	struct json *problems = json_new_array();
	char *s;

	ck_assert_uint_eq(schema_problem_add(problems, "pipeline[0].step", "unknown step"), 1);
	ck_assert_uint_eq(schema_problem_add(NULL, "x", "y"), 1);
	s = json_to_string(problems);
	ck_assert_str_eq(s, "[{\"field\":\"pipeline[0].step\",\"message\":\"unknown step\"}]");
	free(s);
	json_free(problems);
}
END_TEST

/* ---- schema_check ---------------------------------------------------------- */

struct ccase {
	const char *schema;
	const char *want; /* NULL: accepted; else the start of the error message */
};

/* clang-format off */
static const struct ccase ccases[] = {
	{ "{}", NULL },
	{ "{\"type\":\"string\"}", NULL },
	{ "{\"type\":\"integer\"}", NULL },
	{ "{\"type\":\"number\"}", NULL },
	{ "{\"type\":\"boolean\"}", NULL },
	{ "{\"type\":\"array\"}", NULL },
	{ "{\"type\":\"object\"}", NULL },
	{ "{\"type\":\"null\"}", NULL },
	{ "{\"type\":[\"string\",\"null\"]}", NULL },
	{ "{\"type\":\"string\",\"description\":\"a name\",\"default\":\"ab\",\"minLength\":1,"
	  "\"maxLength\":5,\"enum\":[\"ab\",\"cd\"]}",
	  NULL },
	{ "{\"type\":\"integer\",\"minimum\":-1.5,\"maximum\":10,\"default\":3}", NULL },
	{ "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":0,\"maxItems\":0}",
	  NULL },
	{ "{\"type\":\"object\",\"properties\":{\"role\":{\"type\":\"string\",\"enum\":[\"admin\","
	  "\"user\"],\"default\":\"user\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":"
	  "\"string\",\"minLength\":1,\"maxLength\":100},\"maxItems\":50}},\"required\":[\"role\"],"
	  "\"additionalProperties\":false,\"default\":{\"role\":\"user\"}}",
	  NULL },
	{ "{\"required\":[\"a\"]}", NULL },
	{ "{\"properties\":{\"a\":{}},\"required\":[\"a\"],\"additionalProperties\":false}", NULL },
	{ "{\"enum\":[1,\"a\",null,{\"b\":[]}]}", NULL },
	{ "{\"minLength\":2,\"maxLength\":2}", NULL },

	{ "[]", "#: a schema must be a JSON object, got array" },
	{ "true", "#: a schema must be a JSON object, got boolean" },
	{ "{\"pattern\":\"^a\"}", "#: \"pattern\" is not supported (regular expressions" },
	{ "{\"properties\":{\"code\":{\"type\":\"string\",\"pattern\":\"[0-9]+\"}}}",
	  "#/properties/code: \"pattern\" is not supported" },
	{ "{\"patternProperties\":{}}", "#: \"patternProperties\" is not supported" },
	{ "{\"format\":\"email\"}", NULL },
	{ "{\"format\":\"ipv4\"}", "#: \"format\" must be one of: email, e164, country, timezone, url, uuid" },
	{ "{\"format\":3}", "#: \"format\" must be one of" },
	{ "{\"pattrn\":\"x\"}", "#: unknown keyword \"pattrn\"\nsupported: type, properties" },
	{ "{\"$schema\":\"x\"}", "#: unknown keyword \"$schema\"" },
	{ "{\"exclusiveMinimum\":1}", "#: unknown keyword \"exclusiveMinimum\"" },
	{ "{\"items\":{\"foo\":1}}", "#/items: unknown keyword \"foo\"" },
	{ "{\"properties\":{\"a/b~c\":{\"x\":1}}}", "#/properties/a~1b~0c: unknown keyword \"x\"" },
	{ "{\"properties\":{\"a\":{\"items\":{\"properties\":{\"b\":{\"oneOf\":[]}}}}}}",
	  "#/properties/a/items/properties/b: unknown keyword \"oneOf\"" },
	{ "{\"type\":\"string\",\"type\":\"integer\"}", "#: keyword \"type\" appears twice" },
	{ "{\"type\":\"int\"}", "#: unknown type \"int\"\nknown types: string, integer" },
	{ "{\"type\":[\"string\",\"float\"]}", "#: unknown type \"float\"" },
	{ "{\"type\":[]}", "#: \"type\" must be a type name or a non-empty array of them" },
	{ "{\"type\":5}", "#: \"type\" must be a type name or a non-empty array of them" },
	{ "{\"type\":[\"string\",1]}", "#: \"type\" must be a type name or an array of them" },
	{ "{\"type\":[\"string\",\"string\"]}", "#: type \"string\" is listed twice" },
	{ "{\"properties\":[]}", "#: \"properties\" must be an object, got array" },
	{ "{\"properties\":{\"a\":{},\"a\":{}}}", "#: property \"a\" is defined twice" },
	{ "{\"properties\":{\"a\":5}}", "#/properties/a: a schema must be a JSON object, got number" },
	{ "{\"required\":\"a\"}", "#: \"required\" must be an array of property names" },
	{ "{\"required\":[1]}", "#: \"required\" must be an array of property names" },
	{ "{\"required\":[\"a\",\"a\"]}", "#: \"a\" is required twice" },
	{ "{\"properties\":{\"a\":{}},\"required\":[\"b\"],\"additionalProperties\":false}",
	  "#: required property \"b\" is not in \"properties\" and additionalProperties is false" },
	{ "{\"additionalProperties\":{}}",
	  "#: \"additionalProperties\" must be true or false (schemas are not supported there)" },
	{ "{\"additionalProperties\":\"no\"}", "#: \"additionalProperties\" must be true or false" },
	{ "{\"items\":[{}]}", "#/items: a schema must be a JSON object, got array" },
	{ "{\"enum\":[]}", "#: \"enum\" must be a non-empty array" },
	{ "{\"enum\":\"a\"}", "#: \"enum\" must be a non-empty array" },
	{ "{\"minimum\":\"1\"}", "#: \"minimum\" must be a number" },
	{ "{\"maximum\":null}", "#: \"maximum\" must be a number" },
	{ "{\"minimum\":5,\"maximum\":1}", "#: \"minimum\" is greater than \"maximum\"" },
	{ "{\"minLength\":-1}", "#: \"minLength\" must be a non-negative integer" },
	{ "{\"maxLength\":\"3\"}", "#: \"maxLength\" must be a non-negative integer" },
	{ "{\"minItems\":1.5}", "#: \"minItems\" must be a non-negative integer" },
	{ "{\"maxItems\":true}", "#: \"maxItems\" must be a non-negative integer" },
	{ "{\"minLength\":3,\"maxLength\":2}", "#: \"minLength\" (3) is greater than \"maxLength\" (2)" },
	{ "{\"minItems\":3,\"maxItems\":2}", "#: \"minItems\" (3) is greater than \"maxItems\" (2)" },
	{ "{\"description\":1}", "#: \"description\" must be a string" },
	{ "{\"type\":\"integer\",\"default\":\"x\"}",
	  "#: \"default\" does not match the schema: expected integer, got string" },
	{ "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"default\":"
	  "{\"a\":\"x\"}}",
	  "#: \"default\" does not match the schema: a: expected integer, got string" },
	{ "{\"properties\":{\"role\":{\"enum\":[\"a\"],\"default\":\"b\"}}}",
	  "#/properties/role: \"default\" does not match the schema: must be one of: a" },
	{ "{\"items\":{\"maxLength\":2,\"default\":\"abc\"}}",
	  "#/items: \"default\" does not match the schema: longer than 2 characters" },
	{ "{\"type\":\"object\",\"minProperties\":0,\"maxProperties\":100,\"propertyNames\":"
	  "{\"minLength\":1,\"noControlCharacters\":true},\"unevaluatedProperties\":"
	  "{\"type\":\"string\",\"notBlank\":true}}",
	  NULL },
	{ "{\"noControlCharacters\":\"yes\"}", "#: \"noControlCharacters\" must be true or false" },
	{ "{\"notBlank\":1}", "#: \"notBlank\" must be true or false" },
	{ "{\"minProperties\":3,\"maxProperties\":2}",
	  "#: \"minProperties\" (3) is greater than \"maxProperties\" (2)" },
	{ "{\"maxProperties\":-1}", "#: \"maxProperties\" must be a non-negative integer" },
	{ "{\"propertyNames\":true}", "#/propertyNames: a schema must be a JSON object, got boolean" },
	{ "{\"propertyNames\":{\"maxLen\":3}}", "#/propertyNames: unknown keyword \"maxLen\"" },
	{ "{\"unevaluatedProperties\":{\"type\":\"text\"}}",
	  "#/unevaluatedProperties: unknown type \"text\"" },
	{ "{\"additionalProperties\":{\"type\":\"string\"}}",
	  "#: \"additionalProperties\" must be true or false (schemas are not supported there)\n"
	  "use \"unevaluatedProperties\"" },
};
/* clang-format on */

START_TEST(test_check_table)
{
	const struct ccase *c = &ccases[_i];
	struct json *schema = parse(c->schema);
	struct err e = {0};
	int rc = schema_check(schema, &e);

	if (!c->want) {
		ck_assert_msg(rc == 0, "schema %s refused: %s", c->schema, e.msg);
	} else {
		ck_assert_msg(rc < 0, "schema %s accepted, want error \"%s\"", c->schema, c->want);
		ck_assert_msg(strncmp(e.msg, c->want, strlen(c->want)) == 0,
			      "schema %s:\n got  \"%s\"\n want \"%s...\"", c->schema, e.msg,
			      c->want);
	}
	json_free(schema);
}
END_TEST

START_TEST(test_check_depth_cap)
{
	struct buf b;
	struct err e = {0};
	struct json *schema;
	int i;

	buf_init(&b);
	for (i = 0; i < 70; i++)
		buf_puts(&b, "{\"items\":");
	buf_puts(&b, "{}");
	for (i = 0; i < 70; i++)
		buf_putc(&b, '}');
	schema = json_parse(b.data, b.len, 200, &e);
	ck_assert_ptr_nonnull(schema);
	ck_assert_int_lt(schema_check(schema, &e), 0);
	ck_assert_msg(strstr(e.msg, "schema nested deeper than 32 levels") != NULL, "%s", e.msg);
	json_free(schema);
	buf_clear(&b);
}
END_TEST

START_TEST(test_check_without_err)
{
	struct json *schema = parse("{\"pattern\":\"x\"}");

	ck_assert_int_lt(schema_check(schema, NULL), 0);
	json_free(schema);
}
END_TEST

/* Validation tolerates schemas that schema_check would refuse. */
START_TEST(test_validate_malformed_schema)
{
	/* clang-format off */
	static const char *const schemas[] = {
		"{\"type\":5}",
		"{\"type\":[]}",
		"{\"type\":[\"string\",5]}",
		"{\"enum\":7}",
		"{\"items\":3}",
		"{\"properties\":[1]}",
		"{\"required\":[1,\"x\"]}",
		"{\"minLength\":-1}",
		"{\"maximum\":\"2\"}",
		"{\"additionalProperties\":{}}",
	};
	struct json *value = parse("{\"x\":[\"a\",1]}");
	size_t i;

	for (i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
		struct json *schema = parse(schemas[i]);
		struct json *problems = json_new_array();
		size_t n = schema_validate(schema, value, "v", problems);

		ck_assert_uint_eq(n, json_len(problems));
		json_free(problems);
		json_free(schema);
	}
	json_free(value);
}
END_TEST

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_validate_table, 0, (int)(sizeof(vcases) / sizeof(vcases[0])));
	tcase_add_test(tc, test_validate_null_schema);
	tcase_add_test(tc, test_validate_appends_and_counts);
	tcase_add_test(tc, test_validate_caps_problems);
	tcase_add_test(tc, test_path_key_and_utf8_len);
	tcase_add_test(tc, test_problem_add);
	tcase_add_loop_test(tc, test_check_table, 0, (int)(sizeof(ccases) / sizeof(ccases[0])));
	tcase_add_test(tc, test_check_depth_cap);
	tcase_add_test(tc, test_check_without_err);
	tcase_add_test(tc, test_validate_malformed_schema);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(schema_suite());
}

/* clang-format on */