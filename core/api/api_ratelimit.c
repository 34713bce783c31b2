/* api_ratelimit.c — fair use: a token bucket per API key and per user
 * (session) for job submissions and for reads, so one integration cannot take
 * the capacity of the others. See api.h (api_rate_take) and the README ("Fair
 * use").
 *
 * A bucket holds at most `burst` tokens and refills `per_minute` tokens a
 * minute; a request takes `cost` tokens (a batch: its rows). When the bucket
 * is short the request is refused with 429 and Retry-After, the seconds until
 * enough tokens are back; a full bucket admits any one request, however
 * large, and goes below zero (so a batch bigger than the burst is possible,
 * and pays for itself by waiting). Buckets live in this process's memory: with
 * several API processes each one counts its own requests. A bucket that has
 * refilled to full is the same as a new one, so those are dropped when the
 * table reaches API_RATE_MAX_BUCKETS. */
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"

#define API_RATE_MAX_BUCKETS 100000
#define API_RATE_SLOTS 4096 /* hash chains */

struct bucket {
	struct bucket *next;
	char id[API_UUID_LEN]; /* the API key's or the user's id */
	char kind;	       /* 'k' API key, 'u' user */
	unsigned char cls;     /* enum api_rate_class */
	double tokens;
	int64_t at_ms; /* tokens as of this time */
};

struct api_rate {
	struct bucket *slot[API_RATE_SLOTS];
	size_t n;
};

struct api_rate *api_rate_new(void)
{
	return xcalloc(1, sizeof(struct api_rate));
}

struct api_rate *api_rate_free(struct api_rate *rt)
{
	if (!rt)
		return NULL;
	for (size_t i = 0; i < API_RATE_SLOTS; i++)
		for (struct bucket *b = rt->slot[i], *next; b; b = next) {
			next = b->next;
			free(b);
		}
	free(rt);
	return NULL;
}

/* FNV-1a over the id, the kind and the class. */
static size_t slot_of(const char *id, char kind, unsigned cls)
{
	uint32_t h = 2166136261u;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ (unsigned char)kind) * 16777619u;
	h = (h ^ cls) * 16777619u;
	return h % API_RATE_SLOTS;
}

static void refill(struct bucket *b, double burst, double per_ms, int64_t now)
{
	if (now > b->at_ms)
		b->tokens += (double)(now - b->at_ms) * per_ms;
	if (b->tokens > burst)
		b->tokens = burst;
	b->at_ms = now;
}

/* Drops the buckets that are full again (no different from new ones). */
static void sweep(struct api_rate *rt, const struct config *cfg, int64_t now)
{
	for (size_t i = 0; i < API_RATE_SLOTS; i++)
		for (struct bucket **pp = &rt->slot[i]; *pp;) {
			struct bucket *b = *pp;
			double burst = (double)(b->cls == API_RATE_SUBMIT
							? cfg->rate_limit_submissions_burst
							: cfg->rate_limit_reads_burst);
			double per_min = (double)(b->cls == API_RATE_SUBMIT
							  ? cfg->rate_limit_submissions_per_minute
							  : cfg->rate_limit_reads_per_minute);
			refill(b, burst, per_min / 60000.0, now);
			if (b->tokens >= burst) {
				*pp = b->next;
				free(b);
				rt->n--;
			} else {
				pp = &b->next;
			}
		}
}

/* The bucket of (id, kind, cls), made full when new; NULL when the table is
 * full of buckets in use (the request then goes unmetered). */
static struct bucket *bucket_get(struct api_rate *rt, const struct config *cfg, const char *id,
				 char kind, unsigned cls, double burst, int64_t now)
{
	size_t s = slot_of(id, kind, cls);
	for (struct bucket *b = rt->slot[s]; b; b = b->next)
		if (b->kind == kind && b->cls == cls && !strcmp(b->id, id))
			return b;
	if (rt->n >= API_RATE_MAX_BUCKETS)
		sweep(rt, cfg, now);
	if (rt->n >= API_RATE_MAX_BUCKETS)
		return NULL;
	struct bucket *b = xcalloc(1, sizeof(*b));
	snprintf(b->id, sizeof(b->id), "%s", id);
	b->kind = kind;
	b->cls = (unsigned char)cls;
	b->tokens = burst;
	b->at_ms = now;
	b->next = rt->slot[s];
	rt->slot[s] = b;
	rt->n++;
	return b;
}

static void add_ll_header(struct api_req *r, const char *name, long long v)
{
	char text[24];
	snprintf(text, sizeof(text), "%lld", v);
	api_add_header(r, name, text);
}

int api_rate_take(struct api_req *r, enum api_rate_class cls, size_t cost)
{
	const struct config *cfg = r->app->cfg;
	struct api_state *st = r->app->api;
	int submit = cls == API_RATE_SUBMIT;
	long long per_min = submit ? cfg->rate_limit_submissions_per_minute
				   : cfg->rate_limit_reads_per_minute;
	long long burst = submit ? cfg->rate_limit_submissions_burst : cfg->rate_limit_reads_burst;
	const char *id = r->who.kind == PRINCIPAL_API_KEY   ? r->who.api_key_id
			 : r->who.kind == PRINCIPAL_SESSION ? r->who.user_id
							    : NULL;
	if (per_min <= 0 || !id || !*id || !st || !st->rate)
		return 0;
	char kind = r->who.kind == PRINCIPAL_API_KEY ? 'k' : 'u';
	int64_t now = now_monotonic_ms();
	double per_ms = (double)per_min / 60000.0;
	struct bucket *b = bucket_get(st->rate, cfg, id, kind, (unsigned)cls, (double)burst, now);
	if (!b)
		return 0;
	refill(b, (double)burst, per_ms, now);
	double want = (double)cost;
	int ok = b->tokens >= want || b->tokens >= (double)burst;
	if (ok)
		b->tokens -= want;
	double left = b->tokens > 0 ? floor(b->tokens) : 0;
	add_ll_header(r, "RateLimit-Limit", burst);
	add_ll_header(r, "RateLimit-Remaining", (long long)left);
	add_ll_header(r, "RateLimit-Reset",
		      (long long)ceil(((double)burst - b->tokens) / per_ms / 1000.0));
	if (ok)
		return 0;
	double need = (want < (double)burst ? want : (double)burst) - b->tokens;
	long long wait_s = (long long)ceil(need / per_ms / 1000.0);
	if (wait_s < 1)
		wait_s = 1;
	add_ll_header(r, "Retry-After", wait_s);
	char *msg = xasprintf(
		"too many %s for this %s: %zu wanted, %lld left (the bucket holds %lld and refills "
		"%lld a minute); retry after %lld s",
		submit ? "job submissions" : "reads", kind == 'k' ? "API key" : "user", cost,
		(long long)left, burst, per_min, wait_s);
	api_reply_error(r, 429, "rate_limited", msg, NULL);
	free(msg);
	return -1;
}
