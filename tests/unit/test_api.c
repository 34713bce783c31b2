/* test_api.c — the pure parts of core/api/ (api_validate.c, api_cursor.c,
 * api_params.c, api_roles.c): field validation with paths,
 * cursors, LIKE escaping, UUIDs, roles and scope. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "crypto.h"
#include "json.h"
#include "testlib.h"
#include "util.h"

static const char *const roles[] = {"ADMIN", "AGENCY_ADMIN", "SUPPORT", NULL};
static const struct api_field tag = {
	.name = "tag", .type = API_T_STRING, .min_len = 1, .max_len = 5};
static const struct api_field inner[] = {
	{.name = "n", .type = API_T_INT, .flags = API_F_REQUIRED, .min = 1, .max = 10},
	{.name = "tags", .type = API_T_ARRAY, .max_len = 3, .items = &tag},
	{0},
};
static const struct api_field spec[] = {
	{.name = "email", .type = API_T_EMAIL, .flags = API_F_REQUIRED, .max_len = 255},
	{.name = "role", .type = API_T_STRING, .one_of = roles},
	{.name = "id", .type = API_T_UUID},
	{.name = "ok", .type = API_T_BOOL},
	{.name = "note", .type = API_T_STRING, .flags = API_F_NULLABLE, .max_len = 4},
	{.name = "a", .type = API_T_OBJECT, .fields = inner},
	{.name = "any", .type = API_T_ANY},
	{0},
};

/* Validate text against spec; returns the details JSON (malloc'd) and *n. */
static char *check(const char *text, size_t *n, char **unknown)
{
	struct err e;
	struct json *v = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);
	ck_assert_msg(v, "bad test JSON %s: %s", text, e.msg);
	struct api_problems p;
	api_problems_init(&p);
	*n = api_validate(v, spec, NULL, &p);
	char *d = api_problems_json(&p);
	if (unknown)
		*unknown = xstrdup(buf_cstr(&p.unknown));
	api_problems_clear(&p);
	json_free(v);
	return d;
}

START_TEST(valid_body_has_no_problems)
{
	size_t n;
	char *d = check("{\"email\":\"a@b.co\",\"role\":\"SUPPORT\",\"id\":"
			"\"123e4567-e89b-12d3-a456-426614174000\",\"ok\":true,\"note\":null,"
			"\"a\":{\"n\":3,\"tags\":[\"x\",\"yy\"]},\"any\":[1,{}]}",
			&n, NULL);
	ck_assert_msg(n == 0, "problems: %s", d);
	ck_assert_str_eq(d, "[]");
	free(d);
}
END_TEST

START_TEST(every_problem_listed_with_its_path)
{
	size_t n;
	char *unknown;
	char *d = check("{\"role\":\"ROOT\",\"id\":\"nope\",\"ok\":\"yes\",\"note\":\"toolong\","
			"\"a\":{\"n\":11,\"tags\":[\"x\",\"\",\"abcdef\",\"d\"],\"zz\":1},"
			"\"extra\":1}",
			&n, &unknown);
	const char *want[] = {
		"{\"field\":\"role\",\"message\":\"must be one of: ADMIN, AGENCY_ADMIN, SUPPORT\"}",
		"{\"field\":\"id\",\"message\":\"not a UUID",
		"{\"field\":\"ok\",\"message\":\"expected boolean, got string\"}",
		"{\"field\":\"note\",\"message\":\"longer than 4 characters\"}",
		"{\"field\":\"a.n\",\"message\":\"must be <= 10\"}",
		"{\"field\":\"a.tags\",\"message\":\"more than 3 items\"}",
		"{\"field\":\"a.tags[1]\",\"message\":\"must not be empty\"}",
		"{\"field\":\"a.tags[2]\",\"message\":\"longer than 5 characters\"}",
		"{\"field\":\"a.zz\",\"message\":\"unknown field\"}",
		"{\"field\":\"extra\",\"message\":\"unknown field\"}",
		"{\"field\":\"email\",\"message\":\"required\"}",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(d, want[i]), "missing %s in %s", want[i], d);
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	ck_assert_str_eq(unknown, "a.zz, extra");
	free(unknown);
	free(d);
}
END_TEST

START_TEST(wrong_types_and_nulls)
{
	size_t n;
	char *d = check("{\"email\":5,\"a\":[],\"role\":null}", &n, NULL);
	ck_assert_msg(strstr(d, "\"field\":\"email\",\"message\":\"expected string, got "
				"integer\""),
		      "%s", d);
	ck_assert_msg(strstr(d, "\"field\":\"a\",\"message\":\"expected object, got array\""), "%s",
		      d);
	ck_assert_msg(strstr(d, "\"field\":\"role\",\"message\":\"expected string, got null"), "%s",
		      d);
	ck_assert_uint_eq(n, 3);
	free(d);
	d = check("{\"email\":\"a@b.co\",\"a\":{\"n\":1.5}}", &n, NULL);
	ck_assert_msg(strstr(d, "\"field\":\"a.n\",\"message\":\"expected integer, got "
				"number\""),
		      "%s", d);
	free(d);
	d = check("{\"email\":\"not an email\"}", &n, NULL);
	ck_assert_uint_eq(n, 1);
	free(d);
	d = check("{\"email\":\"a@b.co\",\"email\":\"c@d.co\"}", &n, NULL);
	ck_assert_msg(strstr(d, "duplicate field"), "%s", d);
	free(d);
	d = check("[1]", &n, NULL);
	ck_assert_msg(strstr(d, "\"field\":\"body\",\"message\":\"expected object, got array\""),
		      "%s", d);
	free(d);
}
END_TEST

START_TEST(string_length_counts_characters)
{
	size_t n;
	/* "héllo" is 5 characters, 6 bytes: tags hold at most 5 */
	char *d = check("{\"email\":\"a@b.co\",\"a\":{\"n\":1,\"tags\":[\"h\\u00e9llo\"]}}", &n,
			NULL);
	ck_assert_msg(n == 0, "%s", d);
	free(d);
	d = check("{\"email\":\"a@b.co\",\"note\":\"a\\u0000b\"}", &n, NULL);
	ck_assert_msg(strstr(d, "NUL"), "%s", d);
	free(d);
}
END_TEST

START_TEST(cursor_round_trip_and_rejects)
{
	const char *ts = "2026-11-26T10:00:00.123456";
	const char *id = "123e4567-e89b-12d3-a456-426614174000";
	char *c = api_cursor_encode(ts, id);
	char *ts2 = NULL, *id2 = NULL;
	ck_assert_int_eq(api_cursor_decode(c, &ts2, &id2), 0);
	ck_assert_str_eq(ts2, ts);
	ck_assert_str_eq(id2, id);
	free(ts2);
	free(id2);
	ck_assert_msg(strchr(c, '=') == NULL && strchr(c, '+') == NULL, "not base64url: %s", c);
	free(c);

	const char *bad_raw[] = {
		"2026-11-26T10:00:00.123456|nope",
		"2026-11-26 10:00:00|123e4567-e89b-12d3-a456-426614174000",
		"'; DROP TABLE users;--|123e4567-e89b-12d3-a456-426614174000",
		"2026-11-26T10:00:00.123456|123e4567-e89b-12d3-a456-426614174000|x",
		"",
	};
	for (size_t i = 0; i < sizeof(bad_raw) / sizeof(bad_raw[0]); i++) {
		char *enc = crypto_base64url_encode(bad_raw[i], strlen(bad_raw[i]));
		ck_assert_msg(api_cursor_decode(enc, &ts2, &id2) == -1, "accepted %s", bad_raw[i]);
		free(enc);
	}
	ck_assert_int_eq(api_cursor_decode("!!!", &ts2, &id2), -1);
	ck_assert_int_eq(api_cursor_decode("", &ts2, &id2), -1);
}
END_TEST

START_TEST(like_uuid_roles)
{
	char *l = api_like_contains("50%_off\\");
	ck_assert_str_eq(l, "%50\\%\\_off\\\\%");
	free(l);
	ck_assert(api_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
	ck_assert(!api_is_uuid("123e4567e89b12d3a456426614174000"));
	ck_assert(!api_is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
	ck_assert(!api_is_uuid(NULL));
	ck_assert_int_eq(api_role_parse("SUPPORT"), API_ROLE_SUPPORT);
	ck_assert_int_eq(api_role_parse("support"), API_ROLE_NONE);
	ck_assert_str_eq(api_role_name(API_ROLE_AGENCY_ADMIN), "AGENCY_ADMIN");
}
END_TEST

START_TEST(scope)
{
	char *ids[] = {(char *)"aaaaaaaa-0000-0000-0000-000000000001",
		       (char *)"aaaaaaaa-0000-0000-0000-000000000002"};
	struct principal admin = {.kind = PRINCIPAL_SESSION, .role = API_ROLE_ADMIN};
	struct principal support = {.kind = PRINCIPAL_SESSION, .role = API_ROLE_SUPPORT};
	struct principal aa = {.kind = PRINCIPAL_SESSION,
			       .role = API_ROLE_AGENCY_ADMIN,
			       .agency_ids = ids,
			       .nagencies = 1};
	struct principal key = {.kind = PRINCIPAL_API_KEY, .agency_ids = ids + 1, .nagencies = 1};
	const char *other = "aaaaaaaa-0000-0000-0000-000000000003";
	ck_assert(api_agency_in_scope(&admin, other));
	ck_assert(api_agency_in_scope(&support, other));
	ck_assert(api_agency_in_scope(&aa, ids[0]));
	ck_assert(!api_agency_in_scope(&aa, ids[1]));
	ck_assert(api_agency_in_scope(&key, ids[1]));
	ck_assert(!api_agency_in_scope(&key, ids[0]));
	ck_assert(api_can_manage_agency(&admin, other));
	ck_assert(!api_can_manage_agency(&support, other));
	ck_assert(api_can_manage_agency(&aa, ids[0]));
	ck_assert(!api_can_manage_agency(&aa, ids[1]));
	ck_assert(!api_can_manage_agency(&key, ids[1]));
	ck_assert_ptr_null(api_scope_array(&admin));
	char *s = api_scope_array(&aa);
	ck_assert_str_eq(s, "{aaaaaaaa-0000-0000-0000-000000000001}");
	free(s);
	struct principal none = {.kind = PRINCIPAL_SESSION, .role = API_ROLE_AGENCY_ADMIN};
	s = api_scope_array(&none);
	ck_assert_str_eq(s, "{}");
	free(s);
}
END_TEST

static void assert_diff(const char *before, const char *after, const char *want)
{
	struct json *a = json_parse(before, strlen(before), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *b = json_parse(after, strlen(after), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *d = api_audit_diff(a, b, NULL);
	ck_assert_str_eq(d, want);
	free(d);
	json_free(a);
	json_free(b);
}

/* The audit diff: members and items compared one by one, paths as the API
 * names fields, absent and null alike, nothing for equal documents. */
START_TEST(audit_diff_paths)
{
	assert_diff("{\"a\":1,\"b\":{\"c\":[1,2]}}", "{\"a\":1,\"b\":{\"c\":[1,2]}}", "[]");
	assert_diff("{\"name\":\"x\"}", "{\"name\":\"y\"}",
		    "[{\"path\":\"name\",\"from\":\"x\",\"to\":\"y\"}]");
	assert_diff("{\"p\":[{\"s\":\"A\",\"c\":{\"r\":\"admin\"}}]}",
		    "{\"p\":[{\"s\":\"A\",\"c\":{\"r\":\"user\"}},{\"s\":\"B\"}]}",
		    "[{\"path\":\"p[0].c.r\",\"from\":\"admin\",\"to\":\"user\"},"
		    "{\"path\":\"p[1]\",\"from\":null,\"to\":{\"s\":\"B\"}}]");
	assert_diff("{\"gone\":1,\"n\":null}", "{\"new\":true}",
		    "[{\"path\":\"gone\",\"from\":1,\"to\":null},"
		    "{\"path\":\"new\",\"from\":null,\"to\":true}]");
	assert_diff("[1,2,3]", "[1]",
		    "[{\"path\":\"[1]\",\"from\":2,\"to\":null},"
		    "{\"path\":\"[2]\",\"from\":3,\"to\":null}]");
	assert_diff("{\"a\":{\"b\":1}}", "{\"a\":\"flat\"}",
		    "[{\"path\":\"a\",\"from\":{\"b\":1},\"to\":\"flat\"}]");
	char *d = api_audit_diff(NULL, NULL, "settings");
	ck_assert_str_eq(d, "[]");
	free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("pure");
	tcase_add_test(tc, valid_body_has_no_problems);
	tcase_add_test(tc, every_problem_listed_with_its_path);
	tcase_add_test(tc, wrong_types_and_nulls);
	tcase_add_test(tc, string_length_counts_characters);
	tcase_add_test(tc, cursor_round_trip_and_rejects);
	tcase_add_test(tc, like_uuid_roles);
	tcase_add_test(tc, scope);
	tcase_add_test(tc, audit_diff_paths);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
