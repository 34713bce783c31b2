/* test_request_log.c — the job_requests rows of step runs: secrets masked in
 * bodies (at any depth) and in the query, bodies cut on a UTF-8 boundary,
 * non-JSON request bodies not kept. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "request_log.h"
#include "testlib.h"

static struct json *parse(const char *s)
{
	struct json *j = json_parse(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "not JSON: %s", s);
	return j;
}

START_TEST(secret_names)
{
	const char *yes[] = {"password", "access_token", "refreshToken",  "client_secret",
			     "apiKey",	 "API_KEY",	 "Authorization", "private_key",
			     "key",	 "secretKey",	 "x-api-key",	  NULL};
	const char *no[] = {"name",	 "email",   "keyword", "location_id",
			    "companyId", "monkeys", NULL};
	for (int i = 0; yes[i]; i++)
		ck_assert_msg(request_log_secret_name(yes[i]), "%s is a secret", yes[i]);
	for (int i = 0; no[i]; i++)
		ck_assert_msg(!request_log_secret_name(no[i]), "%s is not a secret", no[i]);
}
END_TEST

START_TEST(record_masks_bodies_and_query)
{
	struct json *resp = parse("{\"user\":{\"id\":\"u1\",\"access_token\":\"tok-SECRET-1\"},"
				  "\"items\":[{\"apiKey\":\"k-SECRET-2\",\"ok\":true}]}");
	struct request_record r = {
		.job_id = "00000000-0000-4000-8000-000000000001",
		.step_index = 3,
		.attempt = 2,
		.method = "POST",
		.path = "/users/",
		.query = "locationId=L1&token=t-SECRET-3&page=2",
		.status = 201,
		.duration_ms = 42,
		.trace_id = "tr-1",
		.request_body =
			"{\"email\":\"a@b.example\",\"password\":\"p-SECRET-4\",\"n\":null}",
		.response_body = resp,
	};
	char *rec = request_log_record_json(&r);
	ck_assert_msg(!strstr(rec, "SECRET"), "a secret is in %s", rec);
	struct json *j = parse(rec);
	ck_assert_str_eq(json_get_str(j, "path"), "/users/?locationId=L1&token=***&page=2");
	ck_assert_str_eq(json_get_str(j, "request_body"),
			 "{\"email\":\"a@b.example\",\"password\":\"***\",\"n\":null}");
	ck_assert_msg(strstr(json_get_str(j, "response_body"), "\"id\":\"u1\""), "%s", rec);
	int64_t v = 0;
	ck_assert_int_eq(json_get_int(j, "step_index", &v), 0);
	ck_assert_int_eq(v, 3);
	ck_assert_ptr_null(json_get_str(j, "error"));
	json_free(j);
	free(rec);
	json_free(resp);
}
END_TEST

START_TEST(record_cuts_and_drops)
{
	/* 5000 × "é" (2 bytes each): cut at the cap, never inside a character */
	struct buf big;
	buf_init(&big);
	buf_puts(&big, "{\"text\":\"");
	for (int i = 0; i < 5000; i++)
		buf_puts(&big, "\xc3\xa9");
	buf_puts(&big, "\"}");
	struct request_record r = {.job_id = "00000000-0000-4000-8000-000000000001",
				   .method = "PUT",
				   .path = "/x",
				   .request_body = buf_cstr(&big)};
	char *rec = request_log_record_json(&r);
	struct json *j = parse(rec);
	const char *body = json_get_str(j, "request_body");
	ck_assert_msg(strstr(body, "(cut: 10011 bytes in all)"), "%.80s", body);
	ck_assert_int_le(strlen(body), REQUEST_LOG_BODY_CAP + 40);
	ck_assert_ptr_null(json_get_str(j, "response_body"));
	json_free(j);
	free(rec);
	buf_clear(&big);
	/* not JSON: only its size */
	r.request_body = "token=abc&x=1";
	rec = request_log_record_json(&r);
	ck_assert_msg(strstr(rec, "(not JSON: 13 bytes)") && !strstr(rec, "abc"), "%s", rec);
	free(rec);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("request_log");
	TCase *tc = tcase_create("request_log");
	tcase_add_test(tc, secret_names);
	tcase_add_test(tc, record_masks_bodies_and_query);
	tcase_add_test(tc, record_cuts_and_drops);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
