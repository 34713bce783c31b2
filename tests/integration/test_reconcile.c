/* test_reconcile.c — reconciliation (issue 13 item 4): COMPLETED jobs checked
 * against ghl-sim. A location deleted, a snapshot push failed and a user
 * removed (through ghl-sim's /_sim/ admin endpoints) are found by
 * `ghl-agent reconcile` and by the daemon's periodic sweep, recorded in
 * job_drift, served by GET /api/v1/reports/drift and the job's detail, and
 * resolved when a later sweep finds them fixed; GHL's UNINSTALL webhook of a
 * location records drift between sweeps and INSTALL / LocationUpdate resolve
 * it; and a reconciliation request waits behind job requests queued in the
 * same rate-limit bucket. */
#include "economy_harness.h"

#include <event2/event.h>

#include "crypto.h"
#include "ghl_client.h"
#include "webdriver.h"

static char *ed25519_pub; /* ghl-sim's webhook public key for --seed 42 (PEM) */

static void load_sim_key(void)
{
	char *argv[] = {(char *)tl_env("GHL_SIM_BIN"), (char *)"--seed", (char *)"42",
			(char *)"--print-webhook-key", NULL};
	char *out = NULL;
	ck_assert_msg(tl_run(argv, NULL, &out) == 0, "%s", out);
	ed25519_pub = out;
}

/* `ghl-agent reconcile ARGS… --json` against e's database and simulator;
 * returns the exit status, *out the parsed answer. */
static int run_cli(struct econ *e, const char *agency, struct json **out)
{
	char *env[] = {xasprintf("DATABASE_URL=%s", e->dsn),
		       xasprintf("GHL_AGENT_GHL_API_BASE=%s", e->sim.base),
		       xstrdup("GHL_AGENT_GHL_CLIENT_ID=" H_CLIENT_ID),
		       xstrdup("GHL_AGENT_GHL_CLIENT_SECRET=" H_CLIENT_SECRET),
		       xstrdup("GHL_AGENT_TOKEN_KEYS=" H_KEY7),
		       xstrdup("GHL_AGENT_OAUTH_STATE_SECRET=" H_STATE_SECRET),
		       xstrdup("GHL_AGENT_LOG_LEVEL=warn"),
		       NULL};
	char *argv[6];
	int n = 0;
	argv[n++] = (char *)tl_env("GHL_AGENT_BIN");
	argv[n++] = (char *)"reconcile";
	if (agency) {
		argv[n++] = (char *)"--agency";
		argv[n++] = (char *)agency;
	}
	argv[n++] = (char *)"--json";
	argv[n] = NULL;
	char *text = NULL;
	int rc = tl_run(argv, env, &text);
	for (int i = 0; env[i]; i++)
		free(env[i]);
	/* the JSON is the last line (log lines may come first on stderr) */
	const char *line = strrchr(text, '{') ? strstr(text, "{\"jobs\"") : NULL;
	*out = line ? json_parse(line, strcspn(line, "\n"), JSON_DEFAULT_MAX_DEPTH, NULL) : NULL;
	ck_assert_msg(*out, "reconcile answered %d: %s", rc, text);
	free(text);
	return rc;
}

static long long jint(const struct json *j, const char *key)
{
	int64_t v = -1;
	ck_assert_msg(json_get_int(j, key, &v) == 0, "no integer %s", key);
	return (long long)v;
}

/* The kind of open drift the JSON list `open` has for job, or NULL. */
static const char *open_kind(const struct json *open, const char *job)
{
	for (size_t i = 0; i < json_len(open); i++)
		if (str_eq(json_get_str(json_at(open, i), "job_id"), job))
			return json_get_str(json_at(open, i), "kind");
	return NULL;
}

static long long open_n(struct econ *e, const char *job, const char *kind)
{
	return tl_sqlf_n(e->db,
			 "SELECT count(*) FROM job_drift WHERE job_id = '%s' AND kind = '%s'"
			 " AND resolved_at IS NULL",
			 job, kind);
}

static struct json *api_get(struct econ *e, const char *path)
{
	char *url = hagent_url(&e->agent, path);
	char *auth = hagent_admin_header(&e->agent);
	const char *h[] = {auth, NULL};
	char *out = NULL;
	long st = tl_http("GET", url, h, NULL, &out);
	ck_assert_msg(st == 200, "GET %s: %ld %s", path, st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "not JSON: %s", out);
	free(out);
	free(auth);
	free(url);
	return j;
}

static void sim_do(struct econ *e, const char *method, const char *what, const char *body)
{
	json_free(hsim_admin(&e->sim, method, what, body));
}

/* Ask ghl-sim to deliver a signed webhook to the agent. */
static void sim_webhook(struct econ *e, const char *fields)
{
	char *body = xasprintf("{\"url\":\"%s/webhooks/ghl\",%s}", e->agent.base, fields);
	struct json *j = hsim_admin(&e->sim, "POST", "webhooks/send", body);
	free(body);
	int64_t st = 0;
	json_get_int(j, "status", &st);
	ck_assert_msg(st == 200, "webhook answered %lld: %s", (long long)st,
		      json_get_str(j, "response"));
	json_free(j);
}

START_TEST(drift_found_reported_and_cleared)
{
	load_sim_key();
	char *keyenv = xasprintf("GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY=%s", ed25519_pub);
	const char *env[] = {"GHL_AGENT_RECONCILE_INTERVAL=0", "GHL_AGENT_POLL_INTERVAL=100ms",
			     "GHL_AGENT_LOG_LEVEL=info", keyenv, NULL};
	const char *flags[] = {"--seed", "42", "--snapshot-delay-ms", "200", NULL};
	struct econ e;
	econ_start(&e, "test_reconcile", flags, env, 10);
	econ_insert(&e, 3);
	econ_wait(&e, 60);
	ck_assert_int_eq(tl_sqlf_n(e.db, "SELECT count(*) FROM provisioning_jobs WHERE status = "
					 "'COMPLETED'"),
			 3);
	char *job[3], *loc[3], *user[3];
	for (int i = 0; i < 3; i++) {
		job[i] = tl_sqlf(e.db,
				 "SELECT id FROM provisioning_jobs ORDER BY created_at, id"
				 " OFFSET %d LIMIT 1",
				 i);
		loc[i] = tl_sqlf(e.db, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'",
				 job[i]);
		user[i] = tl_sqlf(e.db,
				  "SELECT context_json->'outputs'->>'user_id' FROM "
				  "provisioning_jobs WHERE id = '%s'",
				  job[i]);
		ck_assert_msg(*loc[i] && *user[i], "job %d: location %s user %s", i, loc[i],
			      user[i]);
	}

	/* nothing drifted yet */
	struct json *r;
	ck_assert_int_eq(run_cli(&e, NULL, &r), 0);
	ck_assert_int_eq(jint(r, "jobs"), 3);
	ck_assert_int_eq(jint(r, "unchecked"), 0);
	ck_assert_int_eq(json_len(json_get(r, "open")), 0);
	json_free(r);

	/* a subscription to job.drift (its deliveries are not the point here) */
	tl_execf(e.db,
		 "INSERT INTO event_subscriptions (agency_id, url, event_types, secret_enc)"
		 " VALUES ('%s', 'https://127.0.0.1:9/hook', '{job.drift}', 'x')",
		 e.agency);

	/* in GHL: job 0's location deleted, job 1's push failed, job 2's user removed */
	char *w = xasprintf("locations/%s", loc[0]);
	sim_do(&e, "DELETE", w, NULL);
	free(w);
	w = xasprintf("locations/%s/push", loc[1]);
	sim_do(&e, "POST", w, "{\"failed\": true}");
	free(w);
	w = xasprintf("users/%s", user[2]);
	sim_do(&e, "DELETE", w, NULL);
	free(w);

	ck_assert_int_eq(run_cli(&e, NULL, &r), 3);
	ck_assert_int_eq(jint(r, "opened"), 3);
	ck_assert_int_eq(jint(r, "unchecked"), 0);
	struct json *open = json_get(r, "open");
	ck_assert_int_eq(json_len(open), 3);
	ck_assert_str_eq(open_kind(open, job[0]), "location_missing");
	ck_assert_str_eq(open_kind(open, job[1]), "snapshot_failed");
	ck_assert_str_eq(open_kind(open, job[2]), "user_missing");
	json_free(r);
	/* one job.drift event per drift opened */
	ck_assert_int_eq(tl_sqlf_n(e.db, "SELECT count(*) FROM event_deliveries WHERE event_type ="
					 " 'job.drift'"),
			 3);
	char *ev = tl_sqlf(e.db,
			   "SELECT (payload::jsonb->'data'->'drift'->>'kind') || ' ' ||"
			   " (payload::jsonb->'data'->'job'->>'location_id') FROM event_deliveries"
			   " WHERE job_id = '%s'",
			   job[0]);
	char *want = xasprintf("location_missing %s", loc[0]);
	ck_assert_str_eq(ev, want);
	free(want);
	free(ev);
	/* a second run sees the same drift: nothing new, nothing resolved; --agency scopes */
	ck_assert_int_eq(run_cli(&e, e.agency, &r), 3);
	ck_assert_int_eq(jint(r, "opened"), 0);
	ck_assert_int_eq(jint(r, "resolved"), 0);
	ck_assert_int_eq(json_len(json_get(r, "open")), 3);
	json_free(r);
	ck_assert_int_eq(tl_sqlf_n(e.db, "SELECT count(*) FROM job_drift"), 3);

	/* the report and the job's detail */
	struct json *page = api_get(&e, "/api/v1/reports/drift");
	ck_assert_int_eq(json_len(json_get(page, "items")), 3);
	json_free(page);
	page = api_get(&e, "/api/v1/reports/drift?kind=location_missing");
	struct json *items = json_get(page, "items");
	ck_assert_int_eq(json_len(items), 1);
	ck_assert_str_eq(json_get_str(json_at(items, 0), "job_id"), job[0]);
	ck_assert_str_eq(json_get_str(json_at(items, 0), "location_id"), loc[0]);
	json_free(page);
	char *path = xasprintf("/api/v1/jobs/%s", job[0]);
	struct json *detail = api_get(&e, path);
	free(path);
	struct json *drift = json_get(detail, "drift");
	ck_assert_int_eq(json_len(drift), 1);
	ck_assert_str_eq(json_get_str(json_at(drift, 0), "kind"), "location_missing");
	json_free(detail);

	/* the dashboard's Drift page lists them, each linking to its job */
	wd_require_browser();
	struct wd wd;
	memset(&wd, 0, sizeof(wd));
	wd_start(&wd);
	wd_login(&wd, e.agent.base, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	char *url = xasprintf("%s/#/drift", e.agent.base);
	wd_go(&wd, url);
	free(url);
	wd_wait_text(&wd, "#drift-list", "location missing", 10000);
	wd_wait_text(&wd, "#drift-list", "user missing", 2000);
	char *css = xasprintf("#drift-list a[href='#/jobs/%s']", job[0]);
	char *link = wd_find(&wd, css);
	ck_assert_msg(link, "no link to job %s on the Drift page", job[0]);
	free(link);
	free(css);
	wd_screenshots(&wd, "drift");
	wd_assert_no_console_errors(&wd);
	wd_stop(&wd);

	/* fixed in GHL: the next sweep resolves it */
	w = xasprintf("locations/%s/push", loc[1]);
	sim_do(&e, "POST", w, "{\"failed\": false}");
	free(w);
	ck_assert_int_eq(run_cli(&e, NULL, &r), 3);
	ck_assert_int_eq(jint(r, "resolved"), 1);
	ck_assert_int_eq(json_len(json_get(r, "open")), 2);
	json_free(r);
	ck_assert_int_eq(open_n(&e, job[1], "snapshot_failed"), 0);
	page = api_get(&e, "/api/v1/reports/drift?open=false");
	items = json_get(page, "items");
	ck_assert_int_eq(json_len(items), 1);
	ck_assert_str_eq(json_get_str(json_at(items, 0), "kind"), "snapshot_failed");
	json_free(page);

	/* webhooks between sweeps: UNINSTALL of job 1's location records drift,
	 * INSTALL resolves it; LocationUpdate resolves location_missing */
	char *f = xasprintf("\"type\":\"UNINSTALL\",\"companyId\":\"%s\",\"locationId\":\"%s\"",
			    e.company, loc[1]);
	sim_webhook(&e, f);
	free(f);
	ck_assert_int_eq(open_n(&e, job[1], "app_uninstalled"), 1);
	f = xasprintf("\"type\":\"INSTALL\",\"companyId\":\"%s\",\"locationId\":\"%s\"", e.company,
		      loc[1]);
	sim_webhook(&e, f);
	free(f);
	ck_assert_int_eq(open_n(&e, job[1], "app_uninstalled"), 0);
	tl_execf(e.db,
		 "INSERT INTO job_drift (job_id, agency_id, kind) VALUES ('%s', '%s', "
		 "'location_missing')",
		 job[1], e.agency);
	f = xasprintf("\"type\":\"LocationUpdate\",\"locationId\":\"%s\"", loc[1]);
	sim_webhook(&e, f);
	free(f);
	ck_assert_int_eq(open_n(&e, job[1], "location_missing"), 0);

	/* the periodic sweep: job 1's push fails again and a daemon with a short
	 * reconcile_interval finds it by itself */
	w = xasprintf("locations/%s/push", loc[1]);
	sim_do(&e, "POST", w, "{\"failed\": true}");
	free(w);
	hagent_stop(&e.agent);
	unlink(e.agent.log);
	const char *env2[] = {"GHL_AGENT_RECONCILE_INTERVAL=300ms", "GHL_AGENT_LOG_LEVEL=info",
			      keyenv, NULL};
	hagent_start(&e.agent, e.dsn, &e.sim, env2);
	char *q = xasprintf("SELECT count(*) = 1 FROM job_drift WHERE job_id = '%s' AND kind = "
			    "'snapshot_failed' AND resolved_at IS NULL",
			    job[1]);
	ck_assert_msg(tl_sql_wait_true(e.db, q, 20000), "the sweep did not find it; log:\n%s",
		      tl_log_tail(e.agent.log, 3000));
	free(q);
	ck_assert_msg(tl_wait_file_contains(e.agent.log, "reconcile: sweep done", 5000),
		      "no sweep line in the log");
	/* still open: the location and the user */
	ck_assert_int_eq(open_n(&e, job[0], "location_missing"), 1);
	ck_assert_int_eq(open_n(&e, job[2], "user_missing"), 1);

	for (int i = 0; i < 3; i++) {
		free(job[i]);
		free(loc[i]);
		free(user[i]);
	}
	free(keyenv);
	free(ed25519_pub);
	econ_stop(&e);
}
END_TEST

/* ---- priority: reconciliation waits behind job requests ---- */

struct order {
	struct event_base *base;
	char seen[16];
	int n, want, bad;
};

struct tagged {
	struct order *o;
	char tag;
};

static void on_done(void *arg, const struct ghl_response *res)
{
	struct tagged *t = arg;
	if (res->status != 200)
		t->o->bad++;
	t->o->seen[t->o->n++] = t->tag;
	if (t->o->n == t->o->want)
		event_base_loopbreak(t->o->base);
}

/* The company's live access token, from ghl-sim's state. */
static char *company_token(struct econ *e)
{
	struct json *st = hsim_admin(&e->sim, "GET", "state", NULL);
	struct json *toks = json_get(st, "tokens");
	char *tok = NULL;
	for (size_t i = 0; i < json_len(toks) && !tok; i++) {
		struct json *t = json_at(toks, i);
		if (str_eq(json_get_str(t, "kind"), "access") &&
		    str_eq(json_get_str(t, "userType"), "Company") &&
		    str_eq(json_get_str(t, "companyId"), e->company) &&
		    json_get_bool(t, "expired") == 0 && json_get_bool(t, "revoked") == 0)
			tok = xstrdup(json_get_str(t, "token"));
	}
	json_free(st);
	ck_assert_msg(tok, "no live company token in ghl-sim");
	return tok;
}

START_TEST(reconcile_requests_yield_to_job_requests)
{
	struct econ e;
	econ_start(&e, "test_reconcile_prio", NULL, NULL, 10);
	char *token = company_token(&e);
	/* one request per 300 ms for every resource: the client's bucket holds
	 * the rest and lets them out one at a time, in its queue's order */
	sim_do(&e, "POST", "faults", "{\"rate_limit\": 1, \"rate_window_ms\": 300}");
	struct order o = {.base = event_base_new(), .want = 5};
	struct ghl_client_opts opts = {
		.api_base = e.sim.base, .initial_burst = 1, .max_attempts = 10};
	struct ghl_client *c = ghl_client_new(o.base, &opts, NULL);
	ck_assert_ptr_nonnull(c);
	char *q = xasprintf("companyId=%s&limit=1", e.company);
	/* A (a job's) first, then two reconciliation checks, then two more job
	 * requests: the job requests overtake the queued checks */
	const char tags[] = "ALLNN";
	struct tagged t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = (struct tagged){&o, tags[i]};
		struct ghl_request rq = {.method = "GET",
					 .path = "/locations/search",
					 .query = q,
					 .token = token,
					 .resource = e.company,
					 .low_priority = tags[i] == 'L'};
		ghl_request_send(c, &rq, on_done, &t[i]);
	}
	event_base_dispatch(o.base);
	ck_assert_int_eq(o.n, 5);
	ck_assert_int_eq(o.bad, 0);
	ck_assert_str_eq(o.seen, "ANNLL");
	ghl_client_free(c);
	event_base_free(o.base);
	free(q);
	secret_free(token);
	econ_stop(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("reconcile");
	TCase *tc = tcase_create("reconcile");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, drift_found_reported_and_cleared);
	tcase_add_test(tc, reconcile_requests_yield_to_job_requests);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
