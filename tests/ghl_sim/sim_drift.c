/* sim_drift.c — the /_sim/ endpoints that make what a finished job built
 * drift away, as an agency user would in GHL's own UI (reconciliation tests):
 *
 *   DELETE /_sim/locations/{id}        the location is gone (GET → 404)
 *   POST   /_sim/locations/{id}/push   {"failed": true|false}: its snapshot
 *                                      push reports "failed" (or completed)
 *   DELETE /_sim/users/{id}            the user is gone (GET → 404)
 *
 * Like every admin endpoint: no auth, no faults, not counted. */
#include <string.h>

#include "sim.h"

static void answer(struct sim_ctx *c, int status, const char *key, const char *msg)
{
	struct jw w;
	c->status = status;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, key);
	if (status == 200)
		jw_bool(&w, 1);
	else
		jw_string(&w, msg);
	jw_object_end(&w);
}

static void user_delete(struct sim *s, struct sim_user *u)
{
	htab_del(&s->store.users, u->id);
	if (htab_get(&s->store.user_emails, u->email_key) == u)
		htab_del(&s->store.user_emails, u->email_key);
	vec_remove(&s->store.user_list, u);
	sim_user_free(u);
}

static void push_set(struct sim_ctx *c, struct sim_location *loc)
{
	if (sim_body_json(c) != 0)
		return;
	int failed = json_get_bool(c->body, "failed");
	if (failed < 0) {
		answer(c, 400, "error", "failed (a boolean) is required");
		return;
	}
	if (!loc->push_id) {
		answer(c, 400, "error", "the location has no snapshot push");
		return;
	}
	loc->push_failed = failed;
	answer(c, 200, "ok", NULL);
}

int sim_drift_admin(struct sim_ctx *c)
{
	int del = c->method == EVHTTP_REQ_DELETE, post = c->method == EVHTTP_REQ_POST;
	if (c->nseg < 3)
		return 0;
	if (str_eq(c->seg[1], "locations") &&
	    ((del && c->nseg == 3) || (post && c->nseg == 4 && str_eq(c->seg[3], "push")))) {
		struct sim_location *loc = sim_location_get(c->s, c->seg[2]);
		if (!loc)
			answer(c, 404, "error", "no such location");
		else if (del) {
			sim_location_delete(c->s, loc);
			answer(c, 200, "ok", NULL);
		} else
			push_set(c, loc);
		return 1;
	}
	if (str_eq(c->seg[1], "users") && del && c->nseg == 3) {
		struct sim_user *u = htab_get(&c->s->store.users, c->seg[2]);
		if (!u)
			answer(c, 404, "error", "no such user");
		else {
			user_delete(c->s, u);
			answer(c, 200, "ok", NULL);
		}
		return 1;
	}
	return 0;
}
