/* test_token_refresh.c — single-flight token refresh (core/ghl/agency_tokens.c).
 *
 * 1. Two `ghl-agent serve` processes on one database sweep 20 agencies whose
 *    tokens are all within token_refresh_margin: ghl-sim must see zero
 *    invalid_grant, and every agency must end with a working token pair.
 * 2. In this process: agency_tokens_get, the GHL client's 401 path through
 *    agency_tokens_hooks, two token stores (as two processes) refreshing the
 *    same stale token at once (one refresh), and a refresh GHL refuses, which
 *    marks the agency needs_reconnect and stops further attempts.
 */
#include "ghl_harness.h"

#include <event2/event.h>

#include "agency_tokens.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "ghl_client.h"

#define NAGENCIES 20

/* ---- two processes --------------------------------------------------------- */

static int count_in(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(two_processes_sweep_without_invalid_grant)
{
	const char *flags[] = {"--access-ttl", "3600", "--rate-limit", "0", NULL};
	struct hsim sim;
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("tokens_two");
	/* margin 2h > ttl 1h: every token is always due, so the two sweeps
	 * keep contending for the same rows */
	const char *env[] = {"GHL_AGENT_TOKEN_REFRESH_MARGIN=2h",
			     "GHL_AGENT_TOKEN_REFRESH_INTERVAL=200ms", NULL};
	struct hagent a, b;
	hagent_start(&a, dsn, &sim, env);
	hagent_start(&b, dsn, &sim, env);
	char company[NAGENCIES][32];
	for (int i = 0; i < NAGENCIES; i++) {
		snprintf(company[i], sizeof(company[i]), "co-sweep-%02d", i);
		struct hresp r;
		char *cb = hconnect(i % 2 ? &b : &a, company[i], &r);
		ck_assert_msg(r.status == 200, "connect %d: %ld %s", i, r.status, r.body);
		hresp_free(&r);
		free(cb);
	}
	/* let them sweep until every agency was refreshed a few times */
	int64_t end = now_monotonic_ms() + 30000;
	while (hsim_stat(&sim, "refreshes") < 3 * NAGENCIES && now_monotonic_ms() < end)
		usleep(100000);
	ck_assert_int_eq(hagent_stop(&a), 0);
	ck_assert_int_eq(hagent_stop(&b), 0);

	long long refreshes = hsim_stat(&sim, "refreshes");
	long long refused = hsim_stat(&sim, "invalid_grant");
	ck_assert_msg(refused == 0, "invalid_grant answers: %lld (refreshes %lld)", refused,
		      refreshes);
	ck_assert_int_ge(refreshes, 3 * NAGENCIES);

	char *log_a = tl_read_file(a.log);
	char *log_b = tl_read_file(b.log);
	int ra = count_in(log_a, "agency token refreshed");
	int rb = count_in(log_b, "agency token refreshed");
	ck_assert_msg(ra + rb == refreshes, "logged %d + %d refreshes, ghl-sim counted %lld", ra,
		      rb, refreshes);
	ck_assert_msg(ra > 0 && rb > 0, "one process did all the work: %d / %d", ra, rb);
	ck_assert_msg(!strstr(log_a, "needs reconnection") && !strstr(log_b, "needs reconnection"),
		      "an agency was marked for reconnection");

	/* every agency: a working access token and a live refresh token */
	PGconn *c = tl_connect(dsn);
	struct json *st = hsim_admin(&sim, "GET", "state", NULL);
	struct json *toks = json_get(st, "tokens");
	for (int i = 0; i < NAGENCIES; i++) {
		char *sql = xasprintf("SELECT oauth_access_token_encrypted || ' ' ||"
				      " oauth_refresh_token_encrypted || ' ' || needs_reconnect"
				      " FROM agencies WHERE ghl_agency_id = '%s'",
				      company[i]);
		char *v = tl_sql_value(c, sql);
		free(sql);
		char *sp = strchr(v, ' ');
		ck_assert_ptr_nonnull(sp);
		*sp = '\0';
		char *sp2 = strchr(sp + 1, ' ');
		ck_assert_ptr_nonnull(sp2);
		*sp2 = '\0';
		ck_assert_str_eq(sp2 + 1, "false");
		char *id = tl_sqlf(c, "SELECT id FROM agencies WHERE ghl_agency_id = '%s'",
				   company[i]);
		char *access = hdecrypt(H_KEY7, v, id, AGENCY_TOKENS_COL_ACCESS);
		char *refresh = hdecrypt(H_KEY7, sp + 1, id, AGENCY_TOKENS_COL_REFRESH);
		free(id);
		ck_assert_msg(hghl_search(&sim, access, company[i]) == 200,
			      "agency %s: token refused", company[i]);
		int live = 0;
		for (size_t k = 0; k < json_len(toks); k++) {
			const struct json *t = json_at(toks, k);
			if (str_eq(json_get_str(t, "token"), refresh))
				live = json_get_bool(t, "used") == 0 &&
				       json_get_bool(t, "revoked") == 0;
		}
		ck_assert_msg(live, "agency %s: stored refresh token is not live", company[i]);
		free(access);
		free(refresh);
		free(v);
	}
	json_free(st);
	char *n = tl_sql_value(c,
			       "SELECT count(*) FROM agencies WHERE last_refreshed_at IS NOT NULL");
	ck_assert_int_eq(atoi(n), NAGENCIES);
	free(n);
	PQfinish(c);

	hassert_no_tokens(&sim, "log of agent A", log_a, 2 * NAGENCIES);
	hassert_no_tokens(&sim, "log of agent B", log_b, 2 * NAGENCIES);
	char *dump = hpg_dump(dsn);
	hassert_no_tokens(&sim, "pg_dump", dump, 2 * NAGENCIES);
	free(dump);
	free(log_a);
	free(log_b);
	unlink(a.log);
	unlink(b.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* ---- in process --------------------------------------------------------------- */

struct store {
	struct app app;
	struct agency_tokens *t;
};

static void cfg_set(struct config *c, const char *k, const char *v)
{
	struct err e;
	ck_assert_msg(config_set(c, k, v, "test", &e) == 0, "%s: %s", k, e.msg);
}

static void run_until(struct event_base *base, const int *flag, int timeout_ms)
{
	int64_t end = now_monotonic_ms() + timeout_ms;
	while (!*flag && now_monotonic_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	ck_assert_msg(*flag, "timed out");
}

static void store_init(struct store *s, struct event_base *base, const char *dsn, struct hsim *sim)
{
	memset(s, 0, sizeof(*s));
	struct err e;
	s->app.base = base;
	s->app.cfg = config_new();
	cfg_set(s->app.cfg, "ghl_api_base", sim->base);
	cfg_set(s->app.cfg, "ghl_client_id", H_CLIENT_ID);
	cfg_set(s->app.cfg, "ghl_client_secret", H_CLIENT_SECRET);
	cfg_set(s->app.cfg, "ghl_timeout", "5s");
	s->app.db = db_pool_new(base, dsn, 3, 500);
	s->app.vault = vault_new();
	ck_assert(vault_add_keys(s->app.vault, H_KEY7, &e) == 0);
	struct ghl_client_opts o = {.api_base = sim->base,
				    .timeout_ms = 5000,
				    .client_id = H_CLIENT_ID,
				    .client_secret = H_CLIENT_SECRET,
				    .rate_budget_off = 1};
	s->app.ghl = ghl_client_new(base, &o, &e);
	ck_assert_msg(s->app.ghl != NULL, "%s", e.msg);
	s->t = agency_tokens_new(&s->app);
	int64_t end = now_monotonic_ms() + 10000;
	while (!db_pool_is_up(s->app.db) && now_monotonic_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	ck_assert(db_pool_is_up(s->app.db));
}

static void store_free(struct store *s)
{
	agency_tokens_stop(s->t, 5000);
	s->app.ghl = ghl_client_free(s->app.ghl);
	s->t = agency_tokens_free(s->t);
	db_pool_free(s->app.db);
	vault_free(s->app.vault);
	config_free(s->app.cfg);
}

struct got {
	int done;
	enum agency_token_status st;
	char *token;
	char *why;
};

static void on_got(void *arg, enum agency_token_status st, const struct agency_token *tok,
		   const char *why)
{
	struct got *g = arg;
	g->done = 1;
	g->st = st;
	g->token = tok ? xstrdup(tok->access_token) : NULL;
	g->why = why ? xstrdup(why) : NULL;
}

static void got_free(struct got *g)
{
	free(g->token);
	free(g->why);
	memset(g, 0, sizeof(*g));
}

struct call {
	int done;
	int status;
	enum ghl_outcome outcome;
	char *message;
};

static void on_call(void *arg, const struct ghl_response *res)
{
	struct call *c = arg;
	c->done = 1;
	c->status = res->status;
	c->outcome = res->outcome;
	c->message = res->message ? xstrdup(res->message) : NULL;
}

static char *stored_access(PGconn *c)
{
	char *enc = tl_sql_value(c, "SELECT oauth_access_token_encrypted FROM agencies");
	char *id = tl_sql_value(c, "SELECT id FROM agencies");
	char *p = hdecrypt(H_KEY7, enc, id, AGENCY_TOKENS_COL_ACCESS);
	free(enc);
	free(id);
	return p;
}

START_TEST(in_process_get_401_single_flight_and_refusal)
{
	const char *flags[] = {"--company-id", "co-inproc", "--rate-limit", "0", NULL};
	struct hsim sim;
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("tokens_inproc");
	/* connect through the real daemon, then stop it: only this process acts */
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);
	struct hresp r;
	char *cb = hconnect(&a, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(cb);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	PGconn *c = tl_connect(dsn);
	char *id = tl_sql_value(c, "SELECT id FROM agencies");

	struct event_base *base = event_base_new();
	struct store s1, s2;
	store_init(&s1, base, dsn, &sim);
	store_init(&s2, base, dsn, &sim);

	/* get: the stored token, no refresh */
	struct got g = {0};
	agency_tokens_get(s1.t, id, on_got, &g);
	run_until(base, &g.done, 10000);
	ck_assert_msg(g.st == AGENCY_TOKEN_OK, "%s", g.why);
	char *first = stored_access(c);
	ck_assert_str_eq(g.token, first);
	got_free(&g);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), 0);

	/* 401 → hooks → refresh → retry */
	json_free(hsim_admin(&sim, "POST", "expire-tokens", "{\"companyId\":\"co-inproc\"}"));
	struct ghl_token_hooks hooks;
	agency_tokens_hooks(s1.t, id, &hooks);
	struct ghl_request req = {.method = "GET",
				  .path = "/locations/search",
				  .query = "companyId=co-inproc",
				  .token = first,
				  .resource = "co-inproc"};
	struct call call = {0};
	ghl_request_send_auth(s1.app.ghl, &req, &hooks, on_call, &call);
	run_until(base, &call.done, 15000);
	ck_assert_msg(call.outcome == GHL_OK, "%d %s", call.status, call.message);
	free(call.message);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), 1);
	char *second = stored_access(c);
	ck_assert_str_ne(second, first);
	ck_assert_int_eq(hghl_search(&sim, second, "co-inproc"), 200);

	/* two stores (two processes) refresh the same stale token at once: one refresh */
	struct got g1 = {0}, g2 = {0};
	agency_tokens_refresh(s1.t, id, second, on_got, &g1);
	agency_tokens_refresh(s2.t, id, second, on_got, &g2);
	run_until(base, &g1.done, 20000);
	run_until(base, &g2.done, 20000);
	ck_assert_msg(g1.st == AGENCY_TOKEN_OK && g2.st == AGENCY_TOKEN_OK, "%s / %s", g1.why,
		      g2.why);
	ck_assert_str_eq(g1.token, g2.token);
	ck_assert_str_ne(g1.token, second);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), 2);
	ck_assert_int_eq(hsim_stat(&sim, "invalid_grant"), 0);
	char *third = stored_access(c);
	ck_assert_str_eq(third, g1.token);
	got_free(&g1);
	got_free(&g2);

	/* get on an expiring token refreshes it first */
	PQclear(tl_sql(c, "UPDATE agencies SET token_expires_at = LOCALTIMESTAMP"));
	agency_tokens_get(s2.t, id, on_got, &g);
	run_until(base, &g.done, 15000);
	ck_assert_msg(g.st == AGENCY_TOKEN_OK, "%s", g.why);
	ck_assert_str_ne(g.token, third);
	got_free(&g);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), 3);
	char *v = tl_sql_value(c, "SELECT token_expires_at > LOCALTIMESTAMP + interval '1 hour'"
				  " FROM agencies");
	ck_assert_str_eq(v, "t");
	free(v);

	/* GHL refuses the refresh: the agency needs reconnection, for good */
	json_free(hsim_admin(&sim, "POST", "expire-tokens",
			     "{\"companyId\":\"co-inproc\",\"refresh\":true}"));
	char *fourth = stored_access(c);
	req.token = fourth;
	memset(&call, 0, sizeof(call));
	ghl_request_send_auth(s1.app.ghl, &req, &hooks, on_call, &call);
	run_until(base, &call.done, 15000);
	ck_assert_msg(call.outcome == GHL_AUTH, "%d %s", call.status, call.message);
	free(call.message);
	ck_assert_int_eq(hsim_stat(&sim, "invalid_grant"), 1);
	v = tl_sql_value(c, "SELECT needs_reconnect || ' ' || reconnect_reason FROM agencies");
	ck_assert_msg(str_has_prefix(v, "true ") && strstr(v, "invalid_grant") &&
			      strstr(v, "/oauth/connect"),
		      "%s", v);
	free(v);
	agency_tokens_get(s2.t, id, on_got, &g);
	run_until(base, &g.done, 10000);
	ck_assert_int_eq(g.st, AGENCY_TOKEN_RECONNECT);
	ck_assert_msg(str_has_prefix(g.why, AGENCY_TOKENS_RECONNECT_PREFIX) &&
			      strstr(g.why, "invalid_grant"),
		      "%s", g.why);
	got_free(&g);
	agency_tokens_refresh(s1.t, id, fourth, on_got, &g);
	run_until(base, &g.done, 10000);
	ck_assert_int_eq(g.st, AGENCY_TOKEN_RECONNECT);
	got_free(&g);
	ck_assert_int_eq(hsim_stat(&sim, "invalid_grant"), 1); /* not tried again */

	/* unknown agency */
	agency_tokens_get(s1.t, "00000000-0000-4000-8000-000000000000", on_got, &g);
	run_until(base, &g.done, 10000);
	ck_assert_int_eq(g.st, AGENCY_TOKEN_NOT_FOUND);
	got_free(&g);

	store_free(&s1);
	store_free(&s2);
	event_base_free(base);
	free(first);
	free(second);
	free(third);
	free(fourth);
	free(id);
	PQfinish(c);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(sweep_marks_refused_agency_and_stops)
{
	struct hsim sim;
	const char *flags[] = {"--company-id", "co-refused", NULL};
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("tokens_refused");
	const char *env[] = {"GHL_AGENT_TOKEN_REFRESH_INTERVAL=100ms", NULL};
	struct hagent a;
	hagent_start(&a, dsn, &sim, env);
	struct hresp r;
	char *cb = hconnect(&a, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(cb);
	/* the grant is revoked at GHL, and the token falls due */
	json_free(hsim_admin(&sim, "POST", "expire-tokens",
			     "{\"companyId\":\"co-refused\",\"refresh\":true}"));
	PGconn *c = tl_connect(dsn);
	PQclear(tl_sql(c, "UPDATE agencies SET token_expires_at = LOCALTIMESTAMP"));
	ck_assert_msg(tl_wait_file_contains(a.log, "agency needs reconnection", 10000),
		      "no reconnection warning in the log");
	usleep(500000); /* five more sweep intervals */
	ck_assert_int_eq(hsim_stat(&sim, "invalid_grant"), 1);
	char *v = tl_sql_value(c, "SELECT needs_reconnect FROM agencies");
	ck_assert_str_eq(v, "t");
	free(v);
	/* reconnecting clears it */
	cb = hconnect(&a, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(cb);
	v = tl_sql_value(c, "SELECT needs_reconnect || ' ' || (reconnect_reason IS NULL)"
			    " FROM agencies");
	ck_assert_str_eq(v, "false true");
	free(v);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	PQfinish(c);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("token_refresh");
	TCase *t = tcase_create("token_refresh");
	tcase_set_timeout(t, 180);
	tcase_add_test(t, in_process_get_401_single_flight_and_refusal);
	tcase_add_test(t, sweep_marks_refused_agency_and_stops);
	tcase_add_test(t, two_processes_sweep_without_invalid_grant);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
