/* economy_harness.h — the GHL call economy scene (issue 15 item 1), shared by
 * test_economy.c (asserts) and tests/bench/bench_economy.c (prints): one
 * agency connected through the real OAuth flow to a ghl-sim, N jobs of the
 * default pipeline with a snapshot, and the calls counted from the
 * simulator's per-token request log (GET /_sim/calls), by bucket.
 * Header-only (static functions) on top of ghl_harness.h. */
#ifndef ECONOMY_HARNESS_H
#define ECONOMY_HARNESS_H

#include "ghl_harness.h"

struct econ {
	struct hsim sim;
	struct hagent agent;
	char *dsn;
	PGconn *db;
	char *agency;	/* agencies.id */
	char *company;	/* its GHL company id */
	char *snapshot; /* snapshots.id */
	int batch;	/* jobs inserted so far (names stay unique) */
};

/* A fresh database, ghl-sim with sim_flags, the agent (extra env), one agency
 * (max_concurrent_jobs as given, the default pipeline) with snap-dental-001. */
H_UNUSED static void econ_start(struct econ *e, const char *name, const char *const *sim_flags,
				const char *const *extra, int max_concurrent)
{
	memset(e, 0, sizeof(*e));
	e->dsn = tl_create_migrated_db(name);
	e->db = tl_connect(e->dsn);
	hsim_start(&e->sim, sim_flags);
	hagent_start(&e->agent, e->dsn, &e->sim, extra);
	e->company = xasprintf("econ-co-%d", (int)getpid());
	e->agency = hconnect_agency(&e->agent, e->db, e->company);
	tl_execf(e->db,
		 "UPDATE agencies SET settings_json = '{\"max_concurrent_jobs\": %d}' "
		 "WHERE id = '%s'",
		 max_concurrent, e->agency);
	e->snapshot = tl_sqlf(e->db,
			      "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, "
			      "niche) VALUES ('%s', 'snap-dental-001', 'Dental Practice', "
			      "'Dental') RETURNING id",
			      e->agency);
}

H_UNUSED static void econ_stop(struct econ *e)
{
	hagent_stop(&e->agent);
	unlink(e->agent.log);
	hsim_stop(&e->sim);
	PQfinish(e->db);
	tl_drop_db(e->dsn);
	free(e->dsn);
	free(e->agency);
	free(e->company);
	free(e->snapshot);
}

/* The last seq of the simulator's request log (0 when empty). */
H_UNUSED static long long econ_log_seq(struct econ *e)
{
	struct json *j = hsim_admin(&e->sim, "GET", "calls", NULL);
	struct json *calls = json_get(j, "calls");
	int64_t seq = 0;
	size_t n = json_len(calls);
	if (n)
		json_get_int(json_at(calls, n - 1), "seq", &seq);
	json_free(j);
	return (long long)seq;
}

/* Insert n jobs of the default pipeline with the snapshot, all in one
 * statement; they get distinct names and emails across calls. */
H_UNUSED static void econ_insert(struct econ *e, int n)
{
	int from = e->batch + 1;
	e->batch += n;
	tl_execf(e->db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id) SELECT "
		 "'%s', jsonb_build_object('name', 'Econ Client ' || g, 'email', 'owner' || g || "
		 "'@econ.example', 'first_name', 'Ada', 'last_name', 'Lovelace', 'phone', "
		 "'+15550100' || g, 'custom_values', jsonb_build_object('welcome', 'Hi'), 'tags', "
		 "jsonb_build_array('econ')), '%s' FROM generate_series(%d, %d) g",
		 e->agency, e->snapshot, from, e->batch);
}

/* Wait until no job is PENDING or IN_PROGRESS (timeout: fail with the log). */
H_UNUSED static void econ_wait(struct econ *e, int timeout_s)
{
	for (int i = 0; i < timeout_s * 10; i++) {
		if (tl_sqlf_n(e->db, "SELECT count(*) FROM provisioning_jobs WHERE status NOT IN "
				     "('COMPLETED', 'FAILED')") == 0)
			return;
		usleep(100000);
	}
	char *states = tl_sqlf(e->db, "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT "
				      "status, count(*) n FROM provisioning_jobs GROUP BY 1) s");
	ck_abort_msg("jobs did not finish in %d s (%s); agent log tail:\n%s", timeout_s, states,
		     tl_log_tail(e->agent.log, 3000));
}

/* What the request log says about the calls after seq `since`. */
struct econ_count {
	long long agency, location; /* calls counted in the company's / locations' buckets */
	long long limited;	    /* 429s (any bucket) */
	struct json *by_route;	    /* {"GET /snapshots/ agency": n, ...} */
};

H_UNUSED static void econ_count(struct econ *e, long long since, struct econ_count *c)
{
	char *what = xasprintf("calls?since=%lld", since);
	struct json *j = hsim_admin(&e->sim, "GET", what, NULL);
	free(what);
	memset(c, 0, sizeof(*c));
	c->by_route = json_new_object();
	struct json *calls = json_get(j, "calls");
	for (size_t i = 0; i < json_len(calls); i++) {
		struct json *k = json_at(calls, i);
		int64_t status = 0;
		json_get_int(k, "status", &status);
		if (status == 429) {
			c->limited++;
			continue;
		}
		int agency = str_eq(json_get_str(k, "tokenClass"), "Company");
		if (agency)
			c->agency++;
		else
			c->location++;
		char *key = xasprintf("%s %s %s", json_get_str(k, "method"),
				      json_get_str(k, "route"), agency ? "agency" : "location");
		int64_t n = 0;
		json_get_int(c->by_route, key, &n);
		json_object_set_take(c->by_route, key, json_new_int(n + 1));
		free(key);
	}
	json_free(j);
}

H_UNUSED static void econ_count_free(struct econ_count *c)
{
	json_free(c->by_route);
	c->by_route = NULL;
}

/* The per-job call list: one line per "METHOD route bucket" with calls per job. */
H_UNUSED static void econ_print(FILE *f, const struct econ_count *c, int jobs)
{
	fprintf(f, "  %-7s %-62s %-9s %s\n", "method", "path", "bucket", "calls/job");
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < json_len(c->by_route); i++) {
			const char *key = c->by_route->u.obj.keys[i];
			int agency = strstr(key, " agency") != NULL;
			if (agency != (pass == 0))
				continue;
			char method[16], path[200], bucket[16];
			if (sscanf(key, "%15s %199s %15s", method, path, bucket) != 3)
				continue;
			fprintf(f, "  %-7s %-62s %-9s %.2f\n", method, path, bucket,
				(double)c->by_route->u.obj.vals[i]->u.num.i / jobs);
		}
	}
	fprintf(f,
		"  agency-bucket calls per job: %.2f; location-bucket calls per job: %.2f; "
		"429s: %lld\n",
		(double)c->agency / jobs, (double)c->location / jobs, c->limited);
}

#endif
