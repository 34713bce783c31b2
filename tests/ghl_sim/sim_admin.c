/* sim_admin.c — the /_sim/ endpoints: state, stats, faults, reset,
 * expire-tokens, snapshots, webhooks/send.
 *
 * They bypass auth, rate limits and fault injection, and are not counted in
 * the request statistics. Errors are {"error": "..."} with status 400/404.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void admin_error(struct sim_ctx *c, int status, const char *msg)
{
	struct jw w;
	c->status = status;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "error");
	jw_string(&w, msg);
	jw_object_end(&w);
}

static void write_routes(struct jw *w, const char *name, const struct sim_fail_route *slots)
{
	jw_key(w, name);
	jw_object_begin(w);
	for (int i = 0; i < SIM_FAIL_ROUTES; i++) {
		if (slots[i].n > 0) {
			jw_key(w, slots[i].key);
			jw_int(w, slots[i].n);
		}
	}
	jw_object_end(w);
}

static void write_faults(struct jw *w, const struct sim_config *cfg)
{
	jw_object_begin(w);
	jw_key(w, "latency_ms");
	jw_int(w, cfg->latency_ms);
	jw_key(w, "jitter_ms");
	jw_int(w, cfg->jitter_ms);
	jw_key(w, "error_rate");
	jw_double(w, cfg->error_rate);
	jw_key(w, "timeout_rate");
	jw_double(w, cfg->timeout_rate);
	jw_key(w, "drop_rate");
	jw_double(w, cfg->drop_rate);
	jw_key(w, "rate_limit");
	jw_int(w, cfg->rate_limit);
	jw_key(w, "rate_window_ms");
	jw_int(w, cfg->rate_window_ms);
	jw_key(w, "daily_limit");
	jw_int(w, cfg->daily_limit);
	jw_key(w, "snapshot_delay_ms");
	jw_int(w, cfg->snapshot_delay_ms);
	jw_key(w, "access_ttl");
	jw_int(w, cfg->access_ttl);
	int64_t left = cfg->outage_until_ms - now_monotonic_ms();
	jw_key(w, "outage_ms"); /* the time left */
	jw_int(w, left > 0 ? left : 0);
	jw_key(w, "fail_next");
	jw_int(w, cfg->fail_next);
	jw_key(w, "fail_status");
	jw_int(w, cfg->fail_status);
	write_routes(w, "fail_routes", cfg->fail_routes);
	write_routes(w, "hold_routes", cfg->hold_routes);
	jw_key(w, "gate");
	jw_int(w, cfg->gate);
	jw_object_end(w);
}

static void answer_faults(struct sim_ctx *c)
{
	struct jw w;
	c->status = 200;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	write_faults(&w, &c->s->cfg);
}

struct fault_field {
	const char *name;
	size_t off;
	int is_rate;
	int64_t min, max;
};

#define F(n, min, max)                                          \
	{                                                       \
#n, offsetof(struct sim_config, n), 0, min, max \
	}
#define R(n)                                                \
	{                                                   \
#n, offsetof(struct sim_config, n), 1, 0, 0 \
	}
static const struct fault_field fault_fields[] = {
	F(latency_ms, 0, 600000),
	F(jitter_ms, 0, 600000),
	R(error_rate),
	R(timeout_rate),
	R(drop_rate),
	F(rate_limit, 0, 1000000000),
	F(rate_window_ms, 1, 86400000),
	F(daily_limit, 0, 1000000000),
	F(snapshot_delay_ms, 0, 86400000),
	F(outage_ms, 0, 86400000),
	F(access_ttl, 1, 315360000),
	F(fail_next, 0, 1000000000),
	F(fail_status, 400, 599),
	F(gate, 0, 1000000),
};

/* "fail_routes" (or "hold_routes"): {"POST /users/": 2, ...} sets (0: clears)
 * per-route counts in slots. NULL, or the problem (malloc'd). */
static char *set_fail_routes(struct sim_fail_route *slots, const char *name, const struct json *v)
{
	if (v->type != JSON_OBJECT)
		return xasprintf("%s must be an object of \"METHOD /route\": count", name);
	for (size_t i = 0; i < v->u.obj.n; i++) {
		const char *key = v->u.obj.keys[i];
		const struct json *n = v->u.obj.vals[i];
		if (!sim_route_known(key))
			return xasprintf("%s: unknown route \"%s\" (use a key of "
					 "/_sim/stats requests, e.g. \"POST /users/\")",
					 name, key);
		if (n->type != JSON_NUMBER || !n->u.num.is_int || n->u.num.i < 0 ||
		    n->u.num.i > 1000000000)
			return xasprintf("%s: \"%s\" must be an integer in [0, 1000000000]", name,
					 key);
		struct sim_fail_route *slot = NULL, *free_slot = NULL;
		for (int k = 0; k < SIM_FAIL_ROUTES; k++) {
			struct sim_fail_route *f = &slots[k];
			if (f->n > 0 && str_eq(f->key, key))
				slot = f;
			else if (f->n == 0 && !free_slot)
				free_slot = f;
		}
		if (!slot && n->u.num.i == 0)
			continue;
		if (!slot && !free_slot)
			return xasprintf("%s: at most %d routes at once", name, SIM_FAIL_ROUTES);
		if (!slot) {
			slot = free_slot;
			snprintf(slot->key, sizeof slot->key, "%s", key);
		}
		slot->n = n->u.num.i;
	}
	return NULL;
}

/* Parse the whole update into a copy; swap it in only when every field is valid. */
static void post_faults(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return;
	struct sim_config next = c->s->cfg;
	const struct json *b = c->body;
	for (size_t i = 0; i < b->u.obj.n; i++) {
		const char *k = b->u.obj.keys[i];
		const struct json *v = b->u.obj.vals[i];
		const struct fault_field *f = NULL;
		for (size_t j = 0; j < sizeof fault_fields / sizeof fault_fields[0]; j++)
			if (str_eq(fault_fields[j].name, k))
				f = &fault_fields[j];
		char *msg = NULL;
		if (str_eq(k, "fail_routes") || str_eq(k, "hold_routes")) {
			msg = set_fail_routes(str_eq(k, "fail_routes") ? next.fail_routes
								       : next.hold_routes,
					      k, v);
			if (!msg)
				continue;
		} else if (!f)
			msg = xasprintf("unknown field \"%s\"", k);
		else if (v->type != JSON_NUMBER)
			msg = xasprintf("%s must be a number", k);
		else if (f->is_rate && !(v->u.num.d >= 0.0 && v->u.num.d <= 1.0))
			msg = xasprintf("%s must be between 0 and 1", k);
		else if (!f->is_rate &&
			 (!v->u.num.is_int || v->u.num.i < f->min || v->u.num.i > f->max))
			msg = xasprintf("%s must be an integer in [%lld, %lld]", k,
					(long long)f->min, (long long)f->max);
		if (msg) {
			admin_error(c, 400, msg);
			free(msg);
			return;
		}
		char *dst = (char *)&next + f->off;
		if (f->is_rate)
			*(double *)(void *)dst = v->u.num.d;
		else
			*(int64_t *)(void *)dst = v->u.num.i;
	}
	if (json_get(b, "outage_ms")) /* a timed outage starts now (0 ends one) */
		next.outage_until_ms = now_monotonic_ms() + next.outage_ms;
	int rl_changed = next.rate_limit != c->s->cfg.rate_limit ||
			 next.rate_window_ms != c->s->cfg.rate_window_ms ||
			 next.daily_limit != c->s->cfg.daily_limit;
	c->s->cfg = next;
	if (rl_changed)
		sim_rl_free(c->s);
	sim_gate_check(c->s);
	answer_faults(c);
}

static void write_token(struct jw *w, const struct sim_token *t, int64_t now)
{
	char ts[32];
	jw_object_begin(w);
	jw_key(w, "token");
	jw_string(w, t->token);
	jw_key(w, "fingerprint");
	jw_string(w, t->fingerprint);
	jw_key(w, "kind");
	jw_string(w, t->kind == TOK_ACCESS ? "access" : "refresh");
	jw_key(w, "userType");
	jw_string(w, t->cls == CLASS_LOCATION ? "Location" : "Company");
	jw_key(w, "companyId");
	jw_string(w, t->company_id);
	jw_key(w, "locationId");
	jw_string(w, t->location_id);
	jw_key(w, "clientId");
	jw_string(w, t->client_id);
	jw_key(w, "userId");
	jw_string(w, t->user_id);
	sim_iso_time(t->issued_ms, ts);
	jw_key(w, "issuedAt");
	jw_string(w, ts);
	jw_key(w, "expiresAt");
	if (t->expires_ms) {
		sim_iso_time(t->expires_ms, ts);
		jw_string(w, ts);
	} else {
		jw_null(w);
	}
	jw_key(w, "expired");
	jw_bool(w, t->expires_ms && t->expires_ms <= now);
	jw_key(w, "used");
	jw_bool(w, t->used);
	jw_key(w, "revoked");
	jw_bool(w, t->revoked);
	jw_object_end(w);
}

static void write_location(struct sim *s, struct jw *w, const struct sim_location *loc, int64_t now)
{
	jw_object_begin(w);
	for (size_t i = 0; i < loc->obj->u.obj.n; i++) {
		jw_key(w, loc->obj->u.obj.keys[i]);
		jw_value(w, loc->obj->u.obj.vals[i]);
	}
	jw_key(w, "snapshotPush");
	if (loc->snapshot_id)
		sim_write_push(s, w, loc, now);
	else
		jw_null(w);
	jw_key(w, "saas");
	if (loc->saas)
		jw_value(w, loc->saas);
	else
		jw_null(w);
	jw_key(w, "customValues");
	jw_value(w, loc->custom_values);
	jw_key(w, "customFields");
	jw_value(w, loc->custom_fields);
	jw_key(w, "tags");
	jw_value(w, loc->tags);
	jw_key(w, "contacts");
	jw_value(w, loc->contacts);
	jw_object_end(w);
}

static void get_state(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct sim_store *st = &s->store;
	int64_t now = now_wall_ms();
	struct jw w;
	c->status = 200;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "clientId");
	jw_string(&w, s->cfg.client_id);
	jw_key(&w, "demoCompanyId");
	jw_string(&w, s->cfg.company_id);
	jw_key(&w, "faults");
	write_faults(&w, &s->cfg);
	jw_key(&w, "companies");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->company_list.n; i++) {
		struct sim_company *co = st->company_list.v[i];
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, co->id);
		jw_key(&w, "name");
		jw_string(&w, co->name);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "snapshots");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->snapshot_list.n; i++) {
		struct sim_snapshot *sn = st->snapshot_list.v[i];
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, sn->id);
		jw_key(&w, "companyId");
		jw_string(&w, sn->company_id);
		jw_key(&w, "name");
		jw_string(&w, sn->name);
		jw_key(&w, "type");
		jw_string(&w, sn->type);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "locations");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->location_list.n; i++)
		write_location(s, &w, st->location_list.v[i], now);
	jw_array_end(&w);
	jw_key(&w, "users");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->user_list.n; i++) {
		struct sim_user *u = st->user_list.v[i];
		jw_object_begin(&w);
		jw_key(&w, "companyId");
		jw_string(&w, u->company_id);
		for (size_t k = 0; k < u->obj->u.obj.n; k++) {
			jw_key(&w, u->obj->u.obj.keys[k]);
			jw_value(&w, u->obj->u.obj.vals[k]);
		}
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "tokens");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->token_list.n; i++)
		write_token(&w, st->token_list.v[i], now);
	jw_array_end(&w);
	jw_key(&w, "codes");
	jw_array_begin(&w);
	for (size_t i = 0; i < st->code_list.n; i++) {
		struct sim_code *k = st->code_list.v[i];
		jw_object_begin(&w);
		jw_key(&w, "code");
		jw_string(&w, k->code);
		jw_key(&w, "companyId");
		jw_string(&w, k->company_id);
		jw_key(&w, "locationId");
		jw_string(&w, k->location_id);
		jw_key(&w, "used");
		jw_bool(&w, k->used);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "golive");
	if (st->golive)
		jw_value(&w, st->golive);
	else
		jw_null(&w);
	jw_object_end(&w);
}

static void get_stats(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct sim_stats *st = &s->stats;
	struct jw w;
	c->status = 200;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "requests");
	jw_object_begin(&w);
	struct htab_iter it = {0, NULL};
	struct htab_ent *e;
	while ((e = htab_next(&st->routes, &it)) != NULL) {
		const struct route_stats *rs = e->val;
		jw_key(&w, e->key);
		jw_object_begin(&w);
		for (int i = 0; i < rs->n; i++) {
			char k[16];
			if (rs->status[i] == -1)
				snprintf(k, sizeof k, "timeout");
			else if (rs->status[i] == 0)
				snprintf(k, sizeof k, "dropped");
			else
				snprintf(k, sizeof k, "%d", rs->status[i]);
			jw_key(&w, k);
			jw_int(&w, rs->count[i]);
		}
		jw_object_end(&w);
	}
	jw_object_end(&w);
	static const struct {
		const char *name;
		size_t off;
	} counters[] = {
		{"requests_total", offsetof(struct sim_stats, requests_total)},
		{"locations_created", offsetof(struct sim_stats, locations_created)},
		{"duplicate_locations", offsetof(struct sim_stats, duplicate_locations)},
		{"refreshes", offsetof(struct sim_stats, refreshes)},
		{"invalid_grant", offsetof(struct sim_stats, invalid_grant)},
		{"rate_limited", offsetof(struct sim_stats, rate_limited)},
		{"errors_injected", offsetof(struct sim_stats, errors_injected)},
		{"timeouts_injected", offsetof(struct sim_stats, timeouts_injected)},
		{"drops_injected", offsetof(struct sim_stats, drops_injected)},
		{"webhooks_sent", offsetof(struct sim_stats, webhooks_sent)},
		{"in_flight", offsetof(struct sim_stats, in_flight)},
		{"gates_opened", offsetof(struct sim_stats, gates_opened)},
		{"gate_waiting", offsetof(struct sim_stats, gate_waiting)},
	};
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		jw_key(&w, counters[i].name);
		jw_int(&w, *(const int64_t *)(const void *)((const char *)st + counters[i].off));
	}
	jw_key(&w, "locations");
	jw_int(&w, (int64_t)s->store.location_list.n);
	jw_key(&w, "users");
	jw_int(&w, (int64_t)s->store.user_list.n);
	jw_key(&w, "tokens");
	jw_int(&w, (int64_t)s->store.token_list.n);
	jw_object_end(&w);
}

static void post_reset(struct sim_ctx *c)
{
	struct sim *s = c->s;
	sim_store_reset(s);
	int64_t in_flight = s->stats.in_flight, gate_waiting = s->stats.gate_waiting;
	htab_clear(&s->stats.routes, free);
	memset(&s->stats, 0, sizeof s->stats);
	htab_init(&s->stats.routes);
	s->stats.in_flight = in_flight;
	s->stats.gate_waiting = gate_waiting;
	sim_rl_free(s);
	sim_calls_clear(s);
	c->status = 200;
	buf_reset(&c->out);
	buf_puts(&c->out, "{\"ok\":true}");
}

static void post_expire(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return;
	const char *token = json_get_str(c->body, "token");
	const char *company = json_get_str(c->body, "companyId");
	const char *location = json_get_str(c->body, "locationId");
	int refresh = json_get_bool(c->body, "refresh") == 1;
	int64_t now = now_wall_ms();
	int64_t n = 0;
	struct vec *list = &c->s->store.token_list;
	for (size_t i = 0; i < list->n; i++) {
		struct sim_token *t = list->v[i];
		if (token && !str_eq(t->token, token))
			continue;
		if (company && !str_eq(t->company_id, company))
			continue;
		if (location && !str_eq(t->location_id, location))
			continue;
		if (t->kind == TOK_ACCESS && t->expires_ms > now) {
			t->expires_ms = now - 1;
			n++;
		} else if (t->kind == TOK_REFRESH && refresh && !t->revoked) {
			t->revoked = 1;
			n++;
		}
	}
	struct jw w;
	c->status = 200;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "expired");
	jw_int(&w, n);
	jw_object_end(&w);
}

static void post_snapshot(struct sim_ctx *c)
{
	if (sim_body_json(c) != 0)
		return;
	const char *company = json_get_str(c->body, "companyId");
	const char *id = json_get_str(c->body, "id");
	const char *name = json_get_str(c->body, "name");
	const char *type = json_get_str(c->body, "type");
	if (!company || !*company || !id || !*id) {
		admin_error(c, 400, "companyId and id are required");
		return;
	}
	sim_company_get_or_create(c->s, company, NULL);
	sim_snapshot_add(c->s, company, id, name ? name : id, type ? type : "own");
	c->status = 201;
	buf_reset(&c->out);
	buf_puts(&c->out, "{\"ok\":true}");
}

void sim_admin_dispatch(struct sim_ctx *c)
{
	const char *what = c->nseg >= 2 ? c->seg[1] : "";
	int get = c->method == EVHTTP_REQ_GET, post = c->method == EVHTTP_REQ_POST;
	if (sim_calls_admin(c) || sim_drift_admin(c))
		return;
	if (c->nseg == 2 && get && str_eq(what, "state"))
		get_state(c);
	else if (c->nseg == 2 && get && str_eq(what, "stats"))
		get_stats(c);
	else if (c->nseg == 2 && get && str_eq(what, "faults"))
		answer_faults(c);
	else if (c->nseg == 2 && post && str_eq(what, "faults"))
		post_faults(c);
	else if (c->nseg == 2 && post && str_eq(what, "reset"))
		post_reset(c);
	else if (c->nseg == 2 && post && str_eq(what, "expire-tokens"))
		post_expire(c);
	else if (c->nseg == 2 && post && str_eq(what, "snapshots"))
		post_snapshot(c);
	else if (c->nseg == 3 && post && str_eq(what, "webhooks") && str_eq(c->seg[2], "send"))
		sim_h_webhook_send(c);
	else
		admin_error(c, 404, "unknown admin endpoint; see ghl-sim --help");
}
