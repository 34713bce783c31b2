/* get_cache.c — shared GHL reads; see get_cache.h. */
#include "get_cache.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* Above this many entries, stale ones are swept on every insert. */
#define GET_CACHE_SWEEP 256

struct get_wait {
	struct get_entry *entry;
	get_cache_fn cb;
	void *arg;
	struct get_wait *next;
};

struct get_entry {
	char *key;
	int inflight; /* a leader's request is out */
	int busy;     /* get_cache_finish is calling its waiters */
	struct get_wait *waiters;
	/* the last 2xx reply */
	int have;
	int status;
	struct json *body;
	char *trace_id;
	int64_t at_ms;
	struct get_entry *next;
};

struct get_cache {
	struct get_entry *list;
	int n;
};

struct get_cache *get_cache_new(void)
{
	return xcalloc(1, sizeof(struct get_cache));
}

static void entry_free(struct get_entry *e)
{
	while (e->waiters) {
		struct get_wait *w = e->waiters;
		e->waiters = w->next;
		free(w);
	}
	json_free(e->body);
	free(e->trace_id);
	free(e->key);
	free(e);
}

struct get_cache *get_cache_free(struct get_cache *c)
{
	if (!c)
		return NULL;
	while (c->list) {
		struct get_entry *e = c->list;
		c->list = e->next;
		entry_free(e);
	}
	free(c);
	return NULL;
}

static struct get_entry *find(struct get_cache *c, const char *key)
{
	for (struct get_entry *e = c->list; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

/* Forget entries nobody waits for whose answer is older than an hour (no
 * caller asks for older; a TTL is short). */
static void sweep(struct get_cache *c, int64_t now_ms)
{
	struct get_entry **pp = &c->list;
	while (*pp) {
		struct get_entry *e = *pp;
		if (!e->inflight && !e->busy && !e->waiters && now_ms - e->at_ms > 3600000) {
			*pp = e->next;
			entry_free(e);
			c->n--;
		} else {
			pp = &e->next;
		}
	}
}

enum get_cache_step get_cache_enter(struct get_cache *c, const char *key, long long max_age_ms,
				    int64_t now_ms, get_cache_fn cb, void *arg,
				    struct get_wait **wait)
{
	struct get_entry *e = find(c, key);
	if (e && e->have && now_ms - e->at_ms <= max_age_ms) {
		cb(arg, e->status, GHL_OK, e->body, NULL, e->trace_id, 0);
		return GET_CACHE_HIT;
	}
	if (e && e->inflight) {
		struct get_wait *w = xcalloc(1, sizeof(*w));
		w->entry = e;
		w->cb = cb;
		w->arg = arg;
		w->next = e->waiters;
		e->waiters = w;
		*wait = w;
		return GET_CACHE_JOINED;
	}
	if (!e) {
		if (c->n >= GET_CACHE_SWEEP)
			sweep(c, now_ms);
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->next = c->list;
		c->list = e;
		c->n++;
	}
	e->inflight = 1;
	return GET_CACHE_LEAD;
}

void get_cache_finish(struct get_cache *c, const char *key, const struct ghl_response *res,
		      const char *message, int64_t now_ms)
{
	struct get_entry *e = find(c, key);
	if (!e)
		return;
	e->inflight = 0;
	int ok = res && res->outcome == GHL_OK && res->status >= 200 && res->status <= 299;
	if (ok) {
		json_free(e->body);
		free(e->trace_id);
		e->body = res->json ? json_clone(res->json) : NULL;
		e->trace_id = res->trace_id ? xstrdup(res->trace_id) : NULL;
		e->status = res->status;
		e->at_ms = now_ms;
		e->have = 1;
	}
	/* the waiters oldest first, one at a time: a call may enter again, or make
	 * another waiter leave; busy keeps the entry from being swept meanwhile */
	e->busy = 1;
	for (;;) {
		struct get_wait **pp = &e->waiters;
		if (!*pp)
			break;
		while ((*pp)->next)
			pp = &(*pp)->next;
		struct get_wait *w = *pp;
		*pp = NULL;
		if (res)
			w->cb(w->arg, res->status, res->outcome, res->json, res->message,
			      res->trace_id, res->retry_after_ms);
		else
			w->cb(w->arg, 0, GHL_RETRYABLE, NULL, message, NULL, 0);
		free(w);
	}
	e->busy = 0;
}

void get_cache_leave(struct get_cache *c, struct get_wait *wait)
{
	(void)c;
	struct get_entry *e = wait->entry;
	for (struct get_wait **pp = &e->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == wait) {
			*pp = wait->next;
			free(wait);
			return;
		}
	}
}
