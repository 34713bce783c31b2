/* test_security.c — regression tests for the attack review (issue 10): hostile
 * JSON bodies before authentication (the daemon keeps answering /healthz and
 * names the limit), parallel wrong passwords (at most the limit get 401, the
 * rest 429), a bounded bcrypt queue, deleting an agency revokes its API keys
 * and user links, and agency settings (secrets write-only, a ceiling on
 * max_concurrent_jobs, unknown keys refused). Each case runs a real
 * `ghl-agent serve` on its own database. */
#include "ghl_harness.h"

#include <pthread.h>
#include <time.h>

#define PW_AA "agency admin password 1"
#define PW_SUPPORT "support password 12345"
#define HOOK_SECRET "hook-secret-0123456789-abcdef"

static void assert_in(const char *hay, const char *needle)
{
	ck_assert_msg(hay && strstr(hay, needle), "\"%s\" not in: %.600s", needle, hay);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One API request as token (session or API key; NULL: none). */
static void api(struct hagent *a, struct hresp *r, const char *token, const char *method,
		const char *path, const char *body)
{
	char *url = hagent_url(a, path);
	char *authz = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	hhttp(r, method, url, h, body, body ? strlen(body) : 0);
	free(authz);
	free(url);
}

/* A new API key of agency, made by admin (a session token); malloc'd. */
static char *new_key(struct hagent *a, const char *admin, const char *agency)
{
	char *path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	struct hresp r;
	api(a, &r, admin, "POST", path, "{\"name\":\"machine\"}");
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	char *key = xstrdup(json_get_str(j, "key"));
	json_free(j);
	hresp_free(&r);
	free(path);
	return key;
}

static char *new_agency(PGconn *db, const char *name)
{
	return tl_sqlf(db,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at) VALUES"
		       " ('%s', 'ghl-%s', '', '', now()) RETURNING id",
		       name, name);
}

/* ---- /healthz while hostile bodies are handled ---------------------------- */

struct watcher {
	char url[128];
	volatile int stop;
	int64_t worst_ms;      /* the slowest /healthz answer seen */
	volatile int failures; /* answers other than 200 */
	volatile int answered; /* 200s */
	pthread_t th;
};

static void *watch(void *arg)
{
	struct watcher *w = arg;
	while (!w->stop) {
		int64_t t0 = mono_ms();
		long st = tl_http("GET", w->url, NULL, NULL, NULL);
		int64_t dt = mono_ms() - t0;
		if (st != 200)
			w->failures++;
		else
			w->answered++;
		if (dt > w->worst_ms)
			w->worst_ms = dt;
		usleep(20000);
	}
	return NULL;
}

static void watcher_start(struct watcher *w, struct hagent *a)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->url, sizeof(w->url), "%s/healthz", a->base);
	ck_assert_int_eq(pthread_create(&w->th, NULL, watch, w), 0);
	/* watching before the first body is sent */
	for (int i = 0; i < 3000 && !w->answered && !w->failures; i++)
		usleep(10000);
	ck_assert_msg(w->answered, "/healthz not answered before the bodies (%d failures)",
		      w->failures);
}

static void watcher_stop(struct watcher *w)
{
	w->stop = 1;
	pthread_join(w->th, NULL);
}

/* {"k0":0,"k1":0,…} with n members (distinct keys unless same_key). */
static char *object_of(size_t n, int same_key)
{
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s\"k%zu\":0", i ? "," : "", same_key ? (size_t)0 : i);
	buf_putc(&b, '}');
	return buf_take(&b);
}

static char *many_members(void)
{
	return object_of(90000, 0);
}
static char *members_at_limit(void)
{
	return object_of(1000, 0);
}
static char *members_over_limit(void)
{
	return object_of(1001, 0);
}
static char *duplicates_at_limit(void)
{
	return object_of(1000, 1);
}

/* {"email":[0,0,…]} with n items */
static char *array_of(size_t n)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"email\":[");
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, i ? ",0" : "0");
	buf_puts(&b, "],\"password\":\"x\"}");
	return buf_take(&b);
}

static char *items_at_limit(void)
{
	return array_of(10000);
}
static char *items_over_limit(void)
{
	return array_of(10001);
}

/* ~1 MiB: objects of 1000 members nested one in the next, as deep as allowed */
static char *wide_and_deep(void)
{
	struct buf b;
	buf_init(&b);
	int depth = 30;
	for (int d = 0; d < depth; d++) {
		buf_putc(&b, '{');
		for (int i = 0; i < 999; i++)
			buf_printf(&b, "\"m%d\":%d,", i, i);
		buf_puts(&b, "\"next\":");
	}
	buf_puts(&b, "0");
	for (int d = 0; d < depth; d++)
		buf_putc(&b, '}');
	return buf_take(&b);
}

struct hostile {
	const char *name;
	char *(*body)(void);
	long status;	  /* the answer expected */
	const char *text; /* in the answer */
};

static const struct hostile hostile_bodies[] = {
	{"90,000 distinct keys in 1 MiB (the old O(n^2) freeze)", many_members, 413,
	 "1000 members"},
	{"1,001 members: one over the limit", members_over_limit, 413, "1000 members"},
	{"1,000 distinct keys: the most the limit allows", members_at_limit, 422, "unknown_fields"},
	{"1,000 copies of one key", duplicates_at_limit, 422, "duplicate field"},
	{"10,001 array items: one over the limit", items_over_limit, 413, "10000 items"},
	{"10,000 array items: the most the limit allows", items_at_limit, 422, "expected string"},
	{"30 nested objects of 1,000 members", wide_and_deep, 422, "unknown field"},
};

START_TEST(hostile_bodies_before_authentication)
{
	char *dsn = tl_create_migrated_db("sec_bodies");
	struct hagent a;
	hagent_start(&a, dsn, NULL, NULL);
	struct watcher w;
	watcher_start(&w, &a);
	char *url = hagent_url(&a, "/api/v1/auth/login");
	const char *h[] = {"Content-Type: application/json", NULL};
	for (size_t i = 0; i < sizeof(hostile_bodies) / sizeof(hostile_bodies[0]); i++) {
		const struct hostile *t = &hostile_bodies[i];
		char *body = t->body();
		struct hresp r;
		int64_t t0 = mono_ms();
		hhttp(&r, "POST", url, h, body, strlen(body));
		int64_t dt = mono_ms() - t0;
		ck_assert_msg(r.status == t->status, "%s: %ld (want %ld) after %lld ms: %.300s",
			      t->name, r.status, t->status, (long long)dt, r.body);
		ck_assert_msg(strstr(r.body, t->text), "%s: \"%s\" not in %.300s", t->name, t->text,
			      r.body);
		/* the limit, named in the answer, is the outcome; the time is for the log */
		fprintf(stderr, "%s: %ld after %lld ms\n", t->name, r.status, (long long)dt);
		hresp_free(&r);
		free(body);
	}
	watcher_stop(&w);
	ck_assert_msg(w.failures == 0, "/healthz failed %d time(s)", w.failures);
	fprintf(stderr, "/healthz: %d answers while the bodies were handled, the slowest %lld ms\n",
		w.answered, (long long)w.worst_ms);
	free(url);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* ---- logins in parallel ---------------------------------------------------- */

struct tally {
	int ok, unauthorized, throttled, busy, other;
	int without_retry_after; /* 429s without the header */
};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	buf_append(arg, p, size * n);
	return size * n;
}

/* n logins at once (curl multi): bodies[i] to /api/v1/auth/login. */
static void parallel_logins(struct hagent *a, char **bodies, int n, struct tally *t)
{
	memset(t, 0, sizeof(*t));
	char *url = hagent_url(a, "/api/v1/auth/login");
	CURLM *m = curl_multi_init();
	CURL **e = xcalloc((size_t)n, sizeof(CURL *));
	struct buf *hdr = xcalloc((size_t)n, sizeof(struct buf));
	struct buf *out = xcalloc((size_t)n, sizeof(struct buf));
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	for (int i = 0; i < n; i++) {
		buf_init(&hdr[i]);
		buf_init(&out[i]);
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, sink);
		curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &hdr[i]);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &out[i]);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 120L);
		curl_easy_setopt(e[i], CURLOPT_FORBID_REUSE, 1L);
		curl_multi_add_handle(m, e[i]);
	}
	int running = 1;
	while (running) {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 200, NULL);
	}
	for (int i = 0; i < n; i++) {
		long st = 0;
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
		const char *body = buf_cstr(&out[i]);
		if (st == 200)
			t->ok++;
		else if (st == 401)
			t->unauthorized++;
		else if (st == 429 && strstr(body, "too_many_attempts"))
			t->throttled++;
		else if (st == 429 && strstr(body, "login_busy"))
			t->busy++;
		else
			t->other++;
		if (st == 429 && !strstr(buf_cstr(&hdr[i]), "Retry-After: "))
			t->without_retry_after++;
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
		buf_clear(&hdr[i]);
		buf_clear(&out[i]);
	}
	curl_slist_free_all(hl);
	curl_multi_cleanup(m);
	free(e);
	free(hdr);
	free(out);
	free(url);
}

START_TEST(parallel_wrong_passwords_are_throttled)
{
	char *dsn = tl_create_migrated_db("sec_login");
	struct hagent a;
	hagent_start(&a, dsn, NULL, NULL); /* limits 5 per account, 20 per address */
	huser_add(&a, "--email target@example.com --role SUPPORT", PW_SUPPORT);
	huser_add(&a, "--email bystander@example.com --role SUPPORT", PW_SUPPORT);
	enum { N = 40 };
	char *bodies[N];
	for (int i = 0; i < N; i++)
		bodies[i] = xasprintf("{\"email\":\"target@example.com\",\"password\":\"wrong "
				      "password %d\"}",
				      i);
	struct tally t;
	parallel_logins(&a, bodies, N, &t);
	ck_assert_msg(t.unauthorized <= 5 && t.ok == 0 && t.other == 0 &&
			      t.unauthorized + t.throttled + t.busy == N,
		      "401: %d (at most 5), 429: %d + %d busy, 200: %d, other: %d", t.unauthorized,
		      t.throttled, t.busy, t.ok, t.other);
	ck_assert_int_eq(t.without_retry_after, 0);
	/* the account is locked now, even with its password */
	struct hresp r;
	api(&a, &r, NULL, "POST", "/api/v1/auth/login",
	    "{\"email\":\"target@example.com\",\"password\":\"" PW_SUPPORT "\"}");
	ck_assert_msg(r.status == 429, "%ld %s", r.status, r.body);
	hresp_free(&r);
	/* another account from the same address still logs in */
	free(hlogin(&a, "bystander@example.com", PW_SUPPORT));
	for (int i = 0; i < N; i++)
		free(bodies[i]);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(bcrypt_queue_is_bounded)
{
	char *dsn = tl_create_migrated_db("sec_queue");
	struct hagent a;
	const char *env[] = {"GHL_AGENT_LOGIN_MAX_PENDING=2", "GHL_AGENT_AUTH_WORKERS=1",
			     "GHL_AGENT_LOGIN_MAX_FAILURES_ADDRESS=1000", NULL};
	hagent_start(&a, dsn, NULL, env);
	enum { N = 30 };
	char *bodies[N];
	for (int i = 0; i < N; i++)
		bodies[i] = xasprintf("{\"email\":\"nobody%d@example.com\",\"password\":\"wrong "
				      "password\"}",
				      i);
	struct tally t;
	parallel_logins(&a, bodies, N, &t);
	ck_assert_msg(t.busy >= 1 && t.unauthorized >= 1 && t.other == 0 && t.throttled == 0 &&
			      t.unauthorized + t.busy == N,
		      "401: %d, 429 busy: %d, 429 throttled: %d, other: %d", t.unauthorized, t.busy,
		      t.throttled, t.other);
	ck_assert_int_eq(t.without_retry_after, 0);
	for (int i = 0; i < N; i++)
		free(bodies[i]);
	ck_assert_int_eq(hagent_stop(&a), 0);
	char *log = tl_read_file(a.log);
	ck_assert_msg(!strstr(log, "wrong password"), "a password reached the log");
	free(log);
	unlink(a.log);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* ---- deleting an agency ---------------------------------------------------- */

START_TEST(agency_delete_revokes_keys_and_links)
{
	char *dsn = tl_create_migrated_db("sec_delete");
	struct hagent a;
	hagent_start(&a, dsn, NULL, NULL);
	PGconn *db = tl_connect(dsn);
	char *id = new_agency(db, "doomed");
	char *args = xasprintf("--email aa@example.com --role AGENCY_ADMIN --agency %s", id);
	huser_add(&a, args, PW_AA);
	free(args);
	const char *admin = hagent_admin_token(&a);
	char *key = new_key(&a, admin, id);
	struct hresp r;
	api(&a, &r, key, "GET", "/api/v1/me", NULL);
	ck_assert_int_eq(r.status, 200);
	hresp_free(&r);

	char *path = xasprintf("/api/v1/agencies/%s", id);
	api(&a, &r, admin, "DELETE", path, NULL);
	ck_assert_msg(r.status == 204, "%ld %s", r.status, r.body);
	hresp_free(&r);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM api_keys WHERE agency_id = '%s'"
				   " AND revoked_at IS NULL",
				   id),
			 0);
	ck_assert_int_eq(
		tl_sqlf_n(db, "SELECT count(*) FROM user_agencies WHERE agency_id = '%s'", id), 0);

	/* whatever brings the row back later (an ADMIN's reconnect), the old
	 * credentials stay dead */
	tl_execf(db, "UPDATE agencies SET deleted_at = NULL WHERE id = '%s'", id);
	api(&a, &r, key, "GET", "/api/v1/me", NULL);
	ck_assert_msg(r.status == 401, "a revived agency's old API key: %ld %s", r.status, r.body);
	hresp_free(&r);
	char *aa = hlogin(&a, "aa@example.com", PW_AA);
	api(&a, &r, aa, "GET", path, NULL);
	ck_assert_msg(r.status == 404, "a revived agency's old user link: %ld %s", r.status,
		      r.body);
	hresp_free(&r);
	free(aa);
	free(path);
	free(key);
	free(id);
	PQfinish(db);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* ---- agency settings --------------------------------------------------------- */

START_TEST(settings_secrets_ceiling_unknown_keys)
{
	char *dsn = tl_create_migrated_db("sec_settings");
	struct hagent a;
	const char *env[] = {"GHL_AGENT_MAX_CONCURRENT_JOBS_CEILING=50", NULL};
	hagent_start(&a, dsn, NULL, env);
	PGconn *db = tl_connect(dsn);
	char *id = new_agency(db, "settled");
	char *args = xasprintf("--email aa@example.com --role AGENCY_ADMIN --agency %s", id);
	huser_add(&a, args, PW_AA);
	free(args);
	huser_add(&a, "--email support@example.com --role SUPPORT", PW_SUPPORT);
	const char *admin = hagent_admin_token(&a);
	char *aa = hlogin(&a, "aa@example.com", PW_AA);
	char *support = hlogin(&a, "support@example.com", PW_SUPPORT);
	char *path = xasprintf("/api/v1/agencies/%s", id);
	char *key = new_key(&a, admin, id);
	struct hresp r;

	const char *hook =
		"{\"settings\":{\"max_concurrent_jobs\":7,\"pipeline\":["
		"{\"step\":\"NOTIFY_WEBHOOK\",\"config\":{\"url\":\"https://hooks.example/x\","
		"\"secret\":\"" HOOK_SECRET "\"}}]}}";
	api(&a, &r, aa, "PATCH", path, hook);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	ck_assert_msg(!strstr(r.body, HOOK_SECRET), "the PATCH answer shows the secret");
	hresp_free(&r);

	/* write-only: no read shows it, whoever reads */
	const char *readers[] = {admin, aa, support, key};
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		api(&a, &r, readers[i], "GET", path, NULL);
		ck_assert_msg(r.status == 200, "reader %zu: %ld %s", i, r.status, r.body);
		ck_assert_msg(!strstr(r.body, HOOK_SECRET), "reader %zu sees the secret: %s", i,
			      r.body);
		assert_in(r.body, "\"secret\":\"********\"");
		hresp_free(&r);
		api(&a, &r, readers[i], "GET", "/api/v1/agencies", NULL);
		ck_assert_msg(r.status == 200 && !strstr(r.body, HOOK_SECRET),
			      "reader %zu, list: %ld %s", i, r.status, r.body);
		hresp_free(&r);
	}

	/* what a read shows can be saved back: the stored secret stays */
	api(&a, &r, aa, "GET", path, NULL);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	hresp_free(&r);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"settings\":");
	json_write(&b, json_get(j, "settings"));
	buf_putc(&b, '}');
	json_free(j);
	api(&a, &r, aa, "PATCH", path, buf_cstr(&b));
	ck_assert_msg(r.status == 200, "saving the masked settings back: %ld %s", r.status, r.body);
	hresp_free(&r);
	buf_clear(&b);
	char *stored = tl_sqlf(db,
			       "SELECT settings_json->'pipeline'->0->'config'->>'secret'"
			       " FROM agencies WHERE id = '%s'",
			       id);
	ck_assert_str_eq(stored, HOOK_SECRET);
	free(stored);
	/* a masked secret with nothing stored to keep is refused */
	char *other = new_agency(db, "unsettled");
	char *other_path = xasprintf("/api/v1/agencies/%s", other);
	api(&a, &r, admin, "PATCH", other_path,
	    "{\"settings\":{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},"
	    "{\"step\":\"NOTIFY_WEBHOOK\",\"config\":{\"url\":\"https://hooks.example/y\","
	    "\"secret\":\"********\"}}]}}");
	ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
	assert_in(r.body, "settings.pipeline[1].config.secret");
	hresp_free(&r);
	free(other_path);
	free(other);

	/* a ceiling the agency cannot lift */
	const char *who[] = {aa, admin};
	for (size_t i = 0; i < 2; i++) {
		api(&a, &r, who[i], "PATCH", path,
		    "{\"settings\":{\"max_concurrent_jobs\":100000}}");
		ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
		assert_in(r.body, "settings.max_concurrent_jobs");
		assert_in(r.body, "max_concurrent_jobs_ceiling");
		hresp_free(&r);
	}
	api(&a, &r, aa, "PATCH", path, "{\"settings\":{\"max_concurrent_jobs\":50}}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);

	/* unknown keys are refused by name */
	api(&a, &r, aa, "PATCH", path, "{\"settings\":{\"max_concurent_jobs\":3}}");
	ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
	assert_in(r.body, "settings.max_concurent_jobs");
	hresp_free(&r);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT (settings_json->>'max_concurrent_jobs')::int"
				   " FROM agencies WHERE id = '%s'",
				   id),
			 50);

	free(key);
	free(path);
	free(support);
	free(aa);
	free(id);
	PQfinish(db);
	ck_assert_int_eq(hagent_stop(&a), 0);
	char *log = tl_read_file(a.log);
	ck_assert_msg(!strstr(log, HOOK_SECRET), "the hook secret is in the log");
	free(log);
	unlink(a.log);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("security");
	TCase *t = tcase_create("security");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, hostile_bodies_before_authentication);
	tcase_add_test(t, parallel_wrong_passwords_are_throttled);
	tcase_add_test(t, bcrypt_queue_is_bounded);
	tcase_add_test(t, agency_delete_revokes_keys_and_links);
	tcase_add_test(t, settings_secrets_ceiling_unknown_keys);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
