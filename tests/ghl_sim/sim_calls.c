/* sim_calls.c — the per-token (per-bucket) request log: every API request
 * that carried a known access token, in arrival order, with the rate-limit
 * bucket it was counted in (the company for an agency token, the location for
 * a location token: GHL's "per app per resource"), its route and its final
 * status (429 when refused, -1 when held as an injected timeout, 0 when
 * dropped). It is what the economy test and benchmark count calls from.
 *
 * GET /_sim/calls[?bucket=ID][&since=SEQ] answers
 *   {"calls": [{"seq","method","route","path","bucket","tokenClass","companyId",
 *               "status","atMs"}], "buckets": {"ID": {"tokenClass","count","limited"}},
 *    "total": N}
 * ("count" excludes 429s, which GHL does not count either). POST /_sim/calls/reset
 * forgets the log (POST /_sim/reset does too). At most SIM_CALLS_MAX entries are
 * kept; older ones are dropped first and "dropped" says how many.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SIM_CALLS_MAX 1000000

struct sim_call {
	int64_t seq;
	char *route; /* the stats key, "POST /locations/" */
	char *path;
	char *bucket;
	char *company_id;
	int location_class;
	int status;
	int64_t at_ms; /* since the simulator started */
};

static void call_free(struct sim_call *k)
{
	free(k->route);
	free(k->path);
	free(k->bucket);
	free(k->company_id);
	free(k);
}

void sim_calls_record(struct sim_ctx *c, int status)
{
	struct sim *s = c->s;
	if (!c->tok || !c->route)
		return;
	if (s->calls.n >= SIM_CALLS_MAX) {
		call_free(s->calls.v[0]);
		memmove(s->calls.v, s->calls.v + 1, (s->calls.n - 1) * sizeof(void *));
		s->calls.n--;
		s->calls_dropped++;
	}
	const struct sim_token *t = c->tok;
	int loc = t->cls == CLASS_LOCATION && t->location_id;
	struct sim_call *k = xcalloc(1, sizeof *k);
	k->seq = ++s->calls_seq;
	k->route = xstrdup(c->route->stats_key);
	k->path = xstrdup(c->path ? c->path : "");
	k->bucket = xstrdup(loc ? t->location_id : t->company_id);
	k->company_id = xstrdup(t->company_id);
	k->location_class = loc;
	k->status = status;
	k->at_ms = now_wall_ms() - s->started_ms;
	vec_push(&s->calls, k);
}

void sim_calls_clear(struct sim *s)
{
	for (size_t i = 0; i < s->calls.n; i++)
		call_free(s->calls.v[i]);
	vec_free(&s->calls);
	memset(&s->calls, 0, sizeof s->calls);
	s->calls_dropped = 0;
}

struct bucket_sum {
	int location_class;
	int64_t count, limited;
};

static void write_calls(struct sim_ctx *c)
{
	struct sim *s = c->s;
	const char *bucket = sim_query(c, "bucket");
	const char *since_s = sim_query(c, "since");
	long long since = 0;
	if (since_s && str_to_ll(since_s, 0, INT64_MAX, &since) != 0)
		since = 0;
	struct htab sums;
	htab_init(&sums);
	struct jw w;
	c->status = 200;
	buf_reset(&c->out);
	jw_init(&w, &c->out);
	jw_object_begin(&w);
	jw_key(&w, "calls");
	jw_array_begin(&w);
	int64_t total = 0;
	for (size_t i = 0; i < s->calls.n; i++) {
		const struct sim_call *k = s->calls.v[i];
		if (k->seq <= since || (bucket && !str_eq(bucket, k->bucket)))
			continue;
		total++;
		struct bucket_sum *b = htab_get(&sums, k->bucket);
		if (!b) {
			b = xcalloc(1, sizeof *b);
			b->location_class = k->location_class;
			htab_put(&sums, k->bucket, b);
		}
		if (k->status == 429)
			b->limited++;
		else
			b->count++;
		jw_object_begin(&w);
		jw_key(&w, "seq");
		jw_int(&w, k->seq);
		const char *sp = strchr(k->route, ' ');
		char *method = xstrndup(k->route, sp ? (size_t)(sp - k->route) : strlen(k->route));
		jw_key(&w, "method");
		jw_string(&w, method);
		free(method);
		jw_key(&w, "route");
		jw_string(&w, sp ? sp + 1 : k->route);
		jw_key(&w, "path");
		jw_string(&w, k->path);
		jw_key(&w, "bucket");
		jw_string(&w, k->bucket);
		jw_key(&w, "tokenClass");
		jw_string(&w, k->location_class ? "Location" : "Company");
		jw_key(&w, "companyId");
		jw_string(&w, k->company_id);
		jw_key(&w, "status");
		jw_int(&w, k->status);
		jw_key(&w, "atMs");
		jw_int(&w, k->at_ms);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "buckets");
	jw_object_begin(&w);
	struct htab_iter it = {0, NULL};
	struct htab_ent *e;
	while ((e = htab_next(&sums, &it)) != NULL) {
		const struct bucket_sum *b = e->val;
		jw_key(&w, e->key);
		jw_object_begin(&w);
		jw_key(&w, "tokenClass");
		jw_string(&w, b->location_class ? "Location" : "Company");
		jw_key(&w, "count");
		jw_int(&w, b->count);
		jw_key(&w, "limited");
		jw_int(&w, b->limited);
		jw_object_end(&w);
	}
	jw_object_end(&w);
	jw_key(&w, "total");
	jw_int(&w, total);
	jw_key(&w, "dropped");
	jw_int(&w, s->calls_dropped);
	jw_object_end(&w);
	htab_clear(&sums, free);
}

/* /_sim/calls and /_sim/calls/reset; 1 when c was one of them. */
int sim_calls_admin(struct sim_ctx *c)
{
	if (c->nseg < 2 || !str_eq(c->seg[1], "calls"))
		return 0;
	if (c->nseg == 2 && c->method == EVHTTP_REQ_GET) {
		write_calls(c);
		return 1;
	}
	if (c->nseg == 3 && c->method == EVHTTP_REQ_POST && str_eq(c->seg[2], "reset")) {
		sim_calls_clear(c->s);
		c->status = 200;
		buf_reset(&c->out);
		buf_puts(&c->out, "{\"ok\":true}");
		return 1;
	}
	return 0;
}
