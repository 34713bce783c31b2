/* loc_tokens.c — the process's location-token cache; see loc_tokens.h. */
#include "loc_tokens.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "util.h"

struct loc_token {
	char *company_id, *location_id;
	char *token; /* secret: wiped before it is freed */
	int64_t expires_ms, used_ms;
	struct loc_token *next;
};

struct loc_tokens {
	struct loc_token *list;
	int n;
};

struct loc_tokens *loc_tokens_new(void)
{
	return xcalloc(1, sizeof(struct loc_tokens));
}

static void entry_free(struct loc_token *e)
{
	secret_free(e->token);
	free(e->company_id);
	free(e->location_id);
	free(e);
}

/* Wipe the expired and idle entries, and location_id's when given. */
static void sweep(struct loc_tokens *t, int64_t now_ms, const char *location_id)
{
	struct loc_token **pp = &t->list;
	while (*pp) {
		struct loc_token *e = *pp;
		int gone = e->expires_ms <= now_ms || now_ms - e->used_ms >= LOC_TOKEN_IDLE_MS ||
			   (location_id && str_eq(e->location_id, location_id));
		if (gone) {
			*pp = e->next;
			entry_free(e);
			t->n--;
		} else {
			pp = &e->next;
		}
	}
}

struct loc_tokens *loc_tokens_free(struct loc_tokens *t)
{
	if (!t)
		return NULL;
	while (t->list) {
		struct loc_token *e = t->list;
		t->list = e->next;
		entry_free(e);
	}
	free(t);
	return NULL;
}

const char *loc_tokens_get(struct loc_tokens *t, const char *company_id, const char *location_id,
			   int64_t now_ms)
{
	sweep(t, now_ms, NULL);
	for (struct loc_token *e = t->list; e; e = e->next) {
		if (str_eq(e->location_id, location_id) &&
		    str_eq(e->company_id, company_id ? company_id : "")) {
			e->used_ms = now_ms;
			return e->token;
		}
	}
	return NULL;
}

void loc_tokens_put(struct loc_tokens *t, const char *company_id, const char *location_id,
		    const char *token, long long expires_in, int64_t now_ms)
{
	if (!location_id || !token || !*token)
		return;
	sweep(t, now_ms, location_id); /* at most one token per location */
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
	e->next = t->list;
	t->list = e;
	t->n++;
}

void loc_tokens_drop(struct loc_tokens *t, const char *location_id, const char *token)
{
	struct loc_token **pp = &t->list;
	while (*pp) {
		struct loc_token *e = *pp;
		if (str_eq(e->location_id, location_id) && (!token || str_eq(e->token, token))) {
			*pp = e->next;
			entry_free(e);
			t->n--;
			return;
		}
		pp = &e->next;
	}
}

int loc_tokens_count(const struct loc_tokens *t)
{
	return t ? t->n : 0;
}
