/* test_lua_steps.c — Lua steps in a real `ghl-agent serve` against a real
 * PostgreSQL and ghl-sim: outputs flowing C → Lua → C, the shipped scripts in
 * a pipeline as GHL sees it, retryable vs permanent errors and limit
 * violations reaching the scheduler, 1,000 scripts waiting at once on a slow
 * GHL, reload on SIGHUP while a job is suspended in the old version, and
 * `ghl-agent step run`. */
#include <signal.h>
#include <stdarg.h>

#include "ghl_harness.h"

/* clang-format off */
#define CLIENT                                                                                  \
	"{\"name\":\"Acme Dental\",\"email\":\"owner@acme.example\",\"first_name\":\"Ada\","   \
	"\"last_name\":\"Lovelace\",\"phone\":\"+15555550100\",\"city\":\"Austin\","            \
	"\"country\":\"US\",\"tags\":[\"dental\"]}"
/* clang-format on */

struct world {
	char *dsn;
	PGconn *db;
	struct hsim sim;
	struct hagent agent;
	char company[64];
	char *agency;
	char steps[64]; /* step_dir */
};

static int company_seq;

#define q1(w, ...) tl_sqlf((w)->db, __VA_ARGS__)

static void write_step(struct world *w, const char *file, const char *src)
{
	char *path = xasprintf("%s/%s", w->steps, file);
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(src, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0); /* a reload never sees half a file */
	free(tmp);
	free(path);
}

/* Start sim (flags) and agent with step_dir = a fresh folder holding the
 * shipped scripts plus those the test writes before calling world_agent(). */
static void world_start(struct world *w, const char *const *sim_flags)
{
	memset(w, 0, sizeof(*w));
	w->dsn = tl_create_migrated_db("luasteps");
	w->db = tl_connect(w->dsn);
	hsim_start(&w->sim, sim_flags);
	snprintf(w->steps, sizeof(w->steps), "/tmp/lua-steps-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->steps));
	char *cmd = xasprintf("cp %s/steps/*.lua %s/", tl_env("GHL_SOURCE_DIR"), w->steps);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static void world_agent(struct world *w, const char *const *more_env)
{
	char *step_dir = xasprintf("GHL_AGENT_STEP_DIR=%s", w->steps);
	const char *env[16] = {"GHL_AGENT_RETRY_BASE=100ms", "GHL_AGENT_RETRY_MAX=200ms",
			       "GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_LOG_LEVEL=info",
			       step_dir};
	int n = 5;
	for (int i = 0; more_env && more_env[i] && n < 15; i++)
		env[n++] = more_env[i];
	env[n] = NULL;
	hagent_start(&w->agent, w->dsn, &w->sim, env);
	free(step_dir);
	snprintf(w->company, sizeof(w->company), "co-lua-%d-%d", (int)getpid(), ++company_seq);
	w->agency = hconnect_agency(&w->agent, w->db, w->company);
}

static void world_stop(struct world *w)
{
	int st = hagent_stop(&w->agent);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
	unlink(w->agent.log);
	hsim_stop(&w->sim);
	PQfinish(w->db);
	tl_drop_db(w->dsn);
	free(w->dsn);
	free(w->agency);
	char *cmd = xasprintf("rm -rf %s", w->steps);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static void set_pipeline(struct world *w, const char *settings)
{
	char *sql = xasprintf("UPDATE agencies SET settings_json = '%s' WHERE id = '%s'", settings,
			      w->agency);
	PQclear(tl_sql(w->db, sql));
	free(sql);
}

#define add_job(w, client, snapshot) hjob_add((w)->db, (w)->agency, client, snapshot)
#define wait_job(w, job, timeout_ms) hjob_wait((w)->db, job, timeout_ms, (w)->agent.log)
#define assert_completed(w, job) hjob_assert_completed((w)->db, job, (w)->agent.log)
#define output(w, job, step, key) hjob_output((w)->db, job, step, key)

static struct json *find_by(const struct json *arr, const char *key, const char *val)
{
	for (size_t i = 0; i < json_len(arr); i++)
		if (str_eq(json_get_str(json_at(arr, i), key), val))
			return json_at(arr, i);
	return NULL;
}

static void wait_log(struct world *w, const char *needle)
{
	ck_assert_msg(tl_wait_file_contains(w->agent.log, needle, 10000), "agent log lacks %s",
		      needle);
}

/* ---- C → Lua → C ---- */

START_TEST(outputs_flow_both_ways)
{
	struct world w;
	world_start(&w, NULL);
	/* reads a C step's output, creates the location itself, hands location_id on */
	write_step(&w, "make_location.lua",
		   "return {name = 'make_location', version = '1.0.0',\n"
		   "run = function(ctx)\n"
		   "  assert(ctx.outputs.noop == 'from-c', 'NOOP output not visible')\n"
		   "  local st, body = ghl.request{method = 'POST', path = '/locations/',\n"
		   "    json = {name = ctx.client.name, companyId = ctx.job.company_id,\n"
		   "            email = ctx.client.email}}\n"
		   "  if st ~= 201 and st ~= 200 then ghl.fail('creating the location') end\n"
		   "  local id = body.id or body.location.id\n"
		   "  log.info('created', id)\n"
		   "  ctx:set('location_id', id)\n"
		   "  ctx:set('seen_noop', ctx.outputs.noop)\n"
		   "end}\n");
	write_step(&w, "check_contact.lua",
		   "return {name = 'check_contact', version = '1.0.0',\n"
		   "run = function(ctx)\n"
		   "  ctx:set('contact_seen', ctx.outputs.contact_id ~= nil)\n"
		   "  ctx:set('same_location', ctx.outputs.location_id)\n"
		   "end}\n");
	world_agent(&w, NULL);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"NOOP\",\"config\":{\"output\":\"from-c\"}},"
			 "{\"step\":\"make_location\"},"
			 "{\"step\":\"CREATE_CONTACT\",\"config\":{\"tags\":[\"lua\"]}},"
			 "{\"step\":\"check_contact\"}]}");
	char *job = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job);
	char *loc = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_msg(*loc, "the Lua step's location_id was not stored on the job");
	char *seen = output(&w, job, "make_location", "seen_noop");
	ck_assert_str_eq(seen, "from-c");
	/* the C step used the Lua step's location */
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *l = find_by(json_get(state, "locations"), "id", loc);
	ck_assert_msg(l != NULL, "location %s not in the sim", loc);
	ck_assert_int_eq(json_len(json_get(l, "contacts")), 1);
	/* and the next Lua step read the C step's output */
	char *cs = output(&w, job, "check_contact", "contact_seen");
	ck_assert_str_eq(cs, "true");
	char *same = output(&w, job, "check_contact", "same_location");
	ck_assert_str_eq(same, loc);
	/* the script's log lands in the journal details */
	char *logd = q1(&w,
			"SELECT details_json->'log'->0->>'message' FROM provisioning_logs "
			"WHERE job_id = '%s' AND step = 'make_location' AND status = "
			"'COMPLETED'",
			job);
	ck_assert_msg(strstr(logd, "created") && strstr(logd, loc), "log: %s", logd);
	/* `ghl-agent plugins` lists the scripts */
	char *env_dir = xasprintf("GHL_AGENT_STEP_DIR=%s", w.steps);
	char *env[] = {env_dir, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"plugins", NULL};
	char *out;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	ck_assert_msg(strstr(out, "make_location") && strstr(out, "Lua") &&
			      strstr(out, "tag_new_client"),
		      "%s", out);
	free(out);
	free(env_dir);
	json_free(state);
	free(logd);
	free(same);
	free(cs);
	free(seen);
	free(loc);
	free(job);
	world_stop(&w);
}
END_TEST

/* ---- the shipped scripts ---- */

/* The README's "Write a Lua step" example, as printed there. */
static void write_readme_example(struct world *w)
{
	char *path = xasprintf("%s/README.md", tl_env("GHL_SOURCE_DIR"));
	char *readme = tl_read_file(path);
	const char *start = strstr(readme, "```lua\n-- location_tag");
	ck_assert_msg(start != NULL, "README has no location_tag example");
	start += 7;
	const char *end = strstr(start, "```");
	ck_assert_ptr_nonnull(end);
	char *src = xstrndup(start, (size_t)(end - start));
	write_step(w, "location_tag.lua", src);
	free(src);
	free(readme);
	free(path);
}

START_TEST(shipped_scripts_in_a_pipeline)
{
	struct world w;
	world_start(&w, NULL);
	write_readme_example(&w);
	world_agent(&w, NULL);
	set_pipeline(
		&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
		    "{\"step\":\"tag_new_client\",\"config\":{\"tags\":[\"onboarding\"]}},"
		    "{\"step\":\"custom_values_from_template\",\"config\":{\"values\":"
		    "{\"Welcome\":\"Hi {{client.first_name}} of {{client.name}} ({{client.fax}})\","
		    "\"City\":\"{{ client.city }}\"},\"missing\":\"n/a\"}},"
		    "{\"step\":\"enable_saas\"},"
		    "{\"step\":\"location_tag\",\"config\":{\"name\":\"vip\"}}]}");
	char *job = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job);
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_msg(loc != NULL, "location %s not in the sim", loc_id);
	struct json *contacts = json_get(loc, "contacts");
	ck_assert_int_eq(json_len(contacts), 1);
	char *tags = json_to_string(json_get(json_at(contacts, 0), "tags"));
	ck_assert_str_eq(tags, "[\"onboarding\",\"dental\"]");
	struct json *cvs = json_get(loc, "customValues");
	ck_assert_int_eq(json_len(cvs), 2);
	ck_assert_str_eq(json_get_str(find_by(cvs, "name", "Welcome"), "value"),
			 "Hi Ada of Acme Dental (n/a)");
	ck_assert_str_eq(json_get_str(find_by(cvs, "name", "City"), "value"), "Austin");
	struct json *saas = json_get(loc, "saas");
	ck_assert_msg(saas && saas->type == JSON_OBJECT, "SaaS not enabled");
	ck_assert_str_eq(json_get_str(saas, "companyId"), w.company);
	ck_assert_int_eq(json_get_bool(saas, "isSaaSV2"), 1);
	ck_assert_msg(find_by(json_get(loc, "tags"), "name", "vip"), "README example: no tag");
	char *tag_id = output(&w, job, "location_tag", "tag_id");
	ck_assert_str_eq(tag_id, json_get_str(find_by(json_get(loc, "tags"), "name", "vip"), "id"));
	free(tag_id);
	char *cid = output(&w, job, "tag_new_client", "contact_id");
	ck_assert_str_eq(cid, json_get_str(json_at(contacts, 0), "id"));
	char *welcome_id = xstrdup(json_get_str(find_by(cvs, "name", "Welcome"), "id"));
	char *city_id = xstrdup(json_get_str(find_by(cvs, "name", "City"), "id"));
	size_t nlocs = json_len(json_get(state, "locations"));
	free(tags);
	json_free(state);

	/* a second job for the same client, with a new welcome text: CREATE_LOCATION
	 * finds the location, the contact is upserted, the template step updates
	 * both custom values in place — nothing is duplicated */
	set_pipeline(&w,
		     "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":"
		     "\"always\"}},"
		     "{\"step\":\"tag_new_client\",\"config\":{\"tags\":[\"onboarding\"]}},"
		     "{\"step\":\"custom_values_from_template\",\"config\":{\"values\":"
		     "{\"Welcome\":\"Hello again {{client.first_name}}\","
		     "\"City\":\"{{ client.city }}\"}}}]}");
	char *job2 = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job2);
	char *loc2 = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job2);
	ck_assert_str_eq(loc2, loc_id);
	state = hsim_admin(&w.sim, "GET", "state", NULL);
	ck_assert_uint_eq(json_len(json_get(state, "locations")), nlocs);
	loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_msg(loc != NULL, "location %s gone from the sim", loc_id);
	contacts = json_get(loc, "contacts");
	ck_assert_uint_eq(json_len(contacts), 1);
	ck_assert_str_eq(json_get_str(json_at(contacts, 0), "id"), cid);
	cvs = json_get(loc, "customValues");
	ck_assert_uint_eq(json_len(cvs), 2);
	struct json *welcome = find_by(cvs, "name", "Welcome");
	ck_assert_str_eq(json_get_str(welcome, "id"), welcome_id);
	ck_assert_str_eq(json_get_str(welcome, "value"), "Hello again Ada");
	ck_assert_str_eq(json_get_str(find_by(cvs, "name", "City"), "id"), city_id);
	json_free(state);
	free(loc2);
	free(job2);
	free(city_id);
	free(welcome_id);
	free(cid);
	free(loc_id);
	free(job);
	world_stop(&w);
}
END_TEST

/* ---- errors reach the scheduler ---- */

START_TEST(retryable_permanent_and_limits)
{
	struct world w;
	world_start(&w, NULL);
	write_step(
		&w, "flaky.lua",
		"return {name = 'flaky', version = '1', run = function(ctx)\n"
		"  error({retry = true, message = 'GHL looks busy, attempt ' .. ctx.job.attempt})\n"
		"end}\n");
	write_step(&w, "broken.lua",
		   "return {name = 'broken', version = '1', run = function(ctx)\n"
		   "  error('client has no website')\n"
		   "end}\n");
	write_step(&w, "spin.lua",
		   "return {name = 'spin', version = '1', run = function(ctx)\n"
		   "  while true do pcall(function() while true do end end) end\n"
		   "end}\n");
	write_step(&w, "bomb.lua",
		   "return {name = 'bomb', version = '1', run = function(ctx)\n"
		   "  local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1e4) .. i end\n"
		   "end}\n");
	/* the wall-clock limit far away: under ASan on a busy machine the bomb
	 * may take more than the default 2 s to reach its memory limit */
	const char *env[] = {"GHL_AGENT_LUA_MAX_INSTRUCTIONS=200000",
			     "GHL_AGENT_LUA_MAX_WALL_MS=60000", NULL};
	world_agent(&w, env);

	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"flaky\"}],\"max_retries\":2}");
	char *job = add_job(&w, CLIENT, NULL);
	char *st = wait_job(&w, job, 30000);
	ck_assert_str_eq(st, "FAILED");
	char *err = q1(&w,
		       "SELECT error_message || ' / ' || retry_count FROM provisioning_jobs "
		       "WHERE id = '%s'",
		       job);
	ck_assert_msg(strstr(err, "flaky: flaky.lua:2: GHL looks busy") &&
			      strstr(err, "gave up after 2 retries") && strstr(err, " / 2"),
		      "%s", err);
	char *retrying = q1(&w,
			    "SELECT count(*) FROM provisioning_logs WHERE job_id = '%s' AND "
			    "step = 'flaky' AND status = 'FAILED' AND "
			    "(details_json->>'retryable')::boolean",
			    job);
	ck_assert_str_eq(retrying, "3");
	free(retrying);
	free(err);
	free(st);
	free(job);

	static const struct {
		const char *step, *needle;
	} perm[] = {
		{"broken", "broken: broken.lua:2: client has no website"},
		{"spin", "spin: spin.lua:2: instruction limit of 200000 exceeded"},
		{"bomb", "bomb: bomb.lua:2: memory limit of 16777216 bytes exceeded"},
	};
	for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++) {
		char *settings = xasprintf("{\"pipeline\":[{\"step\":\"%s\"}],\"max_retries\":3}",
					   perm[i].step);
		set_pipeline(&w, settings);
		free(settings);
		job = add_job(&w, CLIENT, NULL);
		st = wait_job(&w, job, 30000);
		ck_assert_str_eq(st, "FAILED");
		err = q1(&w,
			 "SELECT error_message || ' / ' || retry_count FROM provisioning_jobs "
			 "WHERE id = '%s'",
			 job);
		ck_assert_msg(strstr(err, perm[i].needle) && strstr(err, " / 0"), "%s", err);
		free(err);
		free(st);
		free(job);
	}
	/* the daemon carries on */
	char *url = hagent_url(&w.agent, "/readyz");
	ck_assert_int_eq(tl_http("GET", url, NULL, NULL, NULL), 200);
	free(url);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"NOOP\"}]}");
	job = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job);
	free(job);
	world_stop(&w);
}
END_TEST

/* ---- 1,000 scripts waiting on a slow GHL at once ---- */

START_TEST(thousand_scripts_wait_at_once)
{
	struct world w;
	const char *flags[] = {"--rate-limit", "0", NULL};
	world_start(&w, flags);
	write_step(&w, "slow_lookup.lua",
		   "return {name = 'slow_lookup', version = '1', run = function(ctx)\n"
		   "  local st, body = ghl.request{path = '/locations/search',\n"
		   "                               query = {companyId = ctx.job.company_id}}\n"
		   "  if st ~= 200 then ghl.fail('searching') end\n"
		   "  ctx:set('found', #body.locations)\n"
		   "end}\n");
	const char *env[] = {"GHL_AGENT_CLAIM_BATCH=1000", "GHL_AGENT_LOG_LEVEL=warn",
			     "GHL_AGENT_GHL_TIMEOUT=60s",
			     "GHL_AGENT_MAX_CONCURRENT_JOBS_CEILING=2000", NULL};
	world_agent(&w, env);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"slow_lookup\"}],"
			 "\"max_concurrent_jobs\":2000}");
	/* the agency token is fetched once, before the flood */
	char *first = add_job(&w, CLIENT, NULL);
	assert_completed(&w, first);
	free(first);
	/* GHL answers none of the searches until GATE of them wait at once (the
	 * agent's default ghl_max_connections is 512): a serial engine, or one
	 * that runs fewer scripts at a time, never opens the gate and its
	 * requests time out; how long it takes does not matter */
	enum { GATE = 500 };
	hsim_gate(&w.sim, GATE);
	char *sql = xasprintf("INSERT INTO provisioning_jobs (agency_id, client_data_json) "
			      "SELECT '%s', '%s' FROM generate_series(1, 1000)",
			      w.agency, CLIENT);
	int64_t t0 = now_monotonic_ms();
	PQclear(tl_sql(w.db, sql));
	free(sql);
	long long peak = 0;
	char *left = NULL;
	/* a bound on the wait only: with the gate shut the jobs never finish */
	for (int64_t end = t0 + 120000; now_monotonic_ms() < end;) {
		long long in_flight = hsim_stat(&w.sim, "in_flight");
		if (in_flight > peak)
			peak = in_flight;
		free(left);
		left = q1(&w, "SELECT count(*) FROM provisioning_jobs WHERE status NOT IN "
			      "('COMPLETED', 'FAILED')");
		if (!strcmp(left, "0"))
			break;
		usleep(20000);
	}
	int64_t took = now_monotonic_ms() - t0;
	ck_assert_msg(!strcmp(left, "0"),
		      "%s jobs still running after %lld ms; %lld requests waited at the gate "
		      "(of %d), peak %lld in flight",
		      left, (long long)took, hsim_stat(&w.sim, "gate_waiting"), (int)GATE, peak);
	free(left);
	char *done = q1(&w, "SELECT count(*) FROM provisioning_jobs WHERE status = 'COMPLETED'");
	ck_assert_str_eq(done, "1001");
	free(done);
	ck_assert_msg(hsim_stat(&w.sim, "gates_opened") == 1,
		      "the gate of %d requests waiting at once never opened (peak %lld)", (int)GATE,
		      peak);
	fprintf(stderr,
		"1,000 Lua steps, %d GHL requests held until all waited: %lld ms, peak seen %lld in flight\n",
		(int)GATE, (long long)took, peak);
	world_stop(&w);
}
END_TEST

/* ---- reload ---- */

START_TEST(reload_while_suspended)
{
	struct world w;
	world_start(&w, NULL);
	/* version 1 stays suspended (polling GHL, sleeping between) until the
	 * test releases it: a snapshot "release-ver-1" in the job's company */
	write_step(&w, "ver.lua",
		   "return {name = 'ver', version = '1', run = function(ctx)\n"
		   "  local go = false\n"
		   "  repeat\n"
		   "    ghl.sleep(250)\n"
		   "    local st, body = ghl.request{path = '/snapshots/',\n"
		   "                                 query = {companyId = ctx.job.company_id}}\n"
		   "    for _, s in ipairs(st == 200 and body.snapshots or {}) do\n"
		   "      go = go or s.id == 'release-ver-1'\n"
		   "    end\n"
		   "  until go\n"
		   "  ctx:set('v', 1)\n"
		   "end}\n");
	world_agent(&w, NULL);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"ver\"}]}");
	char *job1 = add_job(&w, CLIENT, NULL);
	/* wait until it is suspended in version 1 */
	int started = 0;
	for (int64_t end = now_monotonic_ms() + TL_DAEMON_TIMEOUT_MS;
	     !started && now_monotonic_ms() < end; usleep(50000))
		started = tl_sqlf_n(w.db,
				    "SELECT count(*) FROM provisioning_logs WHERE job_id = "
				    "'%s' AND status = 'STARTED'",
				    job1) > 0;
	ck_assert_msg(started, "job 1 never started; log:\n%s", tl_log_tail(w.agent.log, 3000));
	write_step(&w, "ver.lua",
		   "return {name = 'ver', version = '2', run = function(ctx)\n"
		   "  ctx:set('v', 2)\n"
		   "end}\n");
	kill(w.agent.pid, SIGHUP);
	wait_log(&w, "Lua step reloaded");
	char *job2 = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job2);
	char *v2 = output(&w, job2, "ver", "v");
	ck_assert_str_eq(v2, "2");
	char *st1 = q1(&w, "SELECT status FROM provisioning_jobs WHERE id = '%s'", job1);
	ck_assert_msg(strcmp(st1, "COMPLETED") != 0, "job 1 finished before its release");
	char *release = xasprintf("{\"companyId\":\"%s\",\"id\":\"release-ver-1\","
				  "\"name\":\"release\"}",
				  w.company);
	char *sim_url = xasprintf("%s/_sim/snapshots", w.sim.base);
	ck_assert_int_eq(tl_http("POST", sim_url, NULL, release, NULL), 201);
	free(sim_url);
	free(release);
	assert_completed(&w, job1);
	char *v1 = output(&w, job1, "ver", "v");
	ck_assert_str_eq(v1, "1");
	char *ver1 = q1(&w,
			"SELECT details_json->>'version' FROM provisioning_logs WHERE job_id = "
			"'%s' AND status = 'COMPLETED'",
			job1);
	ck_assert_str_eq(ver1, "1");

	/* a broken version is refused with its error; version 2 stays */
	write_step(&w, "ver.lua",
		   "return {name = 'ver', version = '3', run = function(ctx)\n"
		   "  ctx:set('v', 3\nend}\n");
	kill(w.agent.pid, SIGHUP);
	wait_log(&w, "(the running version stays)");
	char *log = tl_read_file(w.agent.log);
	ck_assert_msg(strstr(log, "ver.lua:3:"), "no line in the refusal");
	free(log);
	char *job3 = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job3);
	char *v3 = output(&w, job3, "ver", "v");
	ck_assert_str_eq(v3, "2");
	free(v1);
	free(v2);
	free(v3);
	free(ver1);
	free(st1);
	free(job1);
	free(job2);
	free(job3);
	world_stop(&w);
}
END_TEST

/* ---- ghl-agent step run ---- */

START_TEST(step_run_command)
{
	struct world w;
	world_start(&w, NULL);
	world_agent(&w, NULL);
	write_step(&w, "whoami.lua",
		   "return {name = 'whoami', version = '1', run = function(ctx)\n"
		   "  local st, body, h = ghl.request{path = '/locations/search',\n"
		   "                               query = {companyId = ctx.job.company_id}}\n"
		   "  log.info('search answered', st, h.message)\n"
		   "  ctx:set('status', st); ctx:set('greeting', ctx.config.greeting .. ' ' ..\n"
		   "          ctx.client.name)\n"
		   "end}\n");
	char *client = tl_write_temp("lua-client", CLIENT);
	char *file = xasprintf("%s/whoami.lua", w.steps);
	char *env_dsn = xasprintf("DATABASE_URL=%s", w.dsn);
	char *env_api = xasprintf("GHL_AGENT_GHL_API_BASE=%s", w.sim.base);
	char *env[] = {env_dsn,
		       env_api,
		       (char *)"GHL_AGENT_TOKEN_KEYS=" H_KEY7,
		       (char *)"GHL_AGENT_GHL_CLIENT_ID=" H_CLIENT_ID,
		       (char *)"GHL_AGENT_GHL_CLIENT_SECRET=" H_CLIENT_SECRET,
		       (char *)"GHL_AGENT_LOG_LEVEL=error",
		       NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"),
			(char *)"step",
			(char *)"run",
			file,
			(char *)"--client-json",
			client,
			(char *)"--config",
			(char *)"{\"greeting\":\"hello\"}",
			(char *)"--agency",
			w.agency,
			NULL};
	char *out;
	int rc = tl_run(argv, env, &out);
	ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
	ck_assert_msg(strstr(out, "status: COMPLETED") && strstr(out, "\"status\":200") &&
			      strstr(out, "\"greeting\":\"hello Acme Dental\"") &&
			      strstr(out, "info  search answered 200"),
		      "%s", out);
	free(out);
	/* a failing script: exit 1 with the message */
	write_step(&w, "whoami.lua",
		   "return {name = 'whoami', version = '1', run = function(ctx)\n"
		   "  error('nope') end}\n");
	argv[9] = NULL; /* oldest connected agency */
	argv[8] = NULL;
	rc = tl_run(argv, env, &out);
	ck_assert_msg(rc == 1 && strstr(out, "status: FAILED") && strstr(out, "whoami.lua:2: nope"),
		      "exit %d: %s", rc, out);
	free(out);
	unlink(client);
	free(client);
	free(file);
	free(env_dsn);
	free(env_api);
	world_stop(&w);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("lua_steps");
	TCase *t = tcase_create("all");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, outputs_flow_both_ways);
	tcase_add_test(t, shipped_scripts_in_a_pipeline);
	tcase_add_test(t, retryable_permanent_and_limits);
	tcase_add_test(t, thousand_scripts_wait_at_once);
	tcase_add_test(t, reload_while_suspended);
	tcase_add_test(t, step_run_command);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
