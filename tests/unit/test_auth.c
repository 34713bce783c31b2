/* test_auth.c — core/api/passwords.c: password policy, bcrypt $2b$ cost 12, secrets,
 * the worker pool answering on the loop, and the sliding-window throttle. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "passwords.h"
#include "testlib.h"
#include "util.h"

START_TEST(password_policy)
{
	struct err e;
	ck_assert_int_eq(auth_password_policy("twelve chars", &e), 0);
	ck_assert_int_eq(auth_password_policy("eleven char", &e), -1);
	ck_assert_msg(strstr(e.msg, "at least 12"), "%s", e.msg);
	/* 12 characters of 2 bytes each: counted as characters */
	ck_assert_int_eq(auth_password_policy("éééééééééééé", &e), 0);
	ck_assert_int_eq(auth_password_policy("ééééééééééé", &e), -1);
	char *big = xcalloc(1, AUTH_PASSWORD_MAX + 2);
	memset(big, 'x', AUTH_PASSWORD_MAX + 1);
	ck_assert_int_eq(auth_password_policy(big, &e), -1);
	free(big);
	ck_assert_int_eq(auth_password_policy(NULL, &e), -1);
}
END_TEST

START_TEST(bcrypt_2b_cost_12)
{
	char *h = NULL;
	struct err e;
	ck_assert_int_eq(auth_password_hash("correct horse battery", 4, &h, &e), 0);
	ck_assert_msg(str_has_prefix(h, "$2b$12$"), "cost clamped to 12: %s", h);
	ck_assert_uint_eq(strlen(h), 60);
	ck_assert_int_eq(auth_password_verify("correct horse battery", h), 1);
	ck_assert_int_eq(auth_password_verify("correct horse batterY", h), 0);
	ck_assert_int_eq(auth_password_verify("x", "not a hash"), 0);
	ck_assert_int_eq(auth_password_verify("x", ""), 0);
	char *h2 = NULL;
	ck_assert_int_eq(auth_password_hash("correct horse battery", 12, &h2, &e), 0);
	ck_assert_str_ne(h, h2); /* salted */
	ck_assert_int_eq(auth_password_verify("anything at all", auth_dummy_hash), 0);
	free(h);
	free(h2);
}
END_TEST

START_TEST(secrets)
{
	char *k = auth_new_api_key();
	ck_assert(auth_is_api_key(k));
	ck_assert_uint_eq(strlen(k), 4 + 43);
	char *t = auth_new_session_token();
	ck_assert(!auth_is_api_key(t));
	ck_assert_uint_eq(strlen(t), 43);
	char h[65];
	auth_secret_hash("abc", h);
	ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	free(k);
	free(t);
}
END_TEST

struct pool_run {
	struct event_base *base;
	char *hash;
	int verified;
	int done;
	const int *ticks;	 /* the 5 ms timer's count */
	int ticks_at_first_done; /* its value when the first answer came */
};

static void on_verify(void *arg, int ok)
{
	struct pool_run *r = arg;
	r->verified = ok;
	if (r->done == 0 && r->ticks)
		r->ticks_at_first_done = *r->ticks;
	if (++r->done == 2)
		event_base_loopbreak(r->base);
}

static void on_hash(void *arg, char *hash)
{
	struct pool_run *r = arg;
	r->hash = hash;
	if (r->done == 0 && r->ticks)
		r->ticks_at_first_done = *r->ticks;
	if (++r->done == 2)
		event_base_loopbreak(r->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	int *ticks = arg;
	(*ticks)++;
}

START_TEST(pool_answers_on_the_loop_without_blocking_it)
{
	struct pool_run r = {0};
	r.base = event_base_new();
	struct err e;
	struct auth_pool *p = auth_pool_new(r.base, 2, &e);
	ck_assert_msg(p, "%s", e.msg);
	auth_pool_hash(p, "correct horse battery", 12, on_hash, &r);
	auth_pool_verify(p, "correct horse battery", auth_dummy_hash, on_verify, &r);
	ck_assert_int_eq(r.done, 0); /* never called from inside the submit */
	ck_assert_int_eq(auth_pool_pending(p), 2);
	/* a 5 ms timer keeps firing while bcrypt runs on the workers */
	int ticks = 0;
	r.ticks = &ticks;
	struct event *tick = event_new(r.base, -1, EV_PERSIST, on_tick, &ticks);
	struct timeval tv = {0, 5000};
	event_add(tick, &tv);
	int64_t t0 = now_monotonic_ms();
	event_base_dispatch(r.base);
	int64_t took = now_monotonic_ms() - t0;
	ck_assert_int_eq(r.done, 2);
	ck_assert_msg(r.hash && str_has_prefix(r.hash, "$2b$12$"), "hash %s", r.hash);
	ck_assert_int_eq(r.verified, 0);
	/* A cost-12 hash takes well over 10 ms anywhere: had it run on the loop
	 * thread, the 5 ms timer could not have fired twice before the first
	 * answer. (An outcome, not a rate: a loaded machine only adds ticks.) */
	ck_assert_msg(r.ticks_at_first_done >= 2,
		      "the loop stalled: %d ticks before the first answer (%d in %lld ms)",
		      r.ticks_at_first_done, ticks, (long long)took);
	ck_assert_int_eq(auth_pool_pending(p), 0);
	ck_assert_int_eq(auth_password_verify("correct horse battery", r.hash), 1);
	free(r.hash);
	event_free(tick);
	/* queued work is dropped on free, without callbacks */
	auth_pool_verify(p, "x", auth_dummy_hash, on_verify, &r);
	auth_pool_free(p);
	event_base_free(r.base);
}
END_TEST

START_TEST(throttle_sliding_window)
{
	struct throttle *t = throttle_new(100);
	const int64_t W = 60000;
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 0), 0);
	throttle_fail(t, "a", 3, W, 1000);
	throttle_fail(t, "a", 3, W, 2000);
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 2500), 0);
	throttle_fail(t, "a", 3, W, 3000);
	/* blocked until the oldest failure (1000) leaves the window: 61000 */
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 3000), 58);
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 60500), 1);
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 61000), 0);
	ck_assert_int_eq(throttle_check(t, "b", 3, W, 3000), 0); /* keys are separate */
	/* more failures than the limit keep only the newest */
	for (int i = 0; i < 10; i++)
		throttle_fail(t, "c", 2, W, 100000 + i);
	ck_assert_int_eq(throttle_check(t, "c", 2, W, 100009), 60);
	ck_assert_int_eq(throttle_check(t, "c", 2, W, 160009), 0);
	/* reset forgets */
	throttle_fail(t, "d", 1, W, 0);
	ck_assert_int_gt(throttle_check(t, "d", 1, W, 1), 0);
	throttle_reset(t, "d");
	ck_assert_int_eq(throttle_check(t, "d", 1, W, 1), 0);
	/* expired entries are dropped */
	ck_assert_int_eq(throttle_check(t, "a", 3, W, 1000000), 0);
	ck_assert_uint_eq(throttle_size(t), 0);
	throttle_free(t);
}
END_TEST

START_TEST(throttle_memory_cap)
{
	struct throttle *t = throttle_new(3);
	throttle_fail(t, "k1", 1, 60000, 0);
	throttle_fail(t, "k2", 1, 60000, 1);
	throttle_fail(t, "k3", 1, 60000, 2);
	throttle_fail(t, "k1", 5, 60000, 3); /* k1 is now the most recent */
	throttle_fail(t, "k4", 1, 60000, 4); /* evicts k2, the least recent */
	ck_assert_uint_eq(throttle_size(t), 3);
	ck_assert_int_eq(throttle_check(t, "k2", 1, 60000, 5), 0);
	ck_assert_int_gt(throttle_check(t, "k3", 1, 60000, 5), 0);
	ck_assert_int_gt(throttle_check(t, "k1", 1, 60000, 5), 0);
	throttle_free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	/* "pure" runs in a moment, also under valgrind; "bcrypt" takes about a
	 * second natively and far too long under valgrind, so it carries the tag
	 * scripts/test excludes there (CK_EXCLUDE_TAGS=no-valgrind). */
	TCase *pure = tcase_create("pure");
	tcase_add_test(pure, password_policy);
	tcase_add_test(pure, secrets);
	tcase_add_test(pure, throttle_sliding_window);
	tcase_add_test(pure, throttle_memory_cap);
	suite_add_tcase(s, pure);
	TCase *bc = tcase_create("bcrypt");
	tcase_set_timeout(bc, 60);
	tcase_set_tags(bc, "no-valgrind");
	tcase_add_test(bc, bcrypt_2b_cost_12);
	tcase_add_test(bc, pool_answers_on_the_loop_without_blocking_it);
	suite_add_tcase(s, bc);
	return tl_run_suite(s);
}
