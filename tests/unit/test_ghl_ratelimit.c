/* test_ghl_ratelimit.c — the per-resource budget of the GHL client, driven by
 * a fake clock and a fake GHL gateway (fixed or sliding window). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ghl_ratelimit.h"
#include "testlib.h"

static void feed(struct ghl_rl_headers *h, const char *line)
{
	ghl_rl_headers_feed(h, line, strlen(line));
}

static struct ghl_rl_headers hdrs(long long max, long long remaining, long long interval,
				  long long daily_remaining, long long retry_after_ms)
{
	struct ghl_rl_headers h;
	ghl_rl_headers_init(&h);
	h.max = max;
	h.remaining = remaining;
	h.interval_ms = interval;
	h.daily_max = daily_remaining >= 0 ? 200000 : -1;
	h.daily_remaining = daily_remaining;
	h.retry_after_ms = retry_after_ms;
	return h;
}

START_TEST(test_headers_parse)
{
	struct ghl_rl_headers h;
	ghl_rl_headers_init(&h);
	ck_assert_int_eq(h.max, -1);
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "X-RateLimit-Max: 100\r\n", 22), 1);
	feed(&h, "x-ratelimit-remaining:  7 \r\n");
	feed(&h, "X-RateLimit-Interval-Milliseconds: 10000\r\n");
	feed(&h, "X-RateLimit-Limit-Daily: 200000\r\n");
	feed(&h, "X-RateLimit-Daily-Remaining: 199990\r\n");
	feed(&h, "Retry-After: 3\r\n");
	ck_assert_int_eq(h.max, 100);
	ck_assert_int_eq(h.remaining, 7);
	ck_assert_int_eq(h.interval_ms, 10000);
	ck_assert_int_eq(h.daily_max, 200000);
	ck_assert_int_eq(h.daily_remaining, 199990);
	ck_assert_int_eq(h.retry_after_ms, 3000);

	/* junk is ignored and leaves the previous values alone */
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "X-RateLimit-Max: -5\r\n", 21), 0);
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "X-RateLimit-Max: 12abc\r\n", 24), 0);
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "X-RateLimit-Max:\r\n", 18), 0);
	feed(&h, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
	ck_assert_int_eq(h.max, 100);
	ck_assert_int_eq(h.retry_after_ms, 3000);
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "Content-Type: application/json\r\n", 32), 0);
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "no colon here", 13), 0);
	/* a name that only starts like one of ours */
	ck_assert_int_eq(ghl_rl_headers_feed(&h, "X-RateLimit-Maxed: 1\r\n", 22), 0);
	ck_assert_int_eq(h.max, 100);
}
END_TEST

START_TEST(test_initial_burst_then_remaining)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 3);
	int64_t t = 1000;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(ghl_rl_poll(&b, t), 0);
		ghl_rl_on_send(&b, t);
	}
	/* nothing known: no more than the initial burst in flight */
	ck_assert_int_eq(ghl_rl_poll(&b, t), GHL_RL_WAIT);
	struct ghl_rl_headers h = hdrs(100, 2, 10000, -1, -1);
	ghl_rl_on_reply(&b, t + 5, 200, &h);
	ck_assert_int_eq(b.known, 1);
	ck_assert_int_eq(b.max, 100);
	/* 2 in flight, Remaining 2: nothing more may go */
	ck_assert_int_eq(b.inflight, 2);
	ck_assert_int_eq(ghl_rl_poll(&b, t + 5), GHL_RL_WAIT);
	h = hdrs(100, 1, 10000, -1, -1);
	ghl_rl_on_reply(&b, t + 6, 200, &h);
	ck_assert_int_eq(ghl_rl_poll(&b, t + 6), GHL_RL_WAIT); /* 1 in flight, 1 left */
	/* an older, higher Remaining arriving late does not raise the budget */
	h = hdrs(100, 50, 10000, -1, -1);
	ghl_rl_on_reply(&b, t + 7, 200, &h);
	ck_assert_int_eq(b.remaining, 1);
	ck_assert_int_eq(ghl_rl_poll(&b, t + 7), 0);
	ghl_rl_bucket_clear(&b);
}
END_TEST

START_TEST(test_remaining_zero_blocks_a_full_interval)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	ghl_rl_on_send(&b, 0);
	/* someone else (another process) used the bucket up */
	struct ghl_rl_headers h = hdrs(100, 0, 10000, -1, -1);
	ghl_rl_on_reply(&b, 40, 200, &h);
	ck_assert_int_eq(ghl_rl_poll(&b, 40), 10000);
	ck_assert_int_eq(ghl_rl_poll(&b, 5040), 5000);
	/* after the interval the window is over: the full budget is back */
	ck_assert_int_eq(ghl_rl_poll(&b, 10040), 0);
	ck_assert_int_eq(b.remaining, 100);
	ghl_rl_bucket_clear(&b);
}
END_TEST

START_TEST(test_429_honours_retry_after_or_window)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	ghl_rl_on_send(&b, 0);
	struct ghl_rl_headers h = hdrs(100, 0, 10000, 150000, 3000);
	ghl_rl_on_reply(&b, 10, 429, &h);
	ck_assert_int_eq(ghl_rl_poll(&b, 10), 3000);
	ck_assert_int_eq(ghl_rl_retry_after_ms(&b, 10), 3000);
	ck_assert_int_eq(ghl_rl_poll(&b, 3010), 0);

	/* without Retry-After: the window */
	ghl_rl_on_send(&b, 3010);
	h = hdrs(100, 0, 10000, 150000, -1);
	ghl_rl_on_reply(&b, 3020, 429, &h);
	ck_assert_int_eq(ghl_rl_poll(&b, 3020), 10000);

	/* a 429 before anything was known: the default window */
	struct ghl_rl_bucket b2;
	ghl_rl_bucket_init(&b2, 0);
	ghl_rl_on_send(&b2, 0);
	ghl_rl_headers_init(&h);
	ghl_rl_on_reply(&b2, 0, 429, &h);
	ck_assert_int_eq(ghl_rl_poll(&b2, 0), GHL_RL_DEFAULT_INTERVAL_MS);
	ghl_rl_bucket_clear(&b);
	ghl_rl_bucket_clear(&b2);
}
END_TEST

START_TEST(test_daily_quota)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	ghl_rl_on_send(&b, 0);
	struct ghl_rl_headers h = hdrs(100, 50, 10000, 0, -1);
	ghl_rl_on_reply(&b, 10, 200, &h);
	ck_assert_int_eq(ghl_rl_poll(&b, 10), GHL_RL_DAILY);
	ck_assert_int_eq(ghl_rl_retry_after_ms(&b, 10), GHL_RL_DAILY_BLOCK_MS);
	ck_assert_int_eq(ghl_rl_poll(&b, 10 + GHL_RL_DAILY_BLOCK_MS - 1), GHL_RL_DAILY);
	ck_assert_int_eq(ghl_rl_poll(&b, 10 + GHL_RL_DAILY_BLOCK_MS), 0);

	/* a daily 429 with Retry-After (time to the day's end) uses it */
	struct ghl_rl_bucket b2;
	ghl_rl_bucket_init(&b2, 0);
	ghl_rl_on_send(&b2, 0);
	h = hdrs(100, 99, 10000, 0, 5LL * 3600 * 1000);
	ghl_rl_on_reply(&b2, 0, 429, &h);
	ck_assert_int_eq(ghl_rl_poll(&b2, 0), GHL_RL_DAILY);
	ck_assert_int_eq(ghl_rl_retry_after_ms(&b2, 0), 5LL * 3600 * 1000);
	ghl_rl_bucket_clear(&b);
	ghl_rl_bucket_clear(&b2);
}
END_TEST

START_TEST(test_401_and_abort_only_free_the_slot)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	ghl_rl_on_send(&b, 0);
	ghl_rl_on_send(&b, 0);
	struct ghl_rl_headers h = hdrs(100, 100, 10000, -1, -1); /* gateway's nominal values */
	ghl_rl_on_reply(&b, 1, 401, &h);
	ck_assert_int_eq(b.known, 0);
	ck_assert_int_eq(b.inflight, 1);
	ghl_rl_on_abort(&b, 2);
	ck_assert_int_eq(b.inflight, 0);
	ghl_rl_on_abort(&b, 2); /* never negative */
	ck_assert_int_eq(b.inflight, 0);
	ghl_rl_bucket_clear(&b);
}
END_TEST

START_TEST(test_idle)
{
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	ck_assert(ghl_rl_idle(&b, 0));
	ghl_rl_on_send(&b, 0);
	ck_assert(!ghl_rl_idle(&b, 1));
	struct ghl_rl_headers h = hdrs(100, 99, 1000, -1, -1);
	ghl_rl_on_reply(&b, 5, 200, &h);
	ck_assert(!ghl_rl_idle(&b, 10));
	ck_assert(ghl_rl_idle(&b, 5 + 1000 + ghl_rl_margin_ms(1000)));
	ghl_rl_bucket_clear(&b);
	ck_assert_int_eq(ghl_rl_margin_ms(10000), 250);
	ck_assert_int_eq(ghl_rl_margin_ms(2000), 200);
	ck_assert_int_eq(ghl_rl_margin_ms(1000), 100);
	ck_assert_int_eq(ghl_rl_margin_ms(100), 50);
	ck_assert_int_eq(ghl_rl_margin_ms(60000), 250);
}
END_TEST

/* ---- a fake gateway and a burst driven through the bucket ---- */

struct gateway {
	int sliding;
	long long max, interval;
	int64_t wstart;
	long long count;
	int64_t *accepted; /* sliding: times of accepted requests */
	size_t naccepted;
};

/* Counts a request arriving at t like GHL / ghl-sim: fixed window starting
 * with the first request after the previous one ended, or sliding. */
static int gateway_handle(struct gateway *g, int64_t t, struct ghl_rl_headers *h)
{
	long long used;
	int limited;
	ghl_rl_headers_init(h);
	if (g->sliding) {
		used = 0;
		for (size_t i = 0; i < g->naccepted; i++)
			used += g->accepted[i] > t - g->interval;
		limited = used >= g->max;
		if (!limited) {
			g->accepted[g->naccepted++] = t;
			used++;
		}
	} else {
		if (g->count == 0 || t - g->wstart >= g->interval) {
			g->wstart = t;
			g->count = 0;
		}
		limited = g->count >= g->max;
		if (!limited)
			g->count++;
		used = g->count;
	}
	h->max = g->max;
	h->remaining = used >= g->max ? 0 : g->max - used;
	h->interval_ms = g->interval;
	h->daily_max = 200000;
	h->daily_remaining = 100000;
	if (limited)
		h->retry_after_ms = 1000;
	return limited ? 429 : 200;
}

struct flight {
	int64_t arrive, reply;
	int status;
	struct ghl_rl_headers h;
	int arrived, replied;
};

static uint64_t rng_state = 42;
static int rnd(int n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int)((rng_state >> 33) % (uint64_t)n);
}

/* Sends n requests as fast as the bucket allows; returns the number of 429s
 * and the time the last reply came in. */
static int run_burst(int sliding, long long max, long long interval, int n, int jitter,
		     int64_t *finished)
{
	struct gateway g = {.sliding = sliding, .max = max, .interval = interval};
	g.accepted = calloc((size_t)n, sizeof *g.accepted);
	struct flight *f = calloc((size_t)n, sizeof *f);
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	int sent = 0, replied = 0, n429 = 0;
	int64_t now = 0;
	int max_inflight = 0;
	for (; replied < n && now < 600000; now++) {
		for (int i = 0; i < sent; i++) {
			if (!f[i].arrived && f[i].arrive <= now) {
				f[i].arrived = 1;
				f[i].status = gateway_handle(&g, now, &f[i].h);
				n429 += f[i].status == 429;
			}
		}
		for (int i = 0; i < sent; i++) {
			if (f[i].arrived && !f[i].replied && f[i].reply <= now) {
				f[i].replied = 1;
				replied++;
				ghl_rl_on_reply(&b, now, f[i].status, &f[i].h);
				if (f[i].status == 429) { /* the client re-queues it */
					replied--;
					f[i].replied = 2;
				}
			}
		}
		/* re-send 429'd requests first, then new ones */
		for (int i = 0; i < n; i++) {
			int fresh = i == sent;
			if (!fresh && f[i].replied != 2)
				continue;
			if (ghl_rl_poll(&b, now) != 0)
				break;
			ghl_rl_on_send(&b, now);
			if (b.inflight > max_inflight)
				max_inflight = b.inflight;
			f[i] = (struct flight){0};
			f[i].arrive = now + 1 + (jitter ? rnd(jitter) : 0);
			f[i].reply = f[i].arrive + 1 + (jitter ? rnd(jitter) : 0);
			if (fresh)
				sent++;
		}
	}
	if (max >= GHL_RL_DEFAULT_INITIAL_BURST)
		ck_assert_int_le(max_inflight, max);
	*finished = now;
	ghl_rl_bucket_clear(&b);
	free(f);
	free(g.accepted);
	return n429;
}

START_TEST(test_burst_ghl_default_no_429)
{
	int64_t t;
	/* GHL's default: 100 per 10 s; 300 calls = three windows */
	int n = run_burst(0, 100, 10000, 300, 30, &t);
	ck_assert_msg(n == 0, "fixed window: %d 429s", n);
	ck_assert_msg(t < 3 * (10000 + 250) + 500, "fixed window: took %lld ms", (long long)t);
	ck_assert_msg(t > 2 * 10000, "fixed window: too fast (%lld ms)", (long long)t);
	n = run_burst(1, 100, 10000, 300, 30, &t);
	ck_assert_msg(n == 0, "sliding window: %d 429s", n);
	ck_assert_msg(t < 3 * (10000 + 250) + 500, "sliding window: took %lld ms", (long long)t);
}
END_TEST

START_TEST(test_burst_jitter_within_margin_no_429)
{
	/* One-way latency varying by up to 200 ms (below the 250 ms margin of a
	 * 10 s window): the gateway, counting arrivals, sees no 429-worthy
	 * burst in either window model, and 300 calls still take about three
	 * windows of 10 s + margin. */
	int64_t t;
	for (int sliding = 0; sliding <= 1; sliding++) {
		int n = run_burst(sliding, 100, 10000, 300, 200, &t);
		ck_assert_msg(n == 0, "sliding %d, jitter 200: %d 429s", sliding, n);
		ck_assert_msg(t < 3 * (10000 + 250) + 1000, "sliding %d: took %lld ms", sliding,
			      (long long)t);
	}
}
END_TEST

START_TEST(test_burst_small_window_no_429)
{
	int64_t t;
	for (int jitter = 0; jitter <= 40; jitter += 20) {
		int n = run_burst(0, 20, 1000, 60, jitter, &t);
		ck_assert_msg(n == 0, "jitter %d: %d 429s", jitter, n);
		ck_assert_msg(t < 3 * 1100 + 200, "jitter %d: took %lld ms", jitter, (long long)t);
		n = run_burst(1, 20, 1000, 60, jitter, &t);
		ck_assert_msg(n == 0, "sliding, jitter %d: %d 429s", jitter, n);
	}
}
END_TEST

START_TEST(test_send_log_spacing)
{
	/* Our own sends alone (no Remaining yet reported low) never exceed max
	 * per interval + margin. */
	struct ghl_rl_bucket b;
	ghl_rl_bucket_init(&b, 0);
	struct ghl_rl_headers h = hdrs(5, 5, 1000, -1, -1);
	ghl_rl_on_send(&b, 0);
	ghl_rl_on_reply(&b, 0, 200, &h); /* a stale, generous Remaining */
	for (int i = 1; i < 5; i++) {
		ck_assert_int_eq(ghl_rl_poll(&b, i), 0);
		ghl_rl_on_send(&b, i);
		ghl_rl_on_reply(&b, i, 200, &h);
	}
	/* 5 sends within the span: the next waits for the oldest to age out */
	ck_assert_int_eq(ghl_rl_poll(&b, 5), 1000 + 100 - 5);
	ck_assert_int_eq(ghl_rl_poll(&b, 1100), 0);
	ghl_rl_bucket_clear(&b);
}
END_TEST

START_TEST(test_harness_sees_overruns)
{
	/* The fake gateway does catch a client that sends too much: a limit
	 * below the initial burst costs 429s on the first contact (documented). */
	int64_t t;
	int n = run_burst(0, 4, 1000, 20, 0, &t);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, GHL_RL_DEFAULT_INITIAL_BURST - 4);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ghl_ratelimit");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_headers_parse);
	tcase_add_test(tc, test_initial_burst_then_remaining);
	tcase_add_test(tc, test_remaining_zero_blocks_a_full_interval);
	tcase_add_test(tc, test_429_honours_retry_after_or_window);
	tcase_add_test(tc, test_daily_quota);
	tcase_add_test(tc, test_401_and_abort_only_free_the_slot);
	tcase_add_test(tc, test_idle);
	tcase_add_test(tc, test_send_log_spacing);
	tcase_add_test(tc, test_burst_ghl_default_no_429);
	tcase_add_test(tc, test_burst_small_window_no_429);
	tcase_add_test(tc, test_burst_jitter_within_margin_no_429);
	tcase_add_test(tc, test_harness_sees_overruns);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
