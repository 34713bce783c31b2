/* test_shared_reads.c — what step runs share to spend fewer GHL calls:
 * the shared GET cache (one request per key in flight, a 2xx answer served
 * for the caller's TTL, failures not kept) and the location-token cache (one
 * token per location, dropped on a 401, expired and idle ones wiped).
 * The snapshot-push poller needs GHL: test_economy and test_steps run it. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "get_cache.h"
#include "json.h"
#include "loc_tokens.h"
#include "testlib.h"
#include "util.h"

struct got {
	int calls;
	int status;
	enum ghl_outcome outcome;
	char *body; /* the body as JSON text */
};

static void on_got(void *arg, int status, enum ghl_outcome outcome, const struct json *body,
		   const char *message, const char *trace_id, long long retry_after_ms)
{
	(void)message;
	(void)trace_id;
	(void)retry_after_ms;
	struct got *g = arg;
	g->calls++;
	g->status = status;
	g->outcome = outcome;
	free(g->body);
	g->body = body ? json_to_string(body) : NULL;
}

static struct ghl_response reply(int status, struct json *body)
{
	struct ghl_response r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.outcome = status >= 200 && status <= 299 ? GHL_OK : GHL_RETRYABLE;
	r.json = body;
	r.body = "";
	return r;
}

START_TEST(test_one_request_in_flight_then_served_for_the_ttl)
{
	struct get_cache *c = get_cache_new();
	struct got a = {0}, b = {0}, hit = {0};
	struct get_wait *w = NULL;
	const char *key = "0\x1f"
			  "co\x1f/snapshots/?companyId=co";
	ck_assert_int_eq(get_cache_enter(c, key, 1000, 0, on_got, &a, &w), GET_CACHE_LEAD);
	ck_assert_int_eq(get_cache_enter(c, key, 1000, 5, on_got, &b, &w), GET_CACHE_JOINED);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(b.calls, 0);
	struct json *body = json_parse("{\"snapshots\":[{\"id\":\"s1\"}]}", 27,
				       JSON_DEFAULT_MAX_DEPTH, NULL);
	struct ghl_response r = reply(200, body);
	get_cache_finish(c, key, &r, NULL, 10);
	json_free(body);
	/* the joined caller got the leader's reply; the leader is not called */
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(b.status, 200);
	ck_assert_str_eq(b.body, "{\"snapshots\":[{\"id\":\"s1\"}]}");
	/* within the TTL: served at once, from memory */
	ck_assert_int_eq(get_cache_enter(c, key, 1000, 1010, on_got, &hit, &w), GET_CACHE_HIT);
	ck_assert_int_eq(hit.calls, 1);
	ck_assert_str_eq(hit.body, b.body);
	/* another key (another agency) is not served */
	ck_assert_int_eq(get_cache_enter(c, "0\x1fother\x1f/snapshots/?companyId=other", 1000, 1010,
					 on_got, &hit, &w),
			 GET_CACHE_LEAD);
	/* past the TTL: asked again */
	ck_assert_int_eq(get_cache_enter(c, key, 1000, 1011, on_got, &hit, &w), GET_CACHE_LEAD);
	free(b.body);
	free(hit.body);
	get_cache_free(c);
}
END_TEST

START_TEST(test_failures_are_shared_not_kept_and_leave_works)
{
	struct get_cache *c = get_cache_new();
	struct got a = {0}, b = {0}, gone = {0};
	struct get_wait *wb = NULL, *wg = NULL;
	const char *key = "k";
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 0, on_got, &a, &wb), GET_CACHE_LEAD);
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 0, on_got, &b, &wb), GET_CACHE_JOINED);
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 0, on_got, &gone, &wg), GET_CACHE_JOINED);
	get_cache_leave(c, wg); /* its run ended: never called */
	struct ghl_response r = reply(503, NULL);
	get_cache_finish(c, key, &r, NULL, 1);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(b.status, 503);
	ck_assert_int_eq(b.outcome, GHL_RETRYABLE);
	ck_assert_int_eq(gone.calls, 0);
	/* a failure is not served to the next caller */
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 2, on_got, &a, &wb), GET_CACHE_LEAD);
	/* a request that could not be sent: the joined get the reason */
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 2, on_got, &b, &wb), GET_CACHE_JOINED);
	get_cache_finish(c, key, NULL, "no connection", 3);
	ck_assert_int_eq(b.calls, 2);
	ck_assert_int_eq(b.status, 0);
	free(b.body);
	/* freed with a caller still joined: no call, no leak */
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 4, on_got, &a, &wb), GET_CACHE_LEAD);
	ck_assert_int_eq(get_cache_enter(c, key, 60000, 4, on_got, &b, &wb), GET_CACHE_JOINED);
	get_cache_free(c);
	ck_assert_int_eq(b.calls, 2);
}
END_TEST

START_TEST(test_location_tokens_once_per_location)
{
	struct loc_tokens *t = loc_tokens_new();
	int64_t now = 1000000;
	ck_assert_ptr_null(loc_tokens_get(t, "co", "loc1", now));
	loc_tokens_put(t, "co", "loc1", "tok-1", 86399, now);
	ck_assert_str_eq(loc_tokens_get(t, "co", "loc1", now + 1), "tok-1");
	ck_assert_ptr_null(loc_tokens_get(t, "other-co", "loc1", now + 1));
	/* a new token for the location replaces the old one */
	loc_tokens_put(t, "co", "loc1", "tok-2", 86399, now + 2);
	ck_assert_int_eq(loc_tokens_count(t), 1);
	ck_assert_str_eq(loc_tokens_get(t, "co", "loc1", now + 3), "tok-2");
	/* a 401 for an older token leaves the newer one; for this one, drops it */
	loc_tokens_drop(t, "loc1", "tok-1");
	ck_assert_int_eq(loc_tokens_count(t), 1);
	loc_tokens_drop(t, "loc1", "tok-2");
	ck_assert_int_eq(loc_tokens_count(t), 0);
	/* unused for LOC_TOKEN_IDLE_MS: gone */
	loc_tokens_put(t, "co", "loc2", "tok-3", 86399, now);
	ck_assert_ptr_nonnull(loc_tokens_get(t, "co", "loc2", now + LOC_TOKEN_IDLE_MS - 1));
	ck_assert_ptr_null(loc_tokens_get(t, "co", "loc2", now + 2 * LOC_TOKEN_IDLE_MS));
	/* kept until LOC_TOKEN_MARGIN_MS before GHL's expiry, however often used */
	loc_tokens_put(t, "co", "loc3", "tok-4", 600, now);
	int64_t life = 600 * 1000 - LOC_TOKEN_MARGIN_MS;
	ck_assert_ptr_nonnull(loc_tokens_get(t, "co", "loc3", now + life / 2));
	ck_assert_ptr_null(loc_tokens_get(t, "co", "loc3", now + life));
	/* too short-lived to keep */
	loc_tokens_put(t, "co", "loc4", "tok-5", 60, now);
	ck_assert_int_eq(loc_tokens_count(t), 0);
	loc_tokens_put(t, "co", "loc5", "tok-6", -1, now);
	ck_assert_int_eq(loc_tokens_count(t), 1);
	loc_tokens_free(t);
}
END_TEST

/* thousands of locations: each found under its own company, one token per
 * location, and the idle ones wiped by the periodic sweep */
START_TEST(test_location_tokens_many)
{
	struct loc_tokens *t = loc_tokens_new();
	int64_t now = 5000000;
	char loc[32], tok[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(loc, sizeof loc, "loc-%d", i);
		snprintf(tok, sizeof tok, "tok-%d", i);
		loc_tokens_put(t, i % 2 ? "co-a" : "co-b", loc, tok, 86399, now);
	}
	ck_assert_int_eq(loc_tokens_count(t), 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(loc, sizeof loc, "loc-%d", i);
		snprintf(tok, sizeof tok, "tok-%d", i);
		const char *got = loc_tokens_get(t, i % 2 ? "co-a" : "co-b", loc, now + 10);
		ck_assert_msg(got && str_eq(got, tok), "%s: %s", loc, got ? got : "(none)");
		ck_assert_ptr_null(loc_tokens_get(t, i % 2 ? "co-b" : "co-a", loc, now + 10));
	}
	/* a new token replaces the location's old one; a drop takes just it */
	loc_tokens_put(t, "co-b", "loc-42", "tok-new", 86399, now + 20);
	ck_assert_int_eq(loc_tokens_count(t), 3000);
	ck_assert_str_eq(loc_tokens_get(t, "co-b", "loc-42", now + 30), "tok-new");
	loc_tokens_drop(t, "loc-7", NULL);
	ck_assert_int_eq(loc_tokens_count(t), 2999);
	ck_assert_ptr_null(loc_tokens_get(t, "co-a", "loc-7", now + 30));
	/* one used late stays; the sweep a lookup of another location starts
	 * wipes the 2,998 idle ones */
	ck_assert_ptr_nonnull(loc_tokens_get(t, "co-a", "loc-1", now + LOC_TOKEN_IDLE_MS - 1));
	ck_assert_ptr_null(loc_tokens_get(t, "co-a", "nowhere", now + LOC_TOKEN_IDLE_MS + 5000));
	ck_assert_int_eq(loc_tokens_count(t), 1);
	loc_tokens_free(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("shared_reads");
	TCase *tc = tcase_create("shared_reads");
	tcase_add_test(tc, test_one_request_in_flight_then_served_for_the_ttl);
	tcase_add_test(tc, test_failures_are_shared_not_kept_and_leave_works);
	tcase_add_test(tc, test_location_tokens_once_per_location);
	tcase_add_test(tc, test_location_tokens_many);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
