/* ghl_bucket.c — the GHL client's per-resource request queues: a call waits
 * in its resource's bucket until the rate budget (ghl_ratelimit.h) lets it
 * out, on the bucket's evtimer; idle buckets are swept.
 */
#include "ghl_client_int.h"

#include <event2/event.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---- buckets ---- */

static void bucket_pump(struct bucket *bk);

static void on_bucket_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bucket *bk = arg;
	struct ghl_client *c = bk->c;
	ghl_client_enter(c);
	bucket_pump(bk);
	ghl_client_leave(c);
}

void ghl_bucket_kick(struct bucket *bk, long long delay_ms)
{
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
	evtimer_add(&bk->timer, &tv);
}

struct bucket *ghl_bucket_get(struct ghl_client *c, const char *key)
{
	uint64_t h = hash_str(key);
	struct bucket **head = &c->heads[h % BUCKET_HEADS];
	for (struct bucket *bk = *head; bk; bk = bk->next)
		if (bk->hash == h && strcmp(bk->key, key) == 0)
			return bk;
	struct bucket *bk = xcalloc(1, sizeof *bk);
	bk->c = c;
	bk->key = xstrdup(key);
	bk->hash = h;
	ghl_rl_bucket_init(&bk->rl, c->initial_burst);
	evtimer_assign(&bk->timer, c->base, on_bucket_timer, bk);
	bk->next = *head;
	*head = bk;
	return bk;
}

struct bucket *ghl_bucket_free(struct bucket *bk)
{
	event_del(&bk->timer);
	ghl_rl_bucket_clear(&bk->rl);
	free(bk->key);
	free(bk);
	return NULL;
}

/* The queue holds the normal calls first (FIFO, the last one qlast_hi), then
 * the low-priority ones (FIFO): a normal call goes in after qlast_hi, ahead
 * of every low one, so reconciliation waits while job requests are queued. */
static void bucket_push(struct bucket *bk, struct ghl_call *call)
{
	call->state = CS_QUEUED;
	call->qnext = NULL;
	if (!call->low) {
		struct ghl_call **at = bk->qlast_hi ? &bk->qlast_hi->qnext : &bk->qhead;
		call->qnext = *at;
		*at = call;
		bk->qlast_hi = call;
		if (!call->qnext)
			bk->qtail = call;
		return;
	}
	if (bk->qtail)
		bk->qtail->qnext = call;
	else
		bk->qhead = call;
	bk->qtail = call;
}

static struct ghl_call *bucket_pop(struct bucket *bk)
{
	struct ghl_call *call = bk->qhead;
	if (call) {
		bk->qhead = call->qnext;
		if (!bk->qhead)
			bk->qtail = NULL;
		if (bk->qlast_hi == call)
			bk->qlast_hi = NULL;
		call->qnext = NULL;
	}
	return call;
}

/* Sends what the bucket's budget allows now; arms its timer for the rest. */
static void bucket_pump(struct bucket *bk)
{
	struct ghl_client *c = bk->c;
	while (bk->qhead && !c->freeing) {
		int64_t now = now_monotonic_ms();
		long long d = ghl_rl_poll(&bk->rl, now);
		if (d == 0) {
			ghl_attempt_start(bucket_pop(bk));
			continue;
		}
		if (d == GHL_RL_DAILY) {
			long long ra = ghl_rl_retry_after_ms(&bk->rl, now);
			ghl_call_deliver(bucket_pop(bk), 0, GHL_RETRYABLE,
					 "GHL daily request quota for this resource is used up",
					 ra);
			continue;
		}
		if (d == GHL_RL_WAIT) {
			if (bk->rl.inflight == 0) /* cannot happen; never stall */
				ghl_bucket_kick(bk, 100);
			break;
		}
		ghl_bucket_kick(bk, d);
		break;
	}
}

void ghl_call_submit(struct ghl_call *call)
{
	if (call->bk) {
		bucket_push(call->bk, call);
		ghl_bucket_kick(call->bk, 0);
	} else {
		ghl_attempt_start(call);
	}
}

void ghl_bucket_sweep(struct ghl_client *c, int64_t now)
{
	for (int i = 0; i < BUCKET_HEADS; i++) {
		struct bucket **pp = &c->heads[i];
		while (*pp) {
			struct bucket *bk = *pp;
			if (!bk->refs && !bk->qhead && !evtimer_pending(&bk->timer, NULL) &&
			    ghl_rl_idle(&bk->rl, now)) {
				*pp = bk->next;
				ghl_bucket_free(bk);
			} else {
				pp = &bk->next;
			}
		}
	}
}

void ghl_client_budgets(struct ghl_client *c, ghl_budget_fn fn, void *arg)
{
	if (!c)
		return;
	int64_t now = now_monotonic_ms();
	for (int i = 0; i < BUCKET_HEADS; i++)
		for (struct bucket *bk = c->heads[i]; bk; bk = bk->next) {
			if (!strncmp(bk->key, "token:", 6))
				continue;
			const struct ghl_rl_bucket *rl = &bk->rl;
			int64_t until = rl->daily_until > rl->blocked_until ? rl->daily_until
									    : rl->blocked_until;
			struct ghl_budget b = {
				.resource = bk->key,
				.max = rl->known ? rl->max : -1,
				.remaining = rl->known ? rl->remaining : -1,
				.interval_ms = rl->interval_ms > 0 ? rl->interval_ms : -1,
				.daily_max = rl->daily_max,
				.daily_remaining = rl->daily_remaining,
				.blocked_ms = until > now ? until - now : 0,
				.in_flight = rl->inflight,
			};
			for (struct ghl_call *q = bk->qhead; q; q = q->qnext)
				b.queued++;
			fn(arg, &b);
		}
}
