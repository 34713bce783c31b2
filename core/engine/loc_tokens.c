/* loc_tokens.c — the process's location-token cache; see loc_tokens.h.
 *
 * A hash by location id (one token per location), grown as it fills: a get
 * or a put touches one chain, not every token. An entry past its expiry or
 * idle too long is wiped when it is looked up, and a sweep over all of them
 * runs at most once per LOC_TOKEN_SWEEP_MS (it used to run on every call,
 * which with thousands of locations in flight was a linear scan per step).
 */
#include "loc_tokens.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "util.h"

#define LOC_TOKEN_SWEEP_MS 1000
#define LOC_TOKENS_MIN_BUCKETS 64

struct loc_token {
	char *company_id, *location_id;
	char *token; /* secret: wiped before it is freed */
	int64_t expires_ms, used_ms;
	struct loc_token *next; /* hash chain */
};

struct loc_tokens {
	struct loc_token **heads;
	size_t nheads; /* a power of two */
	int n;
	int64_t swept_ms;
};

struct loc_tokens *loc_tokens_new(void)
{
	struct loc_tokens *t = xcalloc(1, sizeof(struct loc_tokens));
	t->nheads = LOC_TOKENS_MIN_BUCKETS;
	t->heads = xcalloc(t->nheads, sizeof(*t->heads));
	return t;
}

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static struct loc_token **head_of(struct loc_tokens *t, const char *location_id)
{
	return &t->heads[hash_id(location_id) & (t->nheads - 1)];
}

static void entry_free(struct loc_token *e)
{
	secret_free(e->token);
	free(e->company_id);
	free(e->location_id);
	free(e);
}

static int stale(const struct loc_token *e, int64_t now_ms)
{
	return e->expires_ms <= now_ms || now_ms - e->used_ms >= LOC_TOKEN_IDLE_MS;
}

/* Unlinks *pp (an entry in a chain) and wipes it. */
static void remove_at(struct loc_tokens *t, struct loc_token **pp)
{
	struct loc_token *e = *pp;
	*pp = e->next;
	entry_free(e);
	t->n--;
}

/* Wipe the expired and idle entries, at most once per LOC_TOKEN_SWEEP_MS. */
static void sweep(struct loc_tokens *t, int64_t now_ms)
{
	if (now_ms >= t->swept_ms && now_ms - t->swept_ms < LOC_TOKEN_SWEEP_MS)
		return;
	t->swept_ms = now_ms;
	for (size_t i = 0; i < t->nheads; i++) {
		struct loc_token **pp = &t->heads[i];
		while (*pp) {
			if (stale(*pp, now_ms))
				remove_at(t, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

/* Doubles the buckets once there are more entries than buckets. */
static void grow(struct loc_tokens *t)
{
	if ((size_t)t->n < t->nheads)
		return;
	size_t n = t->nheads * 2;
	struct loc_token **heads = xcalloc(n, sizeof(*heads));
	for (size_t i = 0; i < t->nheads; i++) {
		while (t->heads[i]) {
			struct loc_token *e = t->heads[i];
			t->heads[i] = e->next;
			struct loc_token **h = &heads[hash_id(e->location_id) & (n - 1)];
			e->next = *h;
			*h = e;
		}
	}
	free(t->heads);
	t->heads = heads;
	t->nheads = n;
}

struct loc_tokens *loc_tokens_free(struct loc_tokens *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->nheads; i++)
		while (t->heads[i])
			remove_at(t, &t->heads[i]);
	free(t->heads);
	free(t);
	return NULL;
}

const char *loc_tokens_get(struct loc_tokens *t, const char *company_id, const char *location_id,
			   int64_t now_ms)
{
	sweep(t, now_ms);
	for (struct loc_token **pp = head_of(t, location_id); *pp; pp = &(*pp)->next) {
		struct loc_token *e = *pp;
		if (!str_eq(e->location_id, location_id))
			continue;
		if (stale(e, now_ms)) {
			remove_at(t, pp); /* one token per location: nothing else to find */
			return NULL;
		}
		if (!str_eq(e->company_id, company_id ? company_id : ""))
			return NULL;
		e->used_ms = now_ms;
		return e->token;
	}
	return NULL;
}

void loc_tokens_put(struct loc_tokens *t, const char *company_id, const char *location_id,
		    const char *token, long long expires_in, int64_t now_ms)
{
	if (!location_id || !token || !*token)
		return;
	sweep(t, now_ms);
	/* at most one token per location */
	for (struct loc_token **pp = head_of(t, location_id); *pp; pp = &(*pp)->next) {
		if (str_eq((*pp)->location_id, location_id)) {
			remove_at(t, pp);
			break;
		}
	}
	long long life_ms = expires_in > 0 ? expires_in * 1000 - LOC_TOKEN_MARGIN_MS : 3600000;
	if (life_ms > 3600000 * 24LL)
		life_ms = 3600000 * 24LL;
	if (life_ms <= 0)
		return; /* too short-lived to be worth keeping */
	struct loc_token *e = xcalloc(1, sizeof(*e));
	e->company_id = xstrdup(company_id ? company_id : "");
	e->location_id = xstrdup(location_id);
	e->token = xstrdup(token);
	e->expires_ms = now_ms + life_ms;
	e->used_ms = now_ms;
	grow(t);
	struct loc_token **h = head_of(t, location_id);
	e->next = *h;
	*h = e;
	t->n++;
}

void loc_tokens_drop(struct loc_tokens *t, const char *location_id, const char *token)
{
	for (struct loc_token **pp = head_of(t, location_id); *pp; pp = &(*pp)->next) {
		struct loc_token *e = *pp;
		if (str_eq(e->location_id, location_id) && (!token || str_eq(e->token, token))) {
			remove_at(t, pp);
			return;
		}
	}
}

int loc_tokens_count(const struct loc_tokens *t)
{
	return t ? t->n : 0;
}
