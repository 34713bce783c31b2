/* sim_ratelimit.c — GHL's burst and daily limits, per app per resource.
 *
 * The app is the token's client id; the resource is the token's location for a
 * location token and its company for an agency token (GHL: "per Marketplace
 * app per resource, i.e. Location or Company"). The burst limit is a FIXED
 * window of --rate-window-ms that starts with the first request of the window;
 * the daily limit resets at 00:00 UTC. Refused (429) requests do not count.
 * With --rate-limit 0 (or --daily-limit 0) the limit is off and the headers
 * report a large constant (1000000 / 1000000000) so clients never back off.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

#define DAY_MS 86400000LL
#define RL_OFF_MAX 1000000
#define RL_OFF_DAILY 1000000000

void sim_rl_nominal(struct sim *s, struct rl_info *o)
{
	o->max = s->cfg.rate_limit > 0 ? s->cfg.rate_limit : RL_OFF_MAX;
	o->remaining = o->max;
	o->interval_ms = s->cfg.rate_window_ms;
	o->daily_max = s->cfg.daily_limit > 0 ? s->cfg.daily_limit : RL_OFF_DAILY;
	o->daily_remaining = o->daily_max;
	o->retry_after_s = 0;
	o->limited = 0;
}

void sim_rl_check(struct sim *s, const struct sim_token *t, int64_t now_ms, struct rl_info *o)
{
	char stack[256];
	const char *res = t->cls == CLASS_LOCATION && t->location_id ? t->location_id
								     : t->company_id;
	char *key = stack;
	int n = snprintf(stack, sizeof stack, "%s\x1f%s", t->client_id, res);
	if (n < 0 || (size_t)n >= sizeof stack)
		key = xasprintf("%s\x1f%s", t->client_id, res);
	struct rl_bucket *b = htab_get(&s->buckets, key);
	if (!b) {
		b = xcalloc(1, sizeof *b);
		b->window_start_ms = now_ms;
		b->day = now_ms / DAY_MS;
		htab_put(&s->buckets, key, b);
	}
	if (key != stack)
		free(key);

	sim_rl_nominal(s, o);
	int64_t window = s->cfg.rate_window_ms > 0 ? s->cfg.rate_window_ms : 1;
	if (now_ms - b->window_start_ms >= window || now_ms < b->window_start_ms) {
		b->window_start_ms = now_ms;
		b->count = 0;
	}
	if (b->day != now_ms / DAY_MS) {
		b->day = now_ms / DAY_MS;
		b->day_count = 0;
	}
	int burst_hit = s->cfg.rate_limit > 0 && b->count >= s->cfg.rate_limit;
	int daily_hit = s->cfg.daily_limit > 0 && b->day_count >= s->cfg.daily_limit;
	if (burst_hit || daily_hit) {
		o->limited = 1;
		int64_t wait_ms = daily_hit ? (b->day + 1) * DAY_MS - now_ms
					    : b->window_start_ms + window - now_ms;
		o->retry_after_s = wait_ms <= 0 ? 1 : (wait_ms + 999) / 1000;
	} else {
		b->count++;
		b->day_count++;
	}
	if (s->cfg.rate_limit > 0)
		o->remaining = b->count >= o->max ? 0 : o->max - b->count;
	if (s->cfg.daily_limit > 0)
		o->daily_remaining = b->day_count >= o->daily_max ? 0 : o->daily_max - b->day_count;
}

void sim_rl_free(struct sim *s)
{
	htab_clear(&s->buckets, free);
}
