/* ghl_ratelimit.c — see ghl_ratelimit.h. */
#include "ghl_ratelimit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

void ghl_rl_headers_init(struct ghl_rl_headers *h)
{
	h->max = h->remaining = h->interval_ms = -1;
	h->daily_max = h->daily_remaining = -1;
	h->retry_after_ms = -1;
}

/* Parses a non-negative decimal integer filling the whole (trimmed) value. */
static int parse_count(const char *s, size_t n, long long *out)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n > 18)
		return -1;
	long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int ghl_rl_headers_feed(struct ghl_rl_headers *h, const char *line, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
		{"X-RateLimit-Max", offsetof(struct ghl_rl_headers, max)},
		{"X-RateLimit-Remaining", offsetof(struct ghl_rl_headers, remaining)},
		{"X-RateLimit-Interval-Milliseconds", offsetof(struct ghl_rl_headers, interval_ms)},
		{"X-RateLimit-Limit-Daily", offsetof(struct ghl_rl_headers, daily_max)},
		{"X-RateLimit-Daily-Remaining", offsetof(struct ghl_rl_headers, daily_remaining)},
	};
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return 0;
	size_t nlen = (size_t)(colon - line);
	const char *val = colon + 1;
	size_t vlen = len - nlen - 1;
	long long v;
	if (nlen == 11 && strncasecmp(line, "Retry-After", 11) == 0) {
		if (parse_count(val, vlen, &v) != 0 || v > 1000LL * 24 * 3600)
			return 0;
		h->retry_after_ms = v * 1000;
		return 1;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strlen(names[i].name) != nlen || strncasecmp(line, names[i].name, nlen) != 0)
			continue;
		if (parse_count(val, vlen, &v) != 0)
			return 0;
		*(long long *)(void *)((char *)h + names[i].off) = v;
		return 1;
	}
	return 0;
}

void ghl_rl_bucket_init(struct ghl_rl_bucket *b, int initial_burst)
{
	memset(b, 0, sizeof *b);
	b->daily_remaining = -1;
	b->daily_max = -1;
	b->initial_burst = initial_burst > 0 ? initial_burst : GHL_RL_DEFAULT_INITIAL_BURST;
}

void ghl_rl_bucket_clear(struct ghl_rl_bucket *b)
{
	free(b->log);
	b->log = NULL;
	b->log_cap = b->log_head = b->log_n = 0;
}

long long ghl_rl_margin_ms(long long interval_ms)
{
	long long m = interval_ms / 10;
	if (m < GHL_RL_MARGIN_MIN_MS)
		m = GHL_RL_MARGIN_MIN_MS;
	if (m > GHL_RL_MARGIN_MAX_MS)
		m = GHL_RL_MARGIN_MAX_MS;
	return m;
}

static long long interval_of(const struct ghl_rl_bucket *b)
{
	return b->known && b->interval_ms > 0 ? b->interval_ms : GHL_RL_DEFAULT_INTERVAL_MS;
}

/* The span over which the send log counts our own sends. */
static long long log_span(const struct ghl_rl_bucket *b)
{
	long long iv = interval_of(b);
	return iv + ghl_rl_margin_ms(iv);
}

static int log_checked(const struct ghl_rl_bucket *b)
{
	return b->known && b->max > 0 && b->max <= GHL_RL_LOG_CAP;
}

static int64_t log_oldest(const struct ghl_rl_bucket *b)
{
	return b->log[b->log_head];
}

static int64_t log_newest(const struct ghl_rl_bucket *b)
{
	return b->log[(b->log_head + b->log_n - 1) % b->log_cap];
}

static void log_prune(struct ghl_rl_bucket *b, int64_t now)
{
	long long span = log_span(b);
	while (b->log_n && log_oldest(b) + span <= now) {
		b->log_head = (b->log_head + 1) % b->log_cap;
		b->log_n--;
	}
}

static void log_push(struct ghl_rl_bucket *b, int64_t now)
{
	if (b->log_n == b->log_cap) {
		if (b->log_cap >= GHL_RL_LOG_CAP) {
			/* full at the cap: forget the oldest (the limit is then
			 * above the cap and the log is not consulted) */
			b->log_head = (b->log_head + 1) % b->log_cap;
			b->log_n--;
		} else {
			size_t ncap = b->log_cap ? b->log_cap * 2 : 16;
			if (ncap > GHL_RL_LOG_CAP)
				ncap = GHL_RL_LOG_CAP;
			int64_t *nl = xmalloc(ncap * sizeof *nl);
			for (size_t i = 0; i < b->log_n; i++)
				nl[i] = b->log[(b->log_head + i) % b->log_cap];
			free(b->log);
			b->log = nl;
			b->log_cap = ncap;
			b->log_head = 0;
		}
	}
	b->log[(b->log_head + b->log_n) % b->log_cap] = now;
	b->log_n++;
}

long long ghl_rl_poll(struct ghl_rl_bucket *b, int64_t now)
{
	if (now < b->daily_until)
		return GHL_RL_DAILY;
	if (now < b->blocked_until)
		return b->blocked_until - now;
	if (b->blocked_until) {
		/* the block outlasted the window that caused it */
		b->blocked_until = 0;
		b->remaining = b->max;
		b->remaining_ms = now;
	}
	if (!b->known)
		return b->inflight < b->initial_burst ? 0 : GHL_RL_WAIT;
	long long iv = interval_of(b);
	if (now - b->remaining_ms >= iv)
		b->remaining = b->max; /* the window we saw has ended */
	if (b->inflight >= b->remaining) {
		if (b->inflight > 0)
			return GHL_RL_WAIT;
		long long d = b->remaining_ms + iv - now;
		return d > 0 ? d : 1;
	}
	log_prune(b, now);
	if (log_checked(b) && (long long)b->log_n >= b->max)
		return log_oldest(b) + log_span(b) - now;
	return 0;
}

void ghl_rl_on_send(struct ghl_rl_bucket *b, int64_t now)
{
	b->inflight++;
	if (b->log_n)
		log_prune(b, now);
	log_push(b, now);
}

static void block_until(int64_t *until, int64_t t)
{
	if (t > *until)
		*until = t;
}

void ghl_rl_on_reply(struct ghl_rl_bucket *b, int64_t now, int status,
		     const struct ghl_rl_headers *h)
{
	if (b->inflight > 0)
		b->inflight--;
	if (status == 401 || !h)
		return;
	if (h->max > 0) {
		if (!b->known) {
			b->remaining = h->max;
			b->remaining_ms = now;
		}
		b->max = h->max;
		b->known = 1;
	}
	if (h->interval_ms > 0)
		b->interval_ms = h->interval_ms;
	long long iv = interval_of(b);
	if (b->known && h->remaining >= 0) {
		if (now - b->remaining_ms >= iv || h->remaining < b->remaining) {
			b->remaining = h->remaining;
			b->remaining_ms = now;
		}
		if (h->remaining == 0 && status != 429)
			block_until(&b->blocked_until, now + iv);
	}
	if (status == 429) {
		long long wait = h->retry_after_ms > 0 ? h->retry_after_ms : iv;
		block_until(&b->blocked_until, now + wait);
		b->remaining = 0;
		b->remaining_ms = now;
	}
	if (h->daily_max >= 0)
		b->daily_max = h->daily_max;
	if (h->daily_remaining >= 0) {
		b->daily_remaining = h->daily_remaining;
		if (h->daily_remaining == 0) {
			long long wait = status == 429 && h->retry_after_ms > 0
						 ? h->retry_after_ms
						 : GHL_RL_DAILY_BLOCK_MS;
			block_until(&b->daily_until, now + wait);
		}
	}
}

void ghl_rl_on_abort(struct ghl_rl_bucket *b, int64_t now)
{
	(void)now;
	if (b->inflight > 0)
		b->inflight--;
}

long long ghl_rl_retry_after_ms(const struct ghl_rl_bucket *b, int64_t now)
{
	int64_t until = b->daily_until > now ? b->daily_until : b->blocked_until;
	long long d = until - now;
	return d > 0 ? d : 1;
}

int ghl_rl_idle(const struct ghl_rl_bucket *b, int64_t now)
{
	if (b->inflight > 0 || now < b->blocked_until || now < b->daily_until)
		return 0;
	long long span = log_span(b);
	if (b->known && now - b->remaining_ms < span)
		return 0;
	return b->log_n == 0 || log_newest(b) + span <= now;
}
