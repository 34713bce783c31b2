/* test_steps.c — the built-in step plugins end to end: real `ghl-agent serve`,
 * real PostgreSQL, real ghl-sim. The full pipeline (snapshot, location, user,
 * custom values, tagged contact, signed webhook) as GHL sees it, and each
 * exactly-once path: what an interrupted attempt left in GHL is reused, never
 * duplicated. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/socket.h>

#include "crypto.h"
#include "ghl_harness.h"

#define SECRET "steps-test-secret-0123456789"
/* clang-format off */
#define CLIENT                                                                                  \
	"{\"name\":\"Acme Dental\",\"email\":\"owner@acme.example\",\"first_name\":\"Ada\","   \
	"\"last_name\":\"Lovelace\",\"phone\":\"+15555550100\",\"city\":\"Austin\","            \
	"\"state\":\"TX\",\"postal_code\":\"78701\",\"country\":\"US\","                         \
	"\"timezone\":\"US/Central\",\"custom_values\":{\"welcome_text\":\"Hi\"},"              \
	"\"tags\":[\"dental\",\"vip\"]}"
/* clang-format on */

struct world {
	char *dsn;
	PGconn *db;
	struct hsim sim;
	struct hagent agent;
	char company[64];
	char *agency;
};

static int company_seq;

#define q1(w, ...) tl_sqlf((w)->db, __VA_ARGS__)

/* the webhook receiver listens on 127.0.0.1: private addresses allowed */
static const char *const fast[] = {"GHL_AGENT_RETRY_BASE=100ms",
				   "GHL_AGENT_RETRY_MAX=300ms",
				   "GHL_AGENT_POLL_INTERVAL=100ms",
				   "GHL_AGENT_LOG_LEVEL=info",
				   "GHL_AGENT_NOTIFY_WEBHOOK_ALLOW_PRIVATE=on",
				   NULL};

/* A world whose ghl-sim gets flags and whose agent gets env. */
static void world_start_with(struct world *w, const char *const *flags, const char *const *env)
{
	memset(w, 0, sizeof(*w));
	w->dsn = tl_create_migrated_db("steps");
	w->db = tl_connect(w->dsn);
	hsim_start(&w->sim, flags);
	hagent_start(&w->agent, w->dsn, &w->sim, env);
	snprintf(w->company, sizeof(w->company), "co-steps-%d-%d", (int)getpid(), ++company_seq);
	w->agency = hconnect_agency(&w->agent, w->db, w->company);
	/* ghl-sim gives every company its demo snapshots (snap-dental-001, ...) */
}

static void world_start(struct world *w)
{
	const char *flags[] = {"--snapshot-delay-ms", "400", NULL};
	world_start_with(w, flags, fast);
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
}

static void set_pipeline(struct world *w, const char *settings)
{
	char *sql = xasprintf("UPDATE agencies SET settings_json = '%s' WHERE id = '%s'", settings,
			      w->agency);
	PQclear(tl_sql(w->db, sql));
	free(sql);
}

static char *add_snapshot(struct world *w, const char *ghl_id)
{
	return q1(w,
		  "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name) VALUES ('%s', '%s', "
		  "'Dental Practice') RETURNING id",
		  w->agency, ghl_id);
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

static long long route_count(struct world *w, const char *route, const char *status)
{
	struct json *st = hsim_admin(&w->sim, "GET", "stats", NULL);
	int64_t n = 0;
	json_get_int(json_get(json_get(st, "requests"), route), status, &n);
	json_free(st);
	return (long long)n;
}

/* ---- talking to the sim directly, as an interrupted attempt did ---- */

static char *sim_company_token(struct world *w)
{
	struct hresp r;
	char *url = xasprintf(
		"%s/oauth/chooselocation?response_type=code&client_id=%s&redirect_uri="
		"http://127.0.0.1/cb&scope=locations.write&state=s&company_id=%s",
		w->sim.base, H_CLIENT_ID, w->company);
	hhttp(&r, "GET", url, NULL, NULL, 0);
	free(url);
	ck_assert_msg(r.status == 302 && r.location && strstr(r.location, "code="),
		      "authorize: %ld", r.status);
	char *code = xstrdup(strstr(r.location, "code=") + 5);
	code[strcspn(code, "&")] = 0;
	hresp_free(&r);
	char *form = xasprintf("client_id=%s&client_secret=%s&grant_type=authorization_code&code=%s"
			       "&user_type=Company&redirect_uri=http://127.0.0.1/cb",
			       H_CLIENT_ID, H_CLIENT_SECRET, code);
	url = xasprintf("%s/oauth/token", w->sim.base);
	const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	hhttp(&r, "POST", url, h, form, strlen(form));
	ck_assert_msg(r.status == 200, "token: %ld %s", r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *tok = xstrdup(json_get_str(j, "access_token"));
	json_free(j);
	hresp_free(&r);
	free(url);
	free(form);
	free(code);
	return tok;
}

static struct json *sim_call(struct world *w, const char *token, const char *method,
			     const char *path, const char *body, const char *ctype, long want)
{
	char *url = xasprintf("%s%s", w->sim.base, path);
	char *auth = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {auth, "Version: 2021-07-28", ctype, NULL};
	struct hresp r;
	hhttp(&r, method, url, h, body, body ? strlen(body) : 0);
	ck_assert_msg(r.status == want, "%s %s: %ld %s", method, path, r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	hresp_free(&r);
	free(auth);
	free(url);
	return j;
}

/* ---- a webhook receiver: a child process appending raw requests to a file ---- */

struct receiver {
	pid_t pid;
	int port;
	char path[64];
};

static void receiver_serve(int lfd, const char *path)
{
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		struct buf b;
		buf_init(&b);
		char chunk[4096];
		ssize_t n;
		while ((n = read(c, chunk, sizeof chunk)) > 0) {
			buf_append(&b, chunk, (size_t)n);
			const char *end = strstr(buf_cstr(&b), "\r\n\r\n");
			const char *cl = strcasestr(buf_cstr(&b), "\r\nContent-Length:");
			if (end && cl &&
			    b.len >= (size_t)(end + 4 - b.data) + strtoul(cl + 17, NULL, 10))
				break;
		}
		FILE *f = fopen(path, "a");
		if (f) {
			fwrite(b.data, 1, b.len, f);
			fputs("\n--END--\n", f);
			fclose(f);
		}
		const char
			*ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		ssize_t wr = write(c, ok, strlen(ok));
		(void)wr;
		close(c);
		buf_clear(&b);
	}
}

static void receiver_start(struct receiver *r)
{
	snprintf(r->path, sizeof r->path, "/tmp/ghl-steps-hook-XXXXXX");
	close(mkstemp(r->path));
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	getsockname(lfd, (struct sockaddr *)&a, &len);
	r->port = ntohs(a.sin_port);
	r->pid = fork();
	ck_assert_int_ge(r->pid, 0);
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		receiver_serve(lfd, r->path);
		_exit(0);
	}
	close(lfd);
}

static void receiver_stop(struct receiver *r)
{
	tl_kill(r->pid);
	unlink(r->path);
}

/* ---- tests ---- */

START_TEST(full_pipeline_as_ghl_sees_it)
{
	struct world w;
	world_start(&w);
	struct receiver rcv;
	receiver_start(&rcv);
	char *settings = xasprintf(
		"{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
		"{\"step\":\"CREATE_LOCATION\",\"config\":{\"settings\":{\"allowDuplicateContact\":"
		"false}}},"
		"{\"step\":\"WAIT_FOR_SNAPSHOT\",\"config\":{\"first_poll_ms\":0,"
		"\"poll_interval_ms\":100}},"
		"{\"step\":\"CREATE_USER\",\"config\":{\"role\":\"admin\"}},"
		"{\"step\":\"SET_CUSTOM_VALUES\",\"config\":{\"values\":{\"city_line\":"
		"\"Welcome to {{city}}, {{ name }}!\"}}},"
		"{\"step\":\"CREATE_CONTACT\",\"config\":{\"tags\":[\"onboarding\",\"DENTAL\"]}},"
		"{\"step\":\"NOTIFY_WEBHOOK\",\"config\":{\"url\":\"http://127.0.0.1:%d/hook\","
		"\"secret\":\"" SECRET "\"}}]}",
		rcv.port);
	set_pipeline(&w, settings);
	char *snap = add_snapshot(&w, "snap-dental-001");
	char *job = add_job(&w, CLIENT, snap);
	assert_completed(&w, job);
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_msg(*loc_id, "no location_id on the job");

	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	/* the location, loaded with the snapshot, the push finished */
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_msg(loc, "location %s not in the sim", loc_id);
	ck_assert_str_eq(json_get_str(loc, "name"), "Acme Dental");
	ck_assert_str_eq(json_get_str(loc, "companyId"), w.company);
	ck_assert_str_eq(json_get_str(loc, "email"), "owner@acme.example");
	ck_assert_str_eq(json_get_str(loc, "postalCode"), "78701");
	ck_assert_str_eq(json_get_str(json_get(loc, "snapshotPush"), "snapshotId"),
			 "snap-dental-001");
	ck_assert_str_eq(json_get_str(json_get(loc, "snapshotPush"), "status"), "completed");
	/* the client's admin user in that location */
	struct json *users = json_get(state, "users");
	ck_assert_int_eq(json_len(users), 1);
	struct json *roles = json_get(json_at(users, 0), "roles");
	ck_assert_str_eq(json_get_str(json_at(users, 0), "email"), "owner@acme.example");
	ck_assert_str_eq(json_get_str(roles, "role"), "admin");
	ck_assert_str_eq(json_get_str(roles, "type"), "account");
	ck_assert_str_eq(json_at(json_get(roles, "locationIds"), 0)->u.str.s, loc_id);
	/* custom values: the client's and the config's template, filled in */
	struct json *cvs = json_get(loc, "customValues");
	ck_assert_int_eq(json_len(cvs), 2);
	ck_assert_str_eq(json_get_str(find_by(cvs, "name", "welcome_text"), "value"), "Hi");
	ck_assert_str_eq(json_get_str(find_by(cvs, "name", "city_line"), "value"),
			 "Welcome to Austin, Acme Dental!");
	/* one contact, the client's tags plus the config's, no repeats */
	struct json *contacts = json_get(loc, "contacts");
	ck_assert_int_eq(json_len(contacts), 1);
	char *tags = json_to_string(json_get(json_at(contacts, 0), "tags"));
	ck_assert_str_eq(tags, "[\"dental\",\"vip\",\"onboarding\"]");
	free(tags);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 1);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	/* WAIT_FOR_SNAPSHOT saw the push processing before it finished (the shared poll) */
	ck_assert_int_gt(route_count(&w, "GET /snapshots/snapshot-status/{snapshotId}", "200"), 1);

	/* outputs journaled */
	char *v = output(&w, job, "CREATE_LOCATION", "location_reused");
	ck_assert_str_eq(v, "false");
	free(v);
	v = output(&w, job, "SET_CUSTOM_VALUES", "custom_value_ids");
	ck_assert_msg(strstr(v, "\"welcome_text\"") && strstr(v, "\"city_line\""), "%s", v);
	free(v);
	char *user_id = output(&w, job, "CREATE_USER", "user_id");
	ck_assert_str_eq(user_id, json_get_str(json_at(users, 0), "id"));

	/* the webhook: the result, signed over the raw body */
	ck_assert(tl_wait_file_contains(rcv.path, "--END--", 5000));
	char *req = tl_read_file(rcv.path);
	char *body = strstr(req, "\r\n\r\n");
	ck_assert_msg(body, "%s", req);
	body += 4;
	*strstr(body, "\n--END--") = 0;
	struct json *j = json_parse(body, strlen(body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "webhook body not JSON: %s", body);
	ck_assert_str_eq(json_get_str(j, "event"), "provisioning.completed");
	ck_assert_str_eq(json_get_str(j, "job_id"), job);
	ck_assert_str_eq(json_get_str(j, "agency_id"), w.agency);
	ck_assert_str_eq(json_get_str(j, "location_id"), loc_id);
	ck_assert_str_eq(json_get_str(j, "user_id"), user_id);
	ck_assert_str_eq(json_get_str(json_get(j, "client"), "email"), "owner@acme.example");
	char hex[CRYPTO_SHA256_HEX_LEN];
	ck_assert_int_eq(crypto_hmac_sha256_hex(SECRET, strlen(SECRET), body, strlen(body), hex),
			 0);
	char *want = xasprintf("X-GHL-Agent-Signature: sha256=%s\r\n", hex);
	int64_t t = 0;
	json_get_int(j, "timestamp", &t);
	char *ts = xasprintf("X-GHL-Agent-Timestamp: %lld\r\n", (long long)t);
	ck_assert_msg(strcasestr(req, want), "no valid signature header in:\n%s", req);
	ck_assert_msg(t > 0 && strcasestr(req, ts), "no timestamp header matching %lld in:\n%s",
		      (long long)t, req);
	free(ts);
	free(want);
	json_free(j);
	free(req);

	json_free(state);
	free(user_id);
	free(loc_id);
	free(job);
	free(snap);
	free(settings);
	receiver_stop(&rcv);
	world_stop(&w);
}
END_TEST

/* An earlier attempt created the location, the user and a custom value in GHL
 * and died before recording them: the steps find and reuse them. Running the
 * same client twice more changes nothing either. */
START_TEST(interrupted_attempts_are_reused_not_duplicated)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
			 "{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},"
			 "{\"step\":\"WAIT_FOR_SNAPSHOT\",\"config\":{\"poll_interval_ms\":100}},"
			 "{\"step\":\"CREATE_USER\"},{\"step\":\"SET_CUSTOM_VALUES\"},"
			 "{\"step\":\"CREATE_CONTACT\"}]}");
	char *tok = sim_company_token(&w);
	const char *json = "Content-Type: application/json";
	char *body = xasprintf("{\"name\":\"Acme Dental\",\"companyId\":\"%s\",\"snapshotId\":"
			       "\"snap-dental-001\",\"prospectInfo\":{\"firstName\":\"Ada\","
			       "\"lastName\":\"Lovelace\",\"email\":\"owner@acme.example\"}}",
			       w.company);
	struct json *r = sim_call(&w, tok, "POST", "/locations/", body, json, 200);
	char *pre_loc = xstrdup(json_get_str(r, "id"));
	json_free(r);
	free(body);
	body = xasprintf("{\"companyId\":\"%s\",\"firstName\":\"Ada\",\"lastName\":\"Lovelace\","
			 "\"email\":\"Owner@Acme.example\",\"password\":\"pre-created-pw-1\","
			 "\"type\":\"account\",\"role\":\"admin\",\"locationIds\":[\"%s\"]}",
			 w.company, pre_loc);
	r = sim_call(&w, tok, "POST", "/users/", body, json, 201);
	char *pre_user = xstrdup(json_get_str(r, "id"));
	json_free(r);
	free(body);
	body = xasprintf("companyId=%s&locationId=%s", w.company, pre_loc);
	r = sim_call(&w, tok, "POST", "/oauth/locationToken", body,
		     "Content-Type: application/x-www-form-urlencoded", 200);
	char *loc_tok = xstrdup(json_get_str(r, "access_token"));
	json_free(r);
	free(body);
	char *path = xasprintf("/locations/%s/customValues", pre_loc);
	json_free(sim_call(&w, loc_tok, "POST", path,
			   "{\"name\":\"welcome_text\",\"value\":\"Old\"}", json, 201));

	char *snap = add_snapshot(&w, "snap-dental-001");
	for (int round = 0; round < 3; round++) {
		char *job = add_job(&w, CLIENT, snap);
		assert_completed(&w, job);
		char *loc = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'",
			       job);
		ck_assert_str_eq(loc, pre_loc);
		char *v = output(&w, job, "CREATE_LOCATION", "location_reused");
		ck_assert_str_eq(v, "true");
		free(v);
		v = output(&w, job, "CREATE_USER", "user_reused");
		ck_assert_str_eq(v, "true");
		free(v);
		v = output(&w, job, "CREATE_USER", "user_id");
		ck_assert_str_eq(v, pre_user);
		free(v);
		free(loc);
		free(job);
	}
	/* nothing created twice: the location and user were made by the test only */
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 1);
	ck_assert_int_eq(hsim_stat(&w.sim, "duplicate_locations"), 0);
	ck_assert_int_eq(route_count(&w, "POST /locations/", "200"), 1);
	ck_assert_int_eq(route_count(&w, "POST /users/", "201"), 1);
	ck_assert_int_eq(route_count(&w, "POST /users/", "400"), 0);
	/* the custom value was updated in place (once: later rounds found it equal) */
	ck_assert_int_eq(route_count(&w, "PUT /locations/{locationId}/customValues/{id}", "200"),
			 1);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	ck_assert_int_eq(json_len(json_get(state, "locations")), 1);
	ck_assert_int_eq(json_len(json_get(state, "users")), 1);
	struct json *loc = json_at(json_get(state, "locations"), 0);
	struct json *cvs = json_get(loc, "customValues");
	ck_assert_int_eq(json_len(cvs), 1);
	ck_assert_str_eq(json_get_str(json_at(cvs, 0), "value"), "Hi");
	ck_assert_int_eq(json_len(json_get(loc, "contacts")), 1);
	json_free(state);

	free(snap);
	free(path);
	free(loc_tok);
	free(pre_user);
	free(pre_loc);
	free(tok);
	world_stop(&w);
}
END_TEST

/* Without prospect info GHL stores no email on the location: the search scans
 * by name and the other fields instead, and still reuses. */
START_TEST(location_without_prospect_info_is_reused)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
			 "{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},"
			 "{\"step\":\"WAIT_FOR_SNAPSHOT\"}]}");
	char *tok = sim_company_token(&w);
	/* a namesake with other details must not be taken */
	char *body = xasprintf("{\"name\":\"Solo Gym\",\"companyId\":\"%s\",\"city\":\"Dallas\"}",
			       w.company);
	json_free(sim_call(&w, tok, "POST", "/locations/", body, "Content-Type: application/json",
			   200));
	free(body);
	body = xasprintf("{\"name\":\"Solo Gym\",\"companyId\":\"%s\",\"city\":\"Austin\"}",
			 w.company);
	struct json *r = sim_call(&w, tok, "POST", "/locations/", body,
				  "Content-Type: application/json", 200);
	char *pre_loc = xstrdup(json_get_str(r, "id"));
	json_free(r);
	free(body);
	char *job = add_job(&w,
			    "{\"name\":\"Solo Gym\",\"email\":\"solo@gym.example\","
			    "\"city\":\"Austin\"}",
			    NULL);
	assert_completed(&w, job);
	char *loc = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_str_eq(loc, pre_loc);
	char *v = output(&w, job, "VALIDATE_SNAPSHOT", "snapshot_skipped");
	ck_assert_str_eq(v, "true");
	free(v);
	v = output(&w, job, "WAIT_FOR_SNAPSHOT", "snapshot_wait_skipped");
	ck_assert_str_eq(v, "true");
	free(v);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 2);
	free(loc);
	free(job);
	free(pre_loc);
	free(tok);
	world_stop(&w);
}
END_TEST

START_TEST(snapshot_problems_fail_permanently)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
			 "{\"step\":\"CREATE_LOCATION\"}]}");
	char *gone = add_snapshot(&w, "snap-deleted-in-ghl");
	char *job = add_job(&w, CLIENT, gone);
	char *st = wait_job(&w, job, 20000);
	ck_assert_str_eq(st, "FAILED");
	char *err = q1(&w,
		       "SELECT retry_count || ' ' || error_message FROM provisioning_jobs "
		       "WHERE id = '%s'",
		       job);
	ck_assert_msg(str_has_prefix(err, "0 ") && strstr(err, "VALIDATE_SNAPSHOT") &&
			      strstr(err, "snap-deleted-in-ghl") &&
			      strstr(err, "no longer exists in GHL"),
		      "%s", err);
	ck_assert_int_eq(hsim_stat(&w.sim, "locations_created"), 0);
	free(err);
	free(st);
	free(job);
	free(gone);
	world_stop(&w);
}
END_TEST

/* Regression (issue 12): custom value names are keys, never parsed. A client
 * submitted through the API with names holding '.', '[', '"' and non-ASCII
 * gets every one of them written, and their ids recorded under those names;
 * a config template name with a '.' too. */
START_TEST(custom_value_names_with_any_character)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
			 "{\"step\":\"SET_CUSTOM_VALUES\",\"config\":{\"values\":"
			 "{\"intro.line\":\"Hi {{city}}\"}}}]}");
	static const char *const names[] = {"welcome.text", "a[0]", "say \"hi\"",
					    "caf\xc3\xa9 \xe2\x98\x95", "intro.line"};
	static const char *const values[] = {"Hello", "x", "y", "z", "Hi Austin"};
	char *url = xasprintf("%s/api/v1/agencies/%s/jobs", w.agent.base, w.agency);
	char *auth = hagent_admin_header(&w.agent);
	const char *h[] = {"Content-Type: application/json", auth, NULL};
	const char *body =
		"{\"client_data\":{\"name\":\"Dotted Keys\",\"email\":\"keys@dotted.example\","
		"\"city\":\"Austin\",\"custom_values\":{\"welcome.text\":\"Hello\",\"a[0]\":\"x\","
		"\"say \\\"hi\\\"\":\"y\",\"caf\xc3\xa9 \xe2\x98\x95\":\"z\"}}}";
	char *out;
	long st = tl_http("POST", url, h, body, &out);
	ck_assert_msg(st == 201, "submit: %ld %s", st, out);
	struct json *created = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(created && json_get_str(created, "id"), "%s", out);
	char *job = xstrdup(json_get_str(created, "id"));
	json_free(created);
	free(out);
	assert_completed(&w, job);

	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_msg(loc, "location %s not in the sim", loc_id);
	struct json *cvs = json_get(loc, "customValues");
	ck_assert_int_eq(json_len(cvs), 5);
	char *ids_text = output(&w, job, "SET_CUSTOM_VALUES", "custom_value_ids");
	struct json *ids = json_parse(ids_text, strlen(ids_text), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(ids && json_len(ids) == 5, "custom_value_ids: %s", ids_text);
	for (size_t i = 0; i < 5; i++) {
		struct json *cv = find_by(cvs, "name", names[i]);
		ck_assert_msg(cv, "custom value \"%s\" not in GHL", names[i]);
		ck_assert_str_eq(json_get_str(cv, "value"), values[i]);
		ck_assert_str_eq(json_get_str(ids, names[i]), json_get_str(cv, "id"));
	}
	json_free(ids);
	free(ids_text);
	json_free(state);
	free(loc_id);
	free(job);
	free(auth);
	free(url);
	world_stop(&w);
}
END_TEST

/* ---- the go-live steps (issue 13) ---- */

#define GOLIVE_FIELDS                                                                          \
	"{\"step\":\"CREATE_CUSTOM_FIELDS\",\"config\":{\"fields\":[{\"name\":\"Insurance\"}," \
	"{\"name\":\"Visits\",\"data_type\":\"NUMERICAL\",\"position\":2}]}}"
#define GOLIVE_CALENDARS                                                                         \
	"{\"step\":\"CREATE_CALENDARS\",\"config\":{\"calendars\":[{\"name\":\"Consultations\"," \
	"\"slot_duration\":45%s},{\"name\":\"Cleanings\"}]}}"

#define GOLIVE_MENUS                                                                        \
	"{\"step\":\"ADD_MENU_LINKS\",\"config\":{\"links\":[{\"title\":\"Client portal\"," \
	"\"url\":\"https://portal.example.com/\"},{\"title\":\"Help\",\"url\":"             \
	"\"https://help.example.com/\",\"open_mode\":\"iframe\"}]}}"

/* The location's member of GET /_sim/state's golive store (NULL: none). */
static struct json *golive_of(struct json *state, const char *what, const char *key)
{
	struct json *g = json_get(json_get(state, "golive"), what);
	return key ? json_get(g, key) : g;
}

static struct json *calendars_of(struct json *state, const char *loc_id)
{
	struct json *out = json_new_array();
	struct json *all = golive_of(state, "calendars", NULL);
	for (size_t i = 0; i < json_len(all); i++)
		if (str_eq(json_get_str(json_at(all, i), "locationId"), loc_id))
			json_array_push_take(out, json_clone(json_at(all, i)));
	return out;
}

static void assert_output(struct world *w, const char *job, const char *step, const char *key,
			  const char *want)
{
	char *v = output(w, job, step, key);
	ck_assert_msg(str_eq(v, want), "%s.%s: %s, want %s", step, key, v, want);
	free(v);
}

/* Every go-live step in one pipeline, as GHL sees it; the same client again
 * reuses all of it (one number, two fields, two calendars). */
START_TEST(golive_pipeline_as_ghl_sees_it)
{
	struct world w;
	world_start(&w);
	char *cal = xasprintf(GOLIVE_CALENDARS, ",\"assign_user\":true");
	char *settings = xasprintf(
		"{\"pipeline\":[{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},{\"step\":\"CREATE_USER\"},"
		"{\"step\":\"BUY_PHONE_NUMBER\",\"config\":{\"sms\":true,\"voice\":true}}," GOLIVE_FIELDS
		",%s,{\"step\":\"ENABLE_SAAS\",\"config\":{\"plan_id\":\"plan-pro\",\"price_id\":"
		"\"price-pro-monthly\"}},{\"step\":\"SET_REBILLING\",\"config\":{\"products\":["
		"{\"product\":\"conversationAI\",\"markup\":20},{\"product\":\"contentAI\","
		"\"config\":{\"enabled\":true}}]}},{\"step\":\"SET_USER_PERMISSIONS\",\"config\":"
		"{\"permissions\":{\"campaignsEnabled\":true,\"workflowsEnabled\":false},"
		"\"scopes\":[\"contacts.write\"]}}," GOLIVE_MENUS "]}",
		cal);
	set_pipeline(&w, settings);
	char *job = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job);
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	char *user_id = output(&w, job, "CREATE_USER", "user_id");
	char *number = output(&w, job, "BUY_PHONE_NUMBER", "phone_number");
	assert_output(&w, job, "BUY_PHONE_NUMBER", "phone_number_reused", "false");
	/* the client's area code (+1 555…), a number that sends SMS */
	ck_assert_msg(str_has_prefix(number, "+1555"), "number %s", number);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *nums = golive_of(state, "numbers", loc_id);
	ck_assert_int_eq(json_len(nums), 1);
	ck_assert_str_eq(json_get_str(json_at(nums, 0), "phoneNumber"), number);
	ck_assert_int_eq(json_get_bool(json_get(json_at(nums, 0), "capabilities"), "SMS"), 1);
	char *fp = xasprintf("ghl-agent:%s:%s:BUY_PHONE_NUMBER", job, loc_id);
	ck_assert_msg(golive_of(state, "purchases", fp), "no purchase with fingerprintId %s", fp);
	/* the fields, the calendars (the client's user on the first), SaaS, rebilling */
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	struct json *cfs = json_get(loc, "customFields");
	ck_assert_int_eq(json_len(cfs), 2);
	ck_assert_str_eq(json_get_str(find_by(cfs, "name", "Visits"), "dataType"), "NUMERICAL");
	char *ids = output(&w, job, "CREATE_CUSTOM_FIELDS", "custom_field_ids");
	ck_assert_msg(strstr(ids, json_get_str(find_by(cfs, "name", "Insurance"), "id")), "%s",
		      ids);
	free(ids);
	struct json *cals = calendars_of(state, loc_id);
	ck_assert_int_eq(json_len(cals), 2);
	struct json *consult = find_by(cals, "name", "Consultations");
	int64_t slot = 0;
	json_get_int(consult, "slotDuration", &slot);
	ck_assert_int_eq(slot, 45);
	ck_assert_str_eq(json_get_str(json_at(json_get(consult, "teamMembers"), 0), "userId"),
			 user_id);
	ck_assert_str_eq(json_get_str(json_get(loc, "saas"), "saasPlanId"), "plan-pro");
	ck_assert_str_eq(json_get_str(json_get(loc, "saas"), "priceId"), "price-pro-monthly");
	struct json *rb = golive_of(state, "rebilling", w.company);
	int64_t markup = 0;
	json_get_int(json_get(json_get(rb, "conversationAI"), "config"), "markup", &markup);
	ck_assert_int_eq(markup, 20);
	ck_assert_str_eq(json_at(json_get(json_get(rb, "contentAI"), "locationIds"), 0)->u.str.s,
			 loc_id);
	assert_output(&w, job, "SET_REBILLING", "rebilling_products",
		      "[\"conversationAI\", \"contentAI\"]");
	/* the user's permissions: the two set, the others kept; the scopes */
	struct json *perm = json_get(json_at(json_get(state, "users"), 0), "permissions");
	ck_assert_int_eq(json_get_bool(perm, "campaignsEnabled"), 1);
	ck_assert_int_eq(json_get_bool(perm, "workflowsEnabled"), 0);
	ck_assert_int_eq(json_get_bool(perm, "contactsEnabled"), 1); /* as created */
	ck_assert_str_eq(
		json_at(json_get(json_at(json_get(state, "users"), 0), "scopes"), 0)->u.str.s,
		"contacts.write");
	/* two menu links shown in this location only */
	struct json *menus = golive_of(state, "menus", NULL);
	ck_assert_int_eq(json_len(menus), 2);
	struct json *help = find_by(menus, "title", "Help");
	ck_assert_str_eq(json_get_str(help, "openMode"), "iframe");
	ck_assert_str_eq(json_at(json_get(help, "locations"), 0)->u.str.s, loc_id);
	ck_assert_int_eq(json_get_bool(help, "showToAllLocations"), 0);
	json_free(cals);
	json_free(state);

	/* the same client again: everything found, nothing made twice */
	char *again = add_job(&w, CLIENT, NULL);
	assert_completed(&w, again);
	assert_output(&w, again, "BUY_PHONE_NUMBER", "phone_number", number);
	assert_output(&w, again, "BUY_PHONE_NUMBER", "phone_number_reused", "true");
	assert_output(&w, again, "CREATE_CUSTOM_FIELDS", "custom_fields_created", "[]");
	assert_output(&w, again, "CREATE_CALENDARS", "calendars_created", "[]");
	assert_output(&w, again, "ENABLE_SAAS", "saas_reused", "true");
	assert_output(&w, again, "ADD_MENU_LINKS", "menu_links_created", "[]");
	state = hsim_admin(&w.sim, "GET", "state", NULL);
	ck_assert_int_eq(json_len(golive_of(state, "purchases", NULL)), 1);
	ck_assert_int_eq(json_len(golive_of(state, "numbers", loc_id)), 1);
	cals = calendars_of(state, loc_id);
	ck_assert_int_eq(json_len(cals), 2);
	loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_int_eq(json_len(json_get(loc, "customFields")), 2);
	ck_assert_int_eq(route_count(&w, "POST /saas/enable-saas/{locationId}", "200"), 1);
	ck_assert_int_eq(json_len(golive_of(state, "menus", NULL)), 2);
	json_free(cals);
	json_free(state);

	/* a client whose data names its SaaS plan: the client's wins over the config's */
	char *pro = add_job(&w,
			    "{\"name\":\"Bright Smiles\",\"email\":\"hi@bright.example\","
			    "\"first_name\":\"Bo\",\"last_name\":\"Bright\",\"country\":\"CA\","
			    "\"custom_values\":{\"saas_plan_id\":\"plan-starter\"}}",
			    NULL);
	assert_completed(&w, pro);
	assert_output(&w, pro, "ENABLE_SAAS", "saas_plan_id", "plan-starter");
	char *pro_loc = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", pro);
	char *pro_num = output(&w, pro, "BUY_PHONE_NUMBER", "phone_number");
	ck_assert_msg(str_has_prefix(pro_num, "+1416"), "a Canadian number: %s", pro_num);
	state = hsim_admin(&w.sim, "GET", "state", NULL);
	loc = find_by(json_get(state, "locations"), "id", pro_loc);
	ck_assert_str_eq(json_get_str(json_get(loc, "saas"), "saasPlanId"), "plan-starter");
	json_free(state);
	free(pro_num);
	free(pro_loc);
	free(pro);
	free(again);
	free(fp);
	free(number);
	free(user_id);
	free(loc_id);
	free(job);
	free(settings);
	free(cal);
	world_stop(&w);
}
END_TEST

static int has_number(struct json *state)
{
	struct json *all = golive_of(state, "numbers", NULL);
	for (size_t i = 0; i < json_len(all); i++)
		if (json_len(all->u.obj.vals[i]) > 0)
			return 1;
	return 0;
}

static int has_field(struct json *state)
{
	struct json *locs = json_get(state, "locations");
	for (size_t i = 0; i < json_len(locs); i++)
		if (json_len(json_get(json_at(locs, i), "customFields")) > 0)
			return 1;
	return 0;
}

static int has_calendar(struct json *state)
{
	return json_len(golive_of(state, "calendars", NULL)) > 0;
}

static const char *const crash_env[] = {
	"GHL_AGENT_RETRY_BASE=100ms",	 "GHL_AGENT_RETRY_MAX=300ms",
	"GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_LEASE_TIMEOUT=1500ms",
	"GHL_AGENT_LOG_LEVEL=info",	 NULL};

/* Kills the agent (SIGKILL) as soon as GHL has done what made(state) sees —
 * ghl-sim answers 600 ms after it acted, so the step is still waiting for
 * GHL's reply: the journal has no COMPLETED row for it — then starts a new
 * agent, which resumes the job once the lease has run out. */
static void crash_after(struct world *w, const char *job, const char *step,
			int (*made)(struct json *state))
{
	int hit = 0;
	for (int i = 0; i < 3000 && !hit; i++) {
		struct json *state = hsim_admin(&w->sim, "GET", "state", NULL);
		hit = made(state);
		json_free(state);
		if (!hit)
			usleep(10000);
	}
	ck_assert_msg(hit, "%s never reached GHL", step);
	kill(w->agent.pid, SIGKILL);
	int st;
	waitpid(w->agent.pid, &st, 0);
	long long done = tl_sqlf_n(w->db,
				   "SELECT count(*) FROM provisioning_logs WHERE job_id = "
				   "'%s' AND step = '%s' AND status = 'COMPLETED'",
				   job, step);
	ck_assert_msg(done == 0, "%s was journaled before the crash: the test missed its window",
		      step);
	unlink(w->agent.log);
	hagent_start(&w->agent, w->dsn, &w->sim, crash_env);
}

/* A crash between each step's GHL call and its journal write: the job
 * resumes, and GHL has one number, two fields and two calendars. */
START_TEST(golive_crash_between_ghl_call_and_journal)
{
	struct world w;
	const char *flags[] = {"--latency-ms", "600", "--rate-limit", "0", NULL};
	world_start_with(&w, flags, crash_env);
	char *cal = xasprintf(GOLIVE_CALENDARS, "");
	char *settings = xasprintf("{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
				   "{\"step\":\"BUY_PHONE_NUMBER\"}," GOLIVE_FIELDS ",%s]}",
				   cal);
	set_pipeline(&w, settings);
	char *job = add_job(&w, CLIENT, NULL);
	crash_after(&w, job, "BUY_PHONE_NUMBER", has_number);
	crash_after(&w, job, "CREATE_CUSTOM_FIELDS", has_field);
	crash_after(&w, job, "CREATE_CALENDARS", has_calendar);
	char *st = hjob_wait(w.db, job, 60000, w.agent.log);
	ck_assert_str_eq(st, "COMPLETED");
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	/* one number bought, and the resumed step reports it as found */
	ck_assert_int_eq(json_len(golive_of(state, "purchases", NULL)), 1);
	ck_assert_int_eq(json_len(golive_of(state, "numbers", loc_id)), 1);
	ck_assert_int_eq(
		route_count(&w, "POST /phone-system/numbers/location/{locationId}/purchase", "201"),
		1);
	assert_output(&w, job, "BUY_PHONE_NUMBER", "phone_number_reused", "true");
	/* each field and calendar once: the one made before the crash was found */
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_int_eq(json_len(json_get(loc, "customFields")), 2);
	ck_assert_int_eq(route_count(&w, "POST /locations/{locationId}/customFields", "201"), 2);
	ck_assert_int_eq(route_count(&w, "POST /locations/{locationId}/customFields", "400"), 0);
	assert_output(&w, job, "CREATE_CUSTOM_FIELDS", "custom_fields_created", "[\"Visits\"]");
	struct json *cals = calendars_of(state, loc_id);
	ck_assert_int_eq(json_len(cals), 2);
	ck_assert_int_eq(route_count(&w, "POST /calendars/", "200"), 2);
	assert_output(&w, job, "CREATE_CALENDARS", "calendars_created", "[\"Cleanings\"]");
	ck_assert_int_ge(
		tl_sqlf_n(w.db, "SELECT attempt FROM provisioning_jobs WHERE id = '%s'", job), 4);
	json_free(cals);
	json_free(state);
	free(loc_id);
	free(st);
	free(job);
	free(settings);
	free(cal);
	world_stop(&w);
}
END_TEST

/* A bad config of a go-live step is refused when the pipeline is saved,
 * naming the entry and the key; the step catalogue describes each step. */
START_TEST(golive_config_errors_named_at_save)
{
	struct world w;
	world_start(&w);
	char *auth = hagent_admin_header(&w.agent);
	const char *h[] = {"Content-Type: application/json", auth, NULL};
	char *url = xasprintf("%s/api/v1/agencies/%s", w.agent.base, w.agency);
	char *out;
	long st = tl_http(
		"PATCH", url, h,
		"{\"settings\":{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
		"{\"step\":\"BUY_PHONE_NUMBER\",\"config\":{\"number_type\":\"landline\"}},"
		"{\"step\":\"CREATE_CUSTOM_FIELDS\",\"config\":{\"fields\":[{\"name\":\"A\","
		"\"data_type\":\"TEXTY\"}]}},{\"step\":\"CREATE_CALENDARS\",\"config\":{}},"
		"{\"step\":\"SET_REBILLING\",\"config\":{\"products\":[{\"product\":\"sms\"}]}},"
		"{\"step\":\"ENABLE_SAAS\",\"config\":{\"plan\":\"pro\"}},"
		"{\"step\":\"LOAD_SNAPSHOT\",\"config\":{\"override\":\"yes\"}},"
		"{\"step\":\"ADD_MENU_LINKS\",\"config\":{\"links\":[{\"title\":\"x\","
		"\"url\":\"not a url\"}]}},"
		"{\"step\":\"SET_USER_PERMISSIONS\",\"config\":{\"permissions\":true}}]}}",
		&out);
	ck_assert_msg(st == 422, "%ld %s", st, out);
	static const char *const fields[] = {"settings.pipeline[1].config.number_type",
					     "settings.pipeline[2].config.fields[0].data_type",
					     "settings.pipeline[3].config.calendars",
					     "settings.pipeline[4].config.products[0].product",
					     "settings.pipeline[5].config.plan",
					     "settings.pipeline[6].config.override",
					     "settings.pipeline[7].config.links[0].url",
					     "settings.pipeline[8].config.permissions"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		char *want = xasprintf("\"field\":\"%s\"", fields[i]);
		ck_assert_msg(strstr(out, want), "no %s in %s", want, out);
		free(want);
	}
	free(out);
	free(url);
	url = xasprintf("%s/api/v1/steps", w.agent.base);
	st = tl_http("GET", url, h, NULL, &out);
	ck_assert_msg(st == 200, "%ld %s", st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	static const char *const steps[] = {"BUY_PHONE_NUMBER", "CREATE_CUSTOM_FIELDS",
					    "CREATE_CALENDARS", "ENABLE_SAAS",
					    "SET_REBILLING",	"LOAD_SNAPSHOT",
					    "ADD_MENU_LINKS",	"SET_USER_PERMISSIONS"};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct json *s = find_by(json_get(j, "items"), "name", steps[i]);
		ck_assert_msg(s && json_get_str(s, "description") && json_get(s, "config_schema"),
			      "%s not described in %s", steps[i], out);
	}
	json_free(j);
	free(out);
	free(url);
	free(auth);
	world_stop(&w);
}
END_TEST

/* LOAD_SNAPSHOT loads into the location; the same snapshot again is refused
 * (GHL would duplicate its assets) until the pipeline says override. */
START_TEST(load_snapshot_once_unless_override)
{
	struct world w;
	world_start(&w);
	set_pipeline(
		&w,
		"{\"pipeline\":[{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},{\"step\":\"LOAD_SNAPSHOT\","
		"\"config\":{\"snapshot_id\":\"snap-dental-001\"}}]}");
	char *job = add_job(&w, CLIENT, NULL);
	assert_completed(&w, job);
	assert_output(&w, job, "LOAD_SNAPSHOT", "snapshot_loaded", "true");
	assert_output(&w, job, "LOAD_SNAPSHOT", "ghl_snapshot_id", "snap-dental-001");
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_str_eq(json_get_str(json_get(loc, "snapshotPush"), "snapshotId"),
			 "snap-dental-001");
	json_free(state);

	char *again = add_job(&w, CLIENT, NULL);
	char *st = wait_job(&w, again, 20000);
	ck_assert_str_eq(st, "FAILED");
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", again);
	ck_assert_msg(strstr(err, "LOAD_SNAPSHOT") && strstr(err, "already loaded") &&
			      strstr(err, "override"),
		      "%s", err);
	ck_assert_int_eq(route_count(&w, "PUT /locations/{locationId}", "200"), 1);

	set_pipeline(
		&w,
		"{\"pipeline\":[{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},{\"step\":\"LOAD_SNAPSHOT\","
		"\"config\":{\"snapshot_id\":\"snap-dental-001\",\"override\":true}}]}");
	char *third = add_job(&w, CLIENT, NULL);
	assert_completed(&w, third);
	ck_assert_int_eq(route_count(&w, "PUT /locations/{locationId}", "200"), 2);
	free(third);
	free(err);
	free(st);
	free(again);
	free(loc_id);
	free(job);
	world_stop(&w);
}
END_TEST

/* A job that fails for good with "on_failure": "rollback": the fields and
 * menu links it made are deleted, and CREATE_LOCATION with "rollback": "pause" pauses the
 * location (POST /saas/pause) instead of deleting it, and says so. */
START_TEST(golive_rollback_deletes_fields_and_pauses_location)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w,
		     "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\",\"config\":{\"rollback\":"
		     "\"pause\"}}," GOLIVE_FIELDS "," GOLIVE_MENUS ",{\"step\":\"CREATE_USER\"}],"
		     "\"on_failure\":\"rollback\"}");
	/* CREATE_USER fails for good: the client has no first/last name */
	char *job = add_job(&w, "{\"name\":\"Roll Back\",\"email\":\"rb@x.example\"}", NULL);
	char *st = wait_job(&w, job, 20000);
	ck_assert_str_eq(st, "FAILED");
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_msg(strstr(err, "rollback: undid ADD_MENU_LINKS; undid CREATE_CUSTOM_FIELDS; "
				  "undid CREATE_LOCATION"),
		      "%s", err);
	char *loc_id = q1(&w, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *loc = find_by(json_get(state, "locations"), "id", loc_id);
	ck_assert_msg(loc, "the location was deleted, not paused");
	ck_assert_int_eq(json_len(json_get(loc, "customFields")), 0);
	ck_assert_int_eq(json_get_bool(golive_of(state, "paused", NULL), loc_id), 1);
	ck_assert_int_eq(json_len(golive_of(state, "menus", NULL)), 0);
	char *log = q1(&w,
		       "SELECT string_agg(l->>'message', ' | ') FROM provisioning_logs, "
		       "jsonb_array_elements(details_json->'log') l WHERE job_id = '%s' AND "
		       "step = 'CREATE_LOCATION' AND details_json->>'compensate' = 'true'",
		       job);
	ck_assert_msg(strstr(log, "rollback: pause"), "%s", log);
	free(log);
	json_free(state);
	free(loc_id);
	free(err);
	free(st);
	free(job);
	world_stop(&w);
}
END_TEST

/* Rollback of SET_USER_PERMISSIONS: a later step fails for good (a snapshot
 * GHL does not have), and the user gets the permissions it had back. */
START_TEST(golive_rollback_restores_user_permissions)
{
	struct world w;
	world_start(&w);
	set_pipeline(&w, "{\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},{\"step\":\"CREATE_USER\"},"
			 "{\"step\":\"SET_USER_PERMISSIONS\",\"config\":{\"permissions\":"
			 "{\"campaignsEnabled\":false}}},{\"step\":\"LOAD_SNAPSHOT\",\"config\":"
			 "{\"snapshot_id\":\"snap-not-in-ghl\"}}],\"on_failure\":\"rollback\"}");
	char *job = add_job(&w, CLIENT, NULL);
	char *st = wait_job(&w, job, 20000);
	ck_assert_str_eq(st, "FAILED");
	char *err = q1(&w, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'", job);
	ck_assert_msg(strstr(err, "LOAD_SNAPSHOT") && strstr(err, "undid SET_USER_PERMISSIONS"),
		      "%s", err);
	/* set to false, then put back as it was */
	ck_assert_int_eq(route_count(&w, "PUT /users/{userId}", "200"), 2);
	struct json *state = hsim_admin(&w.sim, "GET", "state", NULL);
	struct json *perm = json_get(json_at(json_get(state, "users"), 0), "permissions");
	ck_assert_int_eq(json_get_bool(perm, "campaignsEnabled"), 1);
	json_free(state);
	free(err);
	free(st);
	free(job);
	world_stop(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("steps");
	TCase *tc = tcase_create("steps");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, full_pipeline_as_ghl_sees_it);
	tcase_add_test(tc, interrupted_attempts_are_reused_not_duplicated);
	tcase_add_test(tc, location_without_prospect_info_is_reused);
	tcase_add_test(tc, snapshot_problems_fail_permanently);
	tcase_add_test(tc, custom_value_names_with_any_character);
	tcase_add_test(tc, golive_pipeline_as_ghl_sees_it);
	tcase_add_test(tc, golive_crash_between_ghl_call_and_journal);
	tcase_add_test(tc, golive_config_errors_named_at_save);
	tcase_add_test(tc, load_snapshot_once_unless_override);
	tcase_add_test(tc, golive_rollback_deletes_fields_and_pauses_location);
	tcase_add_test(tc, golive_rollback_restores_user_permissions);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
