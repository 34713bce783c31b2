/* ghl_refresh.c — the GHL client's single-flight token refresh: concurrent
 * 401s for the same stale token wait on one refresh, and its result serves
 * late 401s for a while (the rotations).
 */
#include "ghl_client_int.h"

/* ---- token refresh ---- */

static int hooks_eq(const struct ghl_token_hooks *a, const struct ghl_token_hooks *b)
{
	return a->refresh == b->refresh && a->ctx == b->ctx;
}

static void token_replace(struct ghl_call *call, const char *tok)
{
	secret_free(call->token);
	call->token = xstrdup(tok);
}

static void rotation_add(struct ghl_client *c, const struct ghl_token_hooks *h, const char *stale,
			 const char *fresh, const char *why, int64_t now)
{
	if (c->nrot == ROTATION_MAX) {
		secret_free(c->rot[0].stale);
		secret_free(c->rot[0].fresh);
		free(c->rot[0].why);
		memmove(&c->rot[0], &c->rot[1], sizeof c->rot[0] * (ROTATION_MAX - 1));
		c->nrot--;
	}
	struct rotation *r = &c->rot[c->nrot++];
	r->hooks = *h;
	r->stale = xstrdup(stale);
	r->fresh = fresh ? xstrdup(fresh) : NULL;
	r->why = why ? xstrdup(why) : NULL;
	r->at = now;
}

static const struct rotation *rotation_find(struct ghl_client *c, const struct ghl_token_hooks *h,
					    const char *stale, int64_t now)
{
	for (int i = c->nrot - 1; i >= 0; i--) {
		const struct rotation *r = &c->rot[i];
		if (hooks_eq(&r->hooks, h) &&
		    now - r->at < (r->fresh ? ROTATION_TTL_MS : FAILED_TTL_MS) &&
		    strcmp(r->stale, stale) == 0)
			return r;
	}
	return NULL;
}

static char *refresh_failed_msg(const char *why)
{
	return xasprintf("token refresh failed: %s", why && *why ? why : "no reason given");
}

static void refresh_free(struct refresh *rf)
{
	secret_free(rf->stale);
	free(rf);
}

static void refresh_done(void *done_arg, const char *new_token, const struct err *e)
{
	const char *why = e ? e->msg : NULL;
	struct refresh *rf = done_arg;
	struct ghl_client *c = rf->c;
	if (!c) { /* the client was freed meanwhile */
		refresh_free(rf);
		return;
	}
	ghl_client_enter(c);
	for (struct refresh **pp = &c->refreshes; *pp; pp = &(*pp)->next) {
		if (*pp == rf) {
			*pp = rf->next;
			break;
		}
	}
	int ok = new_token && *new_token;
	rotation_add(c, &rf->hooks, rf->stale, ok ? new_token : NULL, ok ? NULL : why,
		     now_monotonic_ms());
	struct ghl_call *w = rf->waiters;
	rf->waiters = NULL;
	refresh_free(rf);
	char *msg = ok ? NULL : refresh_failed_msg(why);
	while (w && !c->freeing) {
		struct ghl_call *next = w->qnext;
		w->qnext = NULL;
		if (msg) {
			ghl_call_deliver(w, 401, GHL_AUTH, msg, 0);
		} else {
			token_replace(w, new_token);
			ghl_call_submit(w);
		}
		w = next;
	}
	free(msg);
	ghl_client_leave(c);
}

void ghl_refresh_begin(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	call->refreshed = 1;
	call->state = CS_REFRESH;
	const struct rotation *rot = rotation_find(c, &call->hooks, call->token,
						   now_monotonic_ms());
	if (rot && rot->fresh) {
		token_replace(call, rot->fresh);
		ghl_call_submit(call);
		return;
	}
	if (rot) {
		char *msg = refresh_failed_msg(rot->why);
		ghl_call_deliver(call, 401, GHL_AUTH, msg, 0);
		free(msg);
		return;
	}
	for (struct refresh *rf = c->refreshes; rf; rf = rf->next) {
		if (hooks_eq(&rf->hooks, &call->hooks) && strcmp(rf->stale, call->token) == 0) {
			call->qnext = rf->waiters;
			rf->waiters = call;
			return;
		}
	}
	struct refresh *rf = xcalloc(1, sizeof *rf);
	rf->c = c;
	rf->hooks = call->hooks;
	rf->stale = xstrdup(call->token);
	rf->waiters = call;
	rf->next = c->refreshes;
	c->refreshes = rf;
	/* the provider may answer synchronously, which frees rf: hand it a copy */
	char *stale = xstrdup(call->token);
	rf->hooks.refresh(rf->hooks.ctx, stale, refresh_done, rf);
	secret_free(stale);
}

void ghl_rotation_sweep(struct ghl_client *c, int64_t now)
{
	int k = 0;
	for (int i = 0; i < c->nrot; i++) {
		if (now - c->rot[i].at >= ROTATION_TTL_MS) {
			secret_free(c->rot[i].stale);
			secret_free(c->rot[i].fresh);
			free(c->rot[i].why);
		} else {
			c->rot[k++] = c->rot[i];
		}
	}
	c->nrot = k;
}

void ghl_rotation_clear_all(struct ghl_client *c)
{
	for (int i = 0; i < c->nrot; i++) {
		secret_free(c->rot[i].stale);
		secret_free(c->rot[i].fresh);
		free(c->rot[i].why);
	}
}

void ghl_refresh_orphan_all(struct ghl_client *c)
{
	for (struct refresh *rf = c->refreshes; rf;) {
		struct refresh *next = rf->next;
		rf->c = NULL;
		rf->waiters = NULL;
		rf->next = NULL;
		rf = next;
	}
	c->refreshes = NULL;
}
