/* bench_job_search.c — searching jobs (GET /api/v1/jobs?q=…, issue 14 item
 * 5) with 1,000,000 jobs in the table, against a `ghl-agent serve` with
 * roles=api and a real PostgreSQL: each kind of search (a part of a name, of
 * an email, a job id, a location id, a word every job has, nothing), run
 * sequentially as the ADMIN (all agencies) and as an API key (one of 10),
 * printed as p50 and max of the request time with the total the API answered;
 * then the plan of a name search (EXPLAIN ANALYZE of the query shape
 * api_jobs.c builds). Figures are printed, never asserted.
 * Run by scripts/bench. BENCH_SMOKE=1: 2,000 jobs and 3 requests per row. */
#include "ghl_harness.h"

#define AGENCIES 10

static char *dsn;
static struct hagent ag;
static int njobs = 1000000;
static int reps = 20;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* reps GETs of path as authz: p50 and max in ms, and the answer's total. */
static void measure(const char *label, const char *authz, const char *path)
{
	char *url = xasprintf("%s%s", ag.base, path);
	const char *h[] = {authz, NULL};
	double *ms = xcalloc((size_t)reps, sizeof(double));
	char total[48] = "?";
	for (int i = 0; i < reps; i++) {
		char *out = NULL;
		int64_t t0 = now_monotonic_ms();
		struct tl_resp r;
		tl_request(&r, "GET", url, h, NULL, 0);
		ms[i] = (double)(now_monotonic_ms() - t0);
		if (r.status != 200)
			ck_abort_msg("GET %s: %ld %s", path, r.status, r.body);
		struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
		snprintf(total, sizeof(total), "%lld%s", (long long)json_get(j, "total")->u.num.i,
			 json_get_bool(j, "total_exact") == 1 ? "" : "+ (capped)");
		json_free(j);
		tl_resp_free(&r);
		free(out);
	}
	qsort(ms, (size_t)reps, sizeof(double), cmp_double);
	printf("%-44s | p50 %6.1f ms | max %6.1f ms | total %s\n", label, ms[reps / 2],
	       ms[reps - 1], total);
	free(ms);
	free(url);
}

static void run_benchmarks(void)
{
	if (getenv("BENCH_SMOKE") && atoi(getenv("BENCH_SMOKE")) > 0) {
		njobs = 2000;
		reps = 3;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("bench_search");
	PGconn *db = tl_connect(dsn);
	tl_execf(db,
		 "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		 " oauth_refresh_token_encrypted, token_expires_at) SELECT 'Bench ' || i,"
		 " 'bench-co-' || i, 'x', 'y', now() + interval '1 day'"
		 " FROM generate_series(1, %d) i",
		 AGENCIES);
	/* names from 20 × 37 words and the row number; a location on every
	 * third job; one rare client */
	int64_t t0 = now_monotonic_ms();
	/* loaded without the trigram index, which is then built (as a restore would) */
	tl_execf(db, "DROP INDEX idx_provisioning_jobs_search_trgm");
	tl_execf(
		db,
		"WITH a AS (SELECT array_agg(id ORDER BY name) AS ids FROM agencies),"
		" w AS (SELECT ARRAY['acme','bright','clear','delta','eagle','fresh','green',"
		"  'harbor','ivory','jade','kind','lunar','maple','noble','ocean','prime','quest',"
		"  'river','solar','tidal'] AS a, ARRAY['dental','bakery','gym','diner','clinic',"
		"  'salon','garage','studio','florist','realty','law','spa','vet','cafe','optics',"
		"  'yoga','print','tailor','pharmacy','books','hotel','travel','roofing','pools',"
		"  'movers','cinema','daycare','farm','bistro','tattoo','surf','golf','music',"
		"  'art','boats','tiles','pets'] AS b)"
		" INSERT INTO provisioning_jobs (agency_id, client_data_json, status, location_id,"
		"  created_at)"
		" SELECT a.ids[1 + i %% %d], jsonb_build_object('name', initcap(w.a[1 + i %% 20])"
		"  || ' ' || initcap(w.b[1 + (i / 20) %% 37]) || ' ' || i, 'email', 'owner' || i"
		"  || '@' || w.a[1 + i %% 20] || '-' || w.b[1 + (i / 20) %% 37] || '.example',"
		"  'first_name', 'First' || (i %% 997), 'last_name', 'Last' || (i %% 991)),"
		"  (ARRAY['COMPLETED','COMPLETED','COMPLETED','FAILED','PENDING'])[1 + i %% 5]"
		"  ::provisioning_job_status, CASE WHEN i %% 3 = 0 THEN 'Loc' || substr(md5(i::text),"
		"  1, 17) END, LOCALTIMESTAMP - i * interval '1 second'"
		" FROM generate_series(1, %d) i, a, w",
		AGENCIES, njobs);
	tl_execf(db,
		 "UPDATE provisioning_jobs SET client_data_json = jsonb_build_object('name',"
		 " 'Zebrafish Aquatics', 'email', 'hello@zebrafish.example') WHERE id = (SELECT id"
		 " FROM provisioning_jobs ORDER BY created_at LIMIT 1)");
	int64_t t1 = now_monotonic_ms();
	tl_execf(db, "CREATE INDEX idx_provisioning_jobs_search_trgm ON provisioning_jobs USING gin"
		     " (ghl_job_search_text(client_data_json) gin_trgm_ops)");
	tl_execf(db, "VACUUM ANALYZE provisioning_jobs");
	printf("loaded %d jobs in %.1f s, then the trigram index built in %.1f s\n", njobs,
	       (double)(t1 - t0) / 1000.0, (double)(now_monotonic_ms() - t1) / 1000.0);
	char *job_id = tl_sql_value(db, "SELECT id FROM provisioning_jobs ORDER BY created_at"
					" OFFSET 1234 LIMIT 1");
	char *loc = tl_sql_value(db, "SELECT location_id FROM provisioning_jobs WHERE location_id"
				     " IS NOT NULL ORDER BY created_at LIMIT 1 OFFSET 999");
	char *agency = tl_sql_value(db, "SELECT id FROM agencies ORDER BY name LIMIT 1");

	const char *extra[] = {"GHL_AGENT_ROLES=api", "GHL_AGENT_LOG_LEVEL=warn",
			       "GHL_AGENT_RATE_LIMIT_READS_PER_MINUTE=0", NULL};
	hagent_start(&ag, dsn, NULL, extra);
	char *admin = hagent_admin_header(&ag);
	char *kpath = xasprintf("%s/api/v1/agencies/%s/api-keys", ag.base, agency);
	const char *h[] = {admin, "Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http("POST", kpath, h, "{\"name\":\"bench\"}", &out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	if (st != 201 || !json_get_str(j, "key"))
		ck_abort_msg("cannot create an API key: %ld %s", st, out);
	char *key = xasprintf("Authorization: Bearer %s", json_get_str(j, "key"));
	json_free(j);
	free(out);
	free(kpath);

	printf("\nGET /api/v1/jobs?q=… with %d jobs, %d sequential requests each, limit 25\n",
	       njobs, reps);
	char *by_id = xasprintf("/api/v1/jobs?include_total=true&limit=25&q=%s", job_id);
	char *by_loc = xasprintf("/api/v1/jobs?include_total=true&limit=25&q=%s", loc);
	const char *rows[][2] = {
		{"rare name (q=zebrafish)", "/api/v1/jobs?include_total=true&limit=25&q=zebrafish"},
		{"name part (q=harbor%20florist%2012)",
		 "/api/v1/jobs?include_total=true&limit=25&q=harbor%20florist%2012"},
		{"email part (q=owner4242@)",
		 "/api/v1/jobs?include_total=true&limit=25&q=owner4242@"},
		{"job id (exact)", by_id},
		{"location id (exact)", by_loc},
		{"common word (q=dental: 1 in 37 jobs)",
		 "/api/v1/jobs?include_total=true&limit=25&q=dental"},
		{"everywhere (q=example)", "/api/v1/jobs?include_total=true&limit=25&q=example"},
		{"no match (q=qqqzzz)", "/api/v1/jobs?include_total=true&limit=25&q=qqqzzz"},
		{"no q (the total of all)", "/api/v1/jobs?include_total=true&limit=25"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *label = xasprintf("ADMIN  %s", rows[i][0]);
		measure(label, admin, rows[i][1]);
		free(label);
		label = xasprintf("APIkey %s", rows[i][0]);
		measure(label, key, rows[i][1]);
		free(label);
	}
	/* the plan of a name search as the ADMIN sees it (api_jobs.c's shape) */
	PGresult *res = tl_sql(
		db, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) WITH total AS (SELECT count(*) AS n FROM"
		    " (SELECT 1 FROM provisioning_jobs j WHERE true AND (j.location_id ="
		    " 'harbor florist 12' OR ghl_job_search_text(j.client_data_json) LIKE"
		    " lower('%harbor florist 12%')) LIMIT 10001) c), page AS (SELECT j.id,"
		    " j.created_at FROM provisioning_jobs j WHERE true AND (j.location_id ="
		    " 'harbor florist 12' OR ghl_job_search_text(j.client_data_json) LIKE"
		    " lower('%harbor florist 12%')) ORDER BY j.created_at DESC, j.id DESC LIMIT 26)"
		    " SELECT j.id, total.n FROM total LEFT JOIN (page p JOIN provisioning_jobs j ON"
		    " j.id = p.id) ON true ORDER BY p.created_at DESC, p.id DESC");
	printf("\nEXPLAIN ANALYZE of q=harbor florist 12 (ADMIN):\n");
	for (int i = 0; i < PQntuples(res); i++)
		printf("  %s\n", PQgetvalue(res, i, 0));
	PQclear(res);
	free(by_id);
	free(by_loc);
	free(key);
	free(admin);
	free(job_id);
	free(loc);
	free(agency);
	PQfinish(db);
	hagent_stop(&ag);
	unlink(ag.log);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

int main(void)
{
	return tl_run_bench("bench_job_search", run_benchmarks);
}
