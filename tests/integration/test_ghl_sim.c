/* test_ghl_sim.c — drives the real ghl-sim binary over HTTP.
 *
 * Each test starts its own simulator on a free port (--listen 127.0.0.1:0; the
 * chosen port is read from its first stdout line), talks to it with libcurl and
 * stops it with SIGTERM, expecting exit status 0. GHL_SIM_BIN names the binary
 * (set by ctest). No timing assertions beyond generous waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "testlib.h"

#include "json.h"
#include "util.h"

#define DEMO_COMPANY "demo-company-0001"
#define V "Version: 2021-07-28"

/* ---- the simulator process ---- */

struct sim {
	pid_t pid;
	int port;
	char base[64];
};

static const char *sim_bin(void)
{
	const char *bin = getenv("GHL_SIM_BIN");
	ck_assert_msg(bin && *bin, "GHL_SIM_BIN is not set (run through ctest)");
	return bin;
}

/* Starts ghl-sim with extra flags (NULL-terminated). */
static void sim_start(struct sim *s, const char *const *flags)
{
	const char *argv[40];
	int n = 0;
	argv[n++] = sim_bin();
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (int i = 0; flags && flags[i] && n < 38; i++)
		argv[n++] = flags[i];
	argv[n] = NULL;
	s->pid = tl_sim_spawn(argv, 0, &s->port);
	snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
}

static void sim_stop(struct sim *s)
{
	tl_stop(s->pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-sim", NULL);
}

/* ---- HTTP ---- */

struct resp {
	long status;
	struct buf body;
	struct buf headers;
	struct json *json; /* parsed body when it is JSON */
	int curl_rc;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	buf_append(arg, p, sz * n);
	return sz * n;
}

static void resp_free(struct resp *r)
{
	buf_clear(&r->body);
	buf_clear(&r->headers);
	json_free(r->json);
	memset(r, 0, sizeof *r);
}

/* method, url, headers (NULL-terminated), body (NULL for none). */
static void http_t(struct resp *r, const char *method, const char *url, const char *const *hdrs,
		   const char *body, long timeout_ms)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body);
	buf_init(&r->headers);
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	for (int i = 0; hdrs && hdrs[i]; i++)
		hl = curl_slist_append(hl, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	r->curl_rc = (int)curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (r->body.len)
		r->json = json_parse(r->body.data, r->body.len, JSON_DEFAULT_MAX_DEPTH, NULL);
}

static void http(struct resp *r, const char *method, const char *url, const char *const *hdrs,
		 const char *body)
{
	http_t(r, method, url, hdrs, body, 15000);
}

/* Value of a response header (malloc'd) or NULL. */
static char *resp_header(const struct resp *r, const char *name)
{
	size_t nl = strlen(name);
	const char *p = r->headers.data;
	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			return xstrndup(v, ll - (size_t)(v - p));
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

static char *url_of(const struct sim *s, const char *path)
{
	return xasprintf("%s%s", s->base, path);
}

/* GET/POST on the sim with an optional bearer token and JSON body. */
static void call(struct resp *r, const struct sim *s, const char *method, const char *path,
		 const char *token, const char *json_body)
{
	char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	const char *hdrs[] = {V, "Content-Type: application/json", auth, NULL};
	char *url = url_of(s, path);
	http(r, method, url, hdrs, json_body);
	free(url);
	free(auth);
}

static const char *jstr(const struct resp *r, const char *key)
{
	return json_get_str(r->json, key);
}

static int64_t jint(const struct json *o, const char *key)
{
	int64_t v = -1;
	json_get_int(o, key, &v);
	return v;
}

/* ---- OAuth helpers ---- */

/* Runs chooselocation; returns the code (malloc'd). */
static char *authorize(const struct sim *s, const char *extra)
{
	struct resp r;
	char *url = xasprintf(
		"%s/oauth/chooselocation?response_type=code&client_id=demo-client-id"
		"&redirect_uri=http%%3A%%2F%%2Flocalhost%%2Fcb&scope=locations.write&state=st%s",
		s->base, extra ? extra : "");
	http(&r, "GET", url, NULL, NULL);
	free(url);
	ck_assert_int_eq(r.status, 302);
	char *loc = resp_header(&r, "Location");
	ck_assert_ptr_nonnull(loc);
	const char *c = strstr(loc, "code=");
	ck_assert_ptr_nonnull(c);
	c += 5;
	char *code = xstrndup(c, strcspn(c, "&"));
	free(loc);
	resp_free(&r);
	return code;
}

static void token_request(struct resp *r, const struct sim *s, const char *form)
{
	char *url = url_of(s, "/oauth/token");
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	http(r, "POST", url, hdrs, form);
	free(url);
}

/* Agency token pair through the OAuth code flow. */
static void agency_tokens(const struct sim *s, const char *extra, char **access, char **refresh)
{
	char *code = authorize(s, extra);
	char *form = xasprintf("client_id=demo-client-id&client_secret=demo-client-secret"
			       "&grant_type=authorization_code&code=%s&user_type=Company",
			       code);
	struct resp r;
	token_request(&r, s, form);
	ck_assert_msg(r.status == 200, "token exchange: %ld %s", r.status, buf_cstr(&r.body));
	*access = xstrdup(jstr(&r, "access_token"));
	if (refresh)
		*refresh = xstrdup(jstr(&r, "refresh_token"));
	resp_free(&r);
	free(form);
	free(code);
}

static char *agency_token(const struct sim *s)
{
	char *at;
	agency_tokens(s, NULL, &at, NULL);
	return at;
}

static char *create_location(const struct sim *s, const char *token, const char *name,
			     const char *email, const char *snapshot)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b,
		   "{\"name\":\"%s\",\"companyId\":\"" DEMO_COMPANY "\",\"country\":\"US\","
		   "\"timezone\":\"US/Central\"",
		   name);
	if (email)
		buf_printf(
			&b,
			",\"prospectInfo\":{\"firstName\":\"Pat\",\"lastName\":\"Lee\",\"email\":\"%s\"}",
			email);
	if (snapshot)
		buf_printf(&b, ",\"snapshotId\":\"%s\"", snapshot);
	buf_putc(&b, '}');
	char *body = buf_take(&b);
	struct resp r;
	call(&r, s, "POST", "/locations/", token, body);
	ck_assert_msg(r.status == 200, "create location: %ld %s (body %s)", r.status,
		      buf_cstr(&r.body), body);
	char *id = xstrdup(jstr(&r, "id"));
	resp_free(&r);
	free(body);
	return id;
}

static char *location_token(const struct sim *s, const char *agency, const char *location)
{
	char *auth = xasprintf("Authorization: Bearer %s", agency);
	const char *hdrs[] = {V, "Content-Type: application/x-www-form-urlencoded", auth, NULL};
	char *url = url_of(s, "/oauth/locationToken");
	char *form = xasprintf("companyId=" DEMO_COMPANY "&locationId=%s", location);
	struct resp r;
	http(&r, "POST", url, hdrs, form);
	ck_assert_msg(r.status == 200, "locationToken: %ld %s", r.status, buf_cstr(&r.body));
	ck_assert_str_eq(jstr(&r, "userType"), "Location");
	ck_assert_str_eq(jstr(&r, "locationId"), location);
	char *t = xstrdup(jstr(&r, "access_token"));
	resp_free(&r);
	free(form);
	free(url);
	free(auth);
	return t;
}

static struct json *get_stats(const struct sim *s, struct resp *r)
{
	call(r, s, "GET", "/_sim/stats", NULL, NULL);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(r->json);
	return r->json;
}

static int64_t stat(const struct sim *s, const char *key)
{
	struct resp r;
	int64_t v = jint(get_stats(s, &r), key);
	resp_free(&r);
	return v;
}

/* ---- tests ---- */

START_TEST(test_oauth_code_flow)
{
	struct sim s;
	sim_start(&s, NULL);
	struct resp r;

	char *url = xasprintf(
		"%s/oauth/chooselocation?response_type=code&client_id=demo-client-id"
		"&redirect_uri=http%%3A%%2F%%2Flocalhost%%3A9%%2Fcb%%3Fx%%3D1&scope=a%%20b&state=a%%20b%%26c",
		s.base);
	http(&r, "GET", url, NULL, NULL);
	free(url);
	ck_assert_int_eq(r.status, 302);
	char *loc = resp_header(&r, "Location");
	ck_assert_ptr_nonnull(loc);
	ck_assert_msg(str_has_prefix(loc, "http://localhost:9/cb?x=1&code="), "Location: %s", loc);
	ck_assert_msg(strstr(loc, "&state=a%20b%26c") != NULL, "state not echoed url-encoded: %s",
		      loc);
	free(loc);
	resp_free(&r);

	/* bad client id -> 400 page */
	url = xasprintf(
		"%s/oauth/chooselocation?response_type=code&client_id=nope&redirect_uri=http://x/cb",
		s.base);
	http(&r, "GET", url, NULL, NULL);
	free(url);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);

	/* /v2 path works the same */
	url = xasprintf(
		"%s/v2/oauth/chooselocation?response_type=code&client_id=demo-client-id&redirect_uri=http://x/cb",
		s.base);
	http(&r, "GET", url, NULL, NULL);
	free(url);
	ck_assert_int_eq(r.status, 302);
	resp_free(&r);

	char *code = authorize(&s, NULL);
	char *form = xasprintf(
		"client_id=demo-client-id&client_secret=demo-client-secret"
		"&grant_type=authorization_code&code=%s&redirect_uri=http%%3A%%2F%%2Flocalhost%%2Fcb",
		code);
	token_request(&r, &s, form);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, buf_cstr(&r.body));
	const char *at = jstr(&r, "access_token");
	ck_assert_ptr_nonnull(at);
	ck_assert_uint_ge(strlen(at), 60);
	ck_assert_ptr_nonnull(jstr(&r, "refresh_token"));
	ck_assert_str_eq(jstr(&r, "token_type"), "Bearer");
	ck_assert_str_eq(jstr(&r, "userType"), "Company");
	ck_assert_str_eq(jstr(&r, "companyId"), DEMO_COMPANY);
	ck_assert_int_eq(jint(r.json, "expires_in"), 86399);
	ck_assert_ptr_nonnull(jstr(&r, "traceId"));
	resp_free(&r);

	/* a code is usable once */
	token_request(&r, &s, form);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(jstr(&r, "error"), "invalid_grant");
	ck_assert_ptr_nonnull(jstr(&r, "error_description"));
	resp_free(&r);
	free(form);
	free(code);

	/* bad client secret -> 401 invalid_client */
	code = authorize(&s, NULL);
	form = xasprintf(
		"client_id=demo-client-id&client_secret=wrong&grant_type=authorization_code&code=%s",
		code);
	token_request(&r, &s, form);
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(jstr(&r, "error"), "invalid_client");
	resp_free(&r);
	free(form);
	free(code);

	/* company_id= installs into a company created on the fly */
	char *at2;
	agency_tokens(&s, "&company_id=other-co-42", &at2, NULL);
	call(&r, &s, "GET", "/snapshots/?companyId=other-co-42", at2, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(json_len(json_get(r.json, "snapshots")), 4);
	resp_free(&r);
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at2, NULL);
	ck_assert_int_eq(r.status, 403);
	resp_free(&r);
	free(at2);
	sim_stop(&s);
}
END_TEST

START_TEST(test_refresh_rotation)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at, *rt;
	agency_tokens(&s, NULL, &at, &rt);
	struct resp r;
	char *form = xasprintf(
		"client_id=demo-client-id&client_secret=demo-client-secret&grant_type=refresh_token"
		"&refresh_token=%s",
		rt);
	token_request(&r, &s, form);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, buf_cstr(&r.body));
	char *rt2 = xstrdup(jstr(&r, "refresh_token"));
	char *at2 = xstrdup(jstr(&r, "access_token"));
	ck_assert_str_ne(rt2, rt);
	ck_assert_str_ne(at2, at);
	resp_free(&r);

	/* the old refresh token is spent */
	token_request(&r, &s, form);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(jstr(&r, "error"), "invalid_grant");
	resp_free(&r);
	free(form);

	/* the new one works once */
	form = xasprintf(
		"client_id=demo-client-id&client_secret=demo-client-secret&grant_type=refresh_token"
		"&refresh_token=%s",
		rt2);
	token_request(&r, &s, form);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	free(form);

	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at2, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	ck_assert_int_eq(stat(&s, "refreshes"), 2);
	ck_assert_int_eq(stat(&s, "invalid_grant"), 1);
	free(at);
	free(rt);
	free(at2);
	free(rt2);
	sim_stop(&s);
}
END_TEST

static void assert_401(const struct resp *r)
{
	ck_assert_int_eq(r->status, 401);
	ck_assert_int_eq(jint(r->json, "statusCode"), 401);
	ck_assert_str_eq(json_get_str(r->json, "message"),
			 "Invalid token: access token is invalid");
	ck_assert_str_eq(json_get_str(r->json, "error"), "Unauthorized");
}

START_TEST(test_access_token_expiry)
{
	struct sim s;
	const char *flags[] = {"--access-ttl", "1", NULL};
	sim_start(&s, flags);
	char *at;
	agency_tokens(&s, NULL, &at, NULL);
	struct resp r;
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	/* asked again until it is refused (a 200 meanwhile: not yet a second old) */
	int64_t end = now_monotonic_ms() + 30000;
	for (;;) {
		call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
		if (r.status != 200 || now_monotonic_ms() > end)
			break;
		resp_free(&r);
		usleep(100000);
	}
	assert_401(&r);
	resp_free(&r);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_expire_tokens_admin)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	struct resp r;
	char *body = xasprintf("{\"token\":\"%s\"}", at);
	call(&r, &s, "POST", "/_sim/expire-tokens", NULL, body);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jint(r.json, "expired"), 1);
	resp_free(&r);
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	assert_401(&r);
	resp_free(&r);
	free(body);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_token_class_version_routes)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "Class Test", NULL, NULL);
	char *lt = location_token(&s, at, lid);
	struct resp r;

	/* location token on an agency endpoint */
	call(&r, &s, "POST", "/locations/", lt,
	     "{\"name\":\"x\",\"companyId\":\"" DEMO_COMPANY "\"}");
	assert_401(&r);
	resp_free(&r);
	/* agency token on a location endpoint */
	char *path = xasprintf("/locations/%s/customValues", lid);
	call(&r, &s, "GET", path, at, NULL);
	assert_401(&r);
	resp_free(&r);
	/* garbage and missing tokens */
	call(&r, &s, "GET", path, "ghlsim_at_not-a-token", NULL);
	assert_401(&r);
	resp_free(&r);
	call(&r, &s, "GET", path, NULL, NULL);
	assert_401(&r);
	resp_free(&r);
	free(path);

	/* missing Version -> 400 */
	char *auth = xasprintf("Authorization: Bearer %s", at);
	const char *hdrs[] = {auth, NULL};
	char *url = url_of(&s, "/snapshots/?companyId=" DEMO_COMPANY);
	http(&r, "GET", url, hdrs, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jint(r.json, "statusCode"), 400);
	ck_assert_str_eq(jstr(&r, "message"), "Bad Request");
	resp_free(&r);
	/* the three accepted versions */
	static const char *const versions[] = {"Version: 2021-07-28", "Version: 2021-04-15",
					       "Version: 2023-02-21"};
	for (int i = 0; i < 3; i++) {
		const char *h2[] = {auth, versions[i], NULL};
		http(&r, "GET", url, h2, NULL);
		ck_assert_int_eq(r.status, 200);
		resp_free(&r);
	}
	const char *h3[] = {auth, "Version: 1999-01-01", NULL};
	http(&r, "GET", url, h3, NULL);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	free(url);
	free(auth);

	/* unknown route */
	call(&r, &s, "GET", "/no/such/route", at, NULL);
	ck_assert_int_eq(r.status, 404);
	ck_assert_int_eq(jint(r.json, "statusCode"), 404);
	ck_assert_str_eq(jstr(&r, "error"), "Not Found");
	char *trace = resp_header(&r, "X-Trace-Id");
	ck_assert_ptr_nonnull(trace);
	ck_assert_str_eq(trace, jstr(&r, "traceId"));
	free(trace);
	resp_free(&r);
	free(lt);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

static int msg_has(const struct json *j, const char *text)
{
	const struct json *m = json_get(j, "message");
	for (size_t i = 0; i < json_len(m); i++)
		if (json_at(m, i)->type == JSON_STRING && str_eq(json_at(m, i)->u.str.s, text))
			return 1;
	return 0;
}

START_TEST(test_locations_crud)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	struct resp r;

	call(&r, &s, "POST", "/locations/", at, "{\"companyId\":\"" DEMO_COMPANY "\"}");
	ck_assert_int_eq(r.status, 422);
	ck_assert_int_eq(jint(r.json, "statusCode"), 422);
	ck_assert_str_eq(jstr(&r, "error"), "Unprocessable Entity");
	ck_assert_int_eq(json_get(r.json, "message")->type, JSON_ARRAY);
	ck_assert_msg(msg_has(r.json, "name should not be empty"), "%s", buf_cstr(&r.body));
	resp_free(&r);

	call(&r, &s, "POST", "/locations/", at,
	     "{\"name\":\"A\",\"companyId\":\"" DEMO_COMPANY "\",\"country\":\"USA\"}");
	ck_assert_int_eq(r.status, 422);
	resp_free(&r);
	call(&r, &s, "POST", "/locations/", at,
	     "{\"name\":\"A\",\"companyId\":\"" DEMO_COMPANY "\",\"snapshotId\":\"snap-missing\"}");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	call(&r, &s, "POST", "/locations/", at, "{not json");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);

	char *lid = create_location(&s, at, "Bright Smiles", "owner@bright.example",
				    "snap-dental-001");
	ck_assert_uint_eq(strlen(lid), 20);
	char *path = xasprintf("/locations/%s", lid);
	call(&r, &s, "GET", path, at, NULL);
	ck_assert_int_eq(r.status, 200);
	const struct json *loc = json_get(r.json, "location");
	ck_assert_str_eq(json_get_str(loc, "id"), lid);
	ck_assert_str_eq(json_get_str(loc, "name"), "Bright Smiles");
	ck_assert_str_eq(json_get_str(loc, "email"), "owner@bright.example");
	ck_assert_str_eq(json_get_str(loc, "companyId"), DEMO_COMPANY);
	resp_free(&r);

	call(&r, &s, "GET",
	     "/locations/search?companyId=" DEMO_COMPANY
	     "&email=OWNER@bright.example&skip=0&limit=10&order=asc",
	     at, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(json_len(json_get(r.json, "locations")), 1);
	ck_assert_str_eq(json_get_str(json_at(json_get(r.json, "locations"), 0), "id"), lid);
	resp_free(&r);
	call(&r, &s, "GET", "/locations/search?companyId=" DEMO_COMPANY "&email=nobody@x.example",
	     at, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "locations")), 0);
	resp_free(&r);

	call(&r, &s, "PUT", path, at, "{\"name\":\"Renamed\"}");
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "companyId should not be empty"));
	resp_free(&r);
	call(&r, &s, "PUT", path, at, "{\"name\":\"Renamed\",\"companyId\":\"" DEMO_COMPANY "\"}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jstr(&r, "name"), "Renamed");
	resp_free(&r);

	call(&r, &s, "DELETE", path, at, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(json_get_bool(r.json, "success"), 1);
	resp_free(&r);
	call(&r, &s, "GET", path, at, NULL);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);
	ck_assert_int_eq(stat(&s, "locations_created"), 1);
	free(path);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_snapshots)
{
	struct sim s;
	const char *flags[] = {"--snapshot-delay-ms", "200", NULL};
	sim_start(&s, flags);
	char *at = agency_token(&s);
	struct resp r;
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 200);
	const struct json *list = json_get(r.json, "snapshots");
	static const char *const want[] = {"snap-real-estate-001", "snap-dental-001",
					   "snap-fitness-001", "snapshot-001"};
	for (size_t i = 0; i < 4; i++) {
		int found = 0;
		for (size_t k = 0; k < json_len(list); k++)
			found |= str_eq(json_get_str(json_at(list, k), "id"), want[i]);
		ck_assert_msg(found, "snapshot %s missing", want[i]);
	}
	resp_free(&r);

	char *lid = create_location(&s, at, "Homes R Us", "a@homes.example",
				    "snap-real-estate-001");
	char *path = xasprintf(
		"/snapshots/snapshot-status/snap-real-estate-001/location/%s?companyId=" DEMO_COMPANY,
		lid);
	call(&r, &s, "GET", path, at, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_get_str(json_get(r.json, "data"), "status"), "processing");
	ck_assert_str_eq(json_get_str(json_get(r.json, "data"), "locationId"), lid);
	ck_assert_uint_gt(json_len(json_get(json_get(r.json, "data"), "pending")), 0);
	resp_free(&r);
	int done = 0;
	for (int i = 0; i < 50 && !done; i++) {
		usleep(100000);
		call(&r, &s, "GET", path, at, NULL);
		ck_assert_int_eq(r.status, 200);
		const struct json *d = json_get(r.json, "data");
		if (str_eq(json_get_str(d, "status"), "completed")) {
			ck_assert_uint_eq(json_len(json_get(d, "pending")), 0);
			done = 1;
		}
		resp_free(&r);
	}
	ck_assert_msg(done, "snapshot push never completed");
	free(path);

	call(&r, &s, "POST", "/snapshots/share/link?companyId=" DEMO_COMPANY, at,
	     "{\"snapshot_id\":\"snap-dental-001\",\"share_type\":\"link\"}");
	ck_assert_int_eq(r.status, 201);
	ck_assert_ptr_nonnull(jstr(&r, "id"));
	ck_assert_ptr_nonnull(jstr(&r, "shareLink"));
	resp_free(&r);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_users)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "User Loc", NULL, NULL);
	struct resp r;
	call(&r, &s, "POST", "/users/", at,
	     "{\"companyId\":\"" DEMO_COMPANY "\",\"firstName\":\"Ann\"}");
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "email should not be empty"));
	ck_assert(msg_has(r.json, "password should not be empty"));
	resp_free(&r);

	char *body = xasprintf(
		"{\"companyId\":\"" DEMO_COMPANY "\",\"firstName\":\"Ann\",\"lastName\":\"Lee\","
		"\"email\":\"ann@clinic.example\",\"password\":\"s3cret-pass\",\"type\":\"account\","
		"\"role\":\"admin\",\"locationIds\":[\"%s\"]}",
		lid);
	call(&r, &s, "POST", "/users/", at, body);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, buf_cstr(&r.body));
	char *uid = xstrdup(jstr(&r, "id"));
	ck_assert_str_eq(jstr(&r, "email"), "ann@clinic.example");
	ck_assert_str_eq(json_get_str(json_get(r.json, "roles"), "role"), "admin");
	ck_assert_ptr_null(strstr(buf_cstr(&r.body), "s3cret-pass"));
	resp_free(&r);
	call(&r, &s, "POST", "/users/", at, body);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);

	call(&r, &s, "GET", "/users/search?companyId=" DEMO_COMPANY "&query=ann@clinic", at, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(json_len(json_get(r.json, "users")), 1);
	ck_assert_str_eq(json_get_str(json_at(json_get(r.json, "users"), 0), "id"), uid);
	resp_free(&r);
	char *q = xasprintf("/users/search?companyId=" DEMO_COMPANY "&locationId=%s", lid);
	call(&r, &s, "GET", q, at, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "users")), 1);
	resp_free(&r);
	call(&r, &s, "GET", "/users/search?companyId=" DEMO_COMPANY "&query=nobody", at, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "users")), 0);
	resp_free(&r);
	free(q);
	free(body);
	free(uid);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_location_scoped)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "Scoped", NULL, NULL);
	char *lt = location_token(&s, at, lid);
	struct resp r;

	/* custom values */
	char *cvs = xasprintf("/locations/%s/customValues", lid);
	call(&r, &s, "POST", cvs, lt, "{\"value\":\"x\"}");
	ck_assert_int_eq(r.status, 422);
	resp_free(&r);
	call(&r, &s, "POST", cvs, lt, "{\"name\":\"Office Phone\",\"value\":\"+1 555 0100\"}");
	ck_assert_int_eq(r.status, 201);
	const struct json *cv = json_get(r.json, "customValue");
	char *cvid = xstrdup(json_get_str(cv, "id"));
	ck_assert_str_eq(json_get_str(cv, "value"), "+1 555 0100");
	resp_free(&r);
	call(&r, &s, "GET", cvs, lt, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(json_len(json_get(r.json, "customValues")), 1);
	resp_free(&r);
	char *cvp = xasprintf("/locations/%s/customValues/%s", lid, cvid);
	call(&r, &s, "PUT", cvp, lt, "{\"name\":\"Office Phone\",\"value\":\"+1 555 0199\"}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_get_str(json_get(r.json, "customValue"), "value"), "+1 555 0199");
	resp_free(&r);
	call(&r, &s, "DELETE", cvp, lt, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	call(&r, &s, "GET", cvs, lt, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "customValues")), 0);
	resp_free(&r);

	/* another location's path with this token */
	char *other = create_location(&s, at, "Other", NULL, NULL);
	char *op = xasprintf("/locations/%s/customValues", other);
	call(&r, &s, "GET", op, lt, NULL);
	ck_assert_int_eq(r.status, 403);
	resp_free(&r);

	/* tags */
	char *tags = xasprintf("/locations/%s/tags", lid);
	call(&r, &s, "POST", tags, lt, "{\"name\":\"vip\"}");
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(json_get_str(json_get(r.json, "tag"), "name"), "vip");
	resp_free(&r);

	/* contacts */
	char *cbody = xasprintf(
		"{\"locationId\":\"%s\",\"firstName\":\"Jo\",\"lastName\":\"Doe\","
		"\"email\":\"jo@doe.example\",\"phone\":\"+15550100\",\"tags\":[\"new\"]}",
		lid);
	call(&r, &s, "POST", "/contacts/", lt, cbody);
	ck_assert_int_eq(r.status, 201);
	char *cid = xstrdup(json_get_str(json_get(r.json, "contact"), "id"));
	resp_free(&r);
	call(&r, &s, "POST", "/contacts/", lt, cbody);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(json_get_str(json_get(r.json, "meta"), "contactId"), cid);
	resp_free(&r);
	call(&r, &s, "POST", "/contacts/upsert", lt, cbody);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(json_get_bool(r.json, "new"), 0);
	ck_assert_str_eq(json_get_str(json_get(r.json, "contact"), "id"), cid);
	resp_free(&r);
	call(&r, &s, "POST", "/contacts/", lt, "{\"firstName\":\"No Location\"}");
	ck_assert_int_eq(r.status, 422);
	resp_free(&r);

	/* SaaS: agency token, Version 2021-04-15 */
	char *saas = xasprintf("/saas/enable-saas/%s", lid);
	char *auth = xasprintf("Authorization: Bearer %s", at);
	const char *h1[] = {"Version: 2021-04-15", "Content-Type: application/json", auth, NULL};
	char *url = url_of(&s, saas);
	http(&r, "POST", url, h1, "{\"companyId\":\"" DEMO_COMPANY "\",\"isSaaSV2\":true}");
	ck_assert_msg(r.status == 200, "%ld %s", r.status, buf_cstr(&r.body));
	ck_assert_int_eq(json_get_bool(r.json, "success"), 1);
	resp_free(&r);
	const char *h2[] = {V, "Content-Type: application/json", auth, NULL};
	http(&r, "POST", url, h2, "{\"companyId\":\"" DEMO_COMPANY "\",\"isSaaSV2\":true}");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);

	free(url);
	free(auth);
	free(saas);
	free(cid);
	free(cbody);
	free(tags);
	free(op);
	free(other);
	free(cvp);
	free(cvid);
	free(cvs);
	free(lt);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

static void assert_rl_headers(const struct resp *r, const char *max, const char *remaining)
{
	static const char *const names[] = {
		"X-RateLimit-Max", "X-RateLimit-Remaining", "X-RateLimit-Interval-Milliseconds",
		"X-RateLimit-Limit-Daily", "X-RateLimit-Daily-Remaining"};
	for (int i = 0; i < 5; i++) {
		char *v = resp_header(r, names[i]);
		ck_assert_msg(v != NULL, "header %s missing", names[i]);
		if (i == 0 && max)
			ck_assert_str_eq(v, max);
		if (i == 1 && remaining)
			ck_assert_str_eq(v, remaining);
		free(v);
	}
}

START_TEST(test_rate_limit)
{
	struct sim s;
	const char *flags[] = {"--rate-limit", "5", "--rate-window-ms", "60000", NULL};
	sim_start(&s, flags);
	char *at = agency_token(&s);
	struct resp r;
	static const char *const rem[] = {"4", "3", "2", "1", "0"};
	for (int i = 0; i < 5; i++) {
		call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
		ck_assert_int_eq(r.status, 200);
		assert_rl_headers(&r, "5", rem[i]);
		resp_free(&r);
	}
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 429);
	ck_assert_int_eq(jint(r.json, "statusCode"), 429);
	ck_assert_str_eq(jstr(&r, "message"), "Too Many Requests");
	assert_rl_headers(&r, "5", "0");
	char *ra = resp_header(&r, "Retry-After");
	ck_assert_ptr_nonnull(ra);
	ck_assert_int_gt(strtol(ra, NULL, 10), 0);
	free(ra);
	resp_free(&r);
	ck_assert_int_eq(stat(&s, "rate_limited"), 1);

	/* the 401 and OAuth answers carry the headers too */
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, "bad-token", NULL);
	ck_assert_int_eq(r.status, 401);
	assert_rl_headers(&r, "5", NULL);
	resp_free(&r);
	sim_stop(&s);
	free(at);
}
END_TEST

START_TEST(test_rate_limit_per_resource)
{
	struct sim s;
	const char *flags[] = {"--rate-limit", "3", "--rate-window-ms", "60000", NULL};
	sim_start(&s, flags);
	char *at = agency_token(&s);			       /* not rate limited: OAuth */
	char *lid = create_location(&s, at, "RL", NULL, NULL); /* company bucket: 1 */
	char *lt = location_token(&s, at, lid);		       /* 2 */
	struct resp r;
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL); /* 3 */
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 429);
	resp_free(&r);
	/* the location has its own bucket */
	char *p = xasprintf("/locations/%s/tags", lid);
	call(&r, &s, "GET", p, lt, NULL);
	ck_assert_int_eq(r.status, 200);
	assert_rl_headers(&r, "3", "2");
	resp_free(&r);
	free(p);
	free(lt);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_duplicate_locations)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *a = create_location(&s, at, "Twin", "twin@x.example", NULL);
	char *b = create_location(&s, at, "Twin", "twin@x.example", NULL);
	char *c = create_location(&s, at, "Twin", "other@x.example", NULL);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(stat(&s, "locations_created"), 3);
	ck_assert_int_eq(stat(&s, "duplicate_locations"), 1);
	struct resp r;
	struct json *st = get_stats(&s, &r);
	const struct json *route = json_get(json_get(st, "requests"), "POST /locations/");
	ck_assert_int_eq(jint(route, "200"), 3);
	resp_free(&r);
	free(a);
	free(b);
	free(c);
	free(at);
	sim_stop(&s);
}
END_TEST

START_TEST(test_faults)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	struct resp r;
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"error_rate\":1.0}");
	ck_assert_int_eq(r.status, 200);
	ck_assert(json_get(r.json, "error_rate")->u.num.d == 1.0);
	ck_assert_int_eq(jint(r.json, "rate_limit"), 100);
	resp_free(&r);
	for (int i = 0; i < 3; i++) {
		call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
		ck_assert_msg(r.status >= 500 && r.status <= 503, "status %ld", r.status);
		assert_rl_headers(&r, NULL, NULL);
		resp_free(&r);
	}
	ck_assert_int_eq(stat(&s, "errors_injected"), 3);
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"error_rate\":2}");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	call(&r, &s, "POST", "/_sim/faults", NULL,
	     "{\"error_rate\":0,\"fail_next\":1,\"fail_status\":502}");
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 502);
	resp_free(&r);
	call(&r, &s, "GET", "/snapshots/?companyId=" DEMO_COMPANY, at, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	/* timeouts: held until the client gives up, then released */
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"timeout_rate\":1}");
	resp_free(&r);
	char *auth = xasprintf("Authorization: Bearer %s", at);
	const char *hdrs[] = {V, auth, NULL};
	char *url = url_of(&s, "/snapshots/?companyId=" DEMO_COMPANY);
	http_t(&r, "GET", url, hdrs, NULL, 800);
	ck_assert_int_eq(r.curl_rc, CURLE_OPERATION_TIMEDOUT);
	resp_free(&r);
	ck_assert_int_eq(stat(&s, "timeouts_injected"), 1);
	int64_t inflight = -1;
	for (int i = 0; i < 50 && inflight != 0; i++) {
		usleep(100000);
		inflight = stat(&s, "in_flight");
	}
	ck_assert_int_eq(inflight, 0);

	/* latency: answered, just later */
	call(&r, &s, "POST", "/_sim/faults", NULL,
	     "{\"timeout_rate\":0,\"latency_ms\":100,\"jitter_ms\":20}");
	resp_free(&r);
	http(&r, "GET", url, hdrs, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	/* drop: connection closed without an answer */
	call(&r, &s, "POST", "/_sim/faults", NULL,
	     "{\"latency_ms\":0,\"jitter_ms\":0,\"drop_rate\":1}");
	resp_free(&r);
	http(&r, "GET", url, hdrs, NULL);
	ck_assert_int_ne(r.curl_rc, CURLE_OK);
	resp_free(&r);
	ck_assert_int_eq(stat(&s, "drops_injected"), 1);
	free(url);
	free(auth);
	free(at);
	sim_stop(&s);
}
END_TEST

/* A request made on a thread (it waits at the gate while the test goes on). */
struct bg_get {
	const char *url;
	const char *const *hdrs;
	struct resp r;
};

static void *bg_get_main(void *arg)
{
	struct bg_get *g = arg;
	http_t(&g->r, "GET", g->url, g->hdrs, NULL, 60000);
	return NULL;
}

/* Polls /_sim/stats gate_waiting until it is n (fails after 30 s). */
static void wait_gate_waiting(const struct sim *s, int64_t n)
{
	int64_t v = -1;
	for (int i = 0; i < 300 && v != n; i++) {
		if (i)
			usleep(100000);
		v = stat(s, "gate_waiting");
	}
	ck_assert_msg(v == n, "gate_waiting %lld, want %lld", (long long)v, (long long)n);
}

START_TEST(test_gate)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	struct resp r;
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"gate\":-1}");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"gate\":2}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jint(r.json, "gate"), 2);
	resp_free(&r);
	char *auth = xasprintf("Authorization: Bearer %s", at);
	const char *hdrs[] = {V, auth, NULL};
	char *url = url_of(&s, "/snapshots/?companyId=" DEMO_COMPANY);
	/* the first waits; the second opens the gate and both are answered */
	struct bg_get g = {url, hdrs, {0}};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bg_get_main, &g), 0);
	wait_gate_waiting(&s, 1);
	ck_assert_int_eq(stat(&s, "gates_opened"), 0);
	http(&r, "GET", url, hdrs, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(g.r.status, 200);
	resp_free(&g.r);
	ck_assert_int_eq(stat(&s, "gates_opened"), 1);
	ck_assert_int_eq(stat(&s, "gate_waiting"), 0);
	call(&r, &s, "GET", "/_sim/faults", NULL, NULL);
	ck_assert_int_eq(jint(r.json, "gate"), 0); /* off again: answers come at once */
	resp_free(&r);
	http(&r, "GET", url, hdrs, NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	/* switched off while one waits: it is answered, the gate did not open */
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"gate\":5}");
	resp_free(&r);
	ck_assert_int_eq(pthread_create(&th, NULL, bg_get_main, &g), 0);
	wait_gate_waiting(&s, 1);
	call(&r, &s, "POST", "/_sim/faults", NULL, "{\"gate\":0}");
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(g.r.status, 200);
	resp_free(&g.r);
	ck_assert_int_eq(stat(&s, "gates_opened"), 1);
	ck_assert_int_eq(stat(&s, "in_flight"), 0);
	free(url);
	free(auth);
	free(at);
	sim_stop(&s);
}
END_TEST

/* One seeded run: OAuth + first location; returns "locationId token" (malloc'd). */
static char *seeded_run(const char *seed)
{
	struct sim s;
	const char *flags[] = {"--seed", seed, NULL};
	sim_start(&s, flags);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "Seeded", NULL, NULL);
	char *out = xasprintf("%s %s", lid, at);
	free(lid);
	free(at);
	sim_stop(&s);
	return out;
}

START_TEST(test_seed_deterministic)
{
	char *a = seeded_run("42");
	char *b = seeded_run("42");
	char *c = seeded_run("43");
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_state_and_reset)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "State", NULL, NULL);
	struct resp r;
	call(&r, &s, "GET", "/_sim/state", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	const struct json *tokens = json_get(r.json, "tokens");
	int found = 0;
	for (size_t i = 0; i < json_len(tokens); i++) {
		const struct json *t = json_at(tokens, i);
		if (!str_eq(json_get_str(t, "token"), at))
			continue;
		unsigned char d[SHA256_DIGEST_LENGTH];
		char hex[65];
		SHA256((const unsigned char *)at, strlen(at), d);
		for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
			snprintf(hex + 2 * k, 3, "%02x", d[k]);
		ck_assert_str_eq(json_get_str(t, "fingerprint"), hex);
		found = 1;
	}
	ck_assert_msg(found, "access token missing from /_sim/state");
	ck_assert_uint_eq(json_len(json_get(r.json, "locations")), 1);
	ck_assert_str_eq(json_get_str(json_at(json_get(r.json, "locations"), 0), "id"), lid);
	resp_free(&r);

	call(&r, &s, "POST", "/_sim/reset", NULL, "{}");
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	call(&r, &s, "GET", "/_sim/state", NULL, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "locations")), 0);
	ck_assert_uint_eq(json_len(json_get(r.json, "tokens")), 0);
	ck_assert_str_eq(json_get_str(json_at(json_get(r.json, "companies"), 0), "id"),
			 DEMO_COMPANY);
	ck_assert_uint_eq(json_len(json_get(r.json, "snapshots")), 4);
	resp_free(&r);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

/* ---- webhooks: a one-shot HTTP listener in a thread ---- */

struct listener {
	int fd;
	int port;
	struct buf request; /* raw head + body */
	char *body;
	char *signature;
};

static void *listener_main(void *arg)
{
	struct listener *l = arg;
	int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return NULL;
	struct timeval tv = {10, 0};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char chunk[4096];
	size_t need = 0;
	for (;;) {
		ssize_t n = read(c, chunk, sizeof chunk);
		if (n <= 0)
			break;
		buf_append(&l->request, chunk, (size_t)n);
		const char *data = buf_cstr(&l->request);
		const char *end = strstr(data, "\r\n\r\n");
		if (!end)
			continue;
		if (!need) {
			const char *cl = strcasestr(data, "\r\nContent-Length:");
			need = (size_t)(end - data) + 4 + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (l->request.len >= need)
			break;
	}
	const char *data = buf_cstr(&l->request);
	const char *end = strstr(data, "\r\n\r\n");
	if (end) {
		l->body = xstrdup(end + 4);
		const char *sig = strcasestr(data, "\r\nx-ghl-signature:");
		if (sig && sig < end) {
			sig += 18;
			while (*sig == ' ')
				sig++;
			l->signature = xstrndup(sig, strcspn(sig, "\r\n"));
		}
	}
	static const char ok[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	ssize_t w = write(c, ok, sizeof ok - 1);
	(void)w;
	close(c);
	return NULL;
}

static void listener_open(struct listener *l)
{
	memset(l, 0, sizeof *l);
	buf_init(&l->request);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l->fd, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(l->fd, 4), 0);
	struct timeval tv = {10, 0}; /* accept() and read() give up after 10 s */
	setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	socklen_t sl = sizeof a;
	getsockname(l->fd, (struct sockaddr *)&a, &sl);
	l->port = ntohs(a.sin_port);
}

static EVP_PKEY *public_key_of_seed(const char *seed)
{
	char *cmd = xasprintf("'%s' --seed %s --print-webhook-key", sim_bin(), seed);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	EVP_PKEY *k = PEM_read_PUBKEY(p, NULL, NULL, NULL);
	ck_assert_int_eq(pclose(p), 0);
	free(cmd);
	ck_assert_ptr_nonnull(k);
	return k;
}

static int verify(EVP_PKEY *k, const char *body, size_t len, const char *sig_b64)
{
	unsigned char sig[128];
	int n = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)strlen(sig_b64));
	if (n < 64)
		return 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
		 EVP_DigestVerify(md, sig, 64, (const unsigned char *)body, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

START_TEST(test_webhook_signature)
{
	EVP_PKEY *pub = public_key_of_seed("7");
	struct sim s;
	const char *flags[] = {"--seed", "7", NULL};
	sim_start(&s, flags);
	struct listener l;
	listener_open(&l);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, listener_main, &l), 0);

	char *req = xasprintf("{\"url\":\"http://127.0.0.1:%d/hooks/ghl?x=1\",\"type\":\"INSTALL\","
			      "\"companyId\":\"" DEMO_COMPANY "\",\"locationId\":\"loc-1\","
			      "\"webhookId\":\"wh-123\"}",
			      l.port);
	struct resp r;
	call(&r, &s, "POST", "/_sim/webhooks/send", NULL, req);
	pthread_join(th, NULL);
	close(l.fd);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, buf_cstr(&r.body));
	ck_assert_int_eq(jint(r.json, "status"), 200);
	ck_assert_ptr_nonnull(l.body);
	ck_assert_ptr_nonnull(l.signature);
	ck_assert_str_eq(l.body, jstr(&r, "body"));
	ck_assert_str_eq(l.signature, jstr(&r, "signature"));
	ck_assert_msg(str_has_prefix(buf_cstr(&l.request), "POST /hooks/ghl?x=1 HTTP/1.1\r\n"),
		      "%s", buf_cstr(&l.request));

	ck_assert_msg(verify(pub, l.body, strlen(l.body), l.signature),
		      "signature does not verify");
	char *tampered = xstrdup(l.body);
	tampered[2] ^= 1;
	ck_assert(!verify(pub, tampered, strlen(tampered), l.signature));
	free(tampered);

	struct json *wh = json_parse(l.body, strlen(l.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_ptr_nonnull(wh);
	ck_assert_str_eq(json_get_str(wh, "type"), "INSTALL");
	ck_assert_str_eq(json_get_str(wh, "appId"), "demo-client-id");
	ck_assert_str_eq(json_get_str(wh, "companyId"), DEMO_COMPANY);
	ck_assert_str_eq(json_get_str(wh, "locationId"), "loc-1");
	ck_assert_str_eq(json_get_str(wh, "webhookId"), "wh-123");
	ck_assert_ptr_nonnull(json_get_str(wh, "timestamp"));
	ck_assert_ptr_nonnull(json_get_str(wh, "userId"));
	json_free(wh);
	resp_free(&r);

	/* a target that is not listening -> 502 */
	call(&r, &s, "POST", "/_sim/webhooks/send", NULL,
	     "{\"url\":\"http://127.0.0.1:1/x\",\"type\":\"UNINSTALL\",\"companyId\":\"c\"}");
	ck_assert_int_eq(r.status, 502);
	resp_free(&r);
	ck_assert_int_eq(stat(&s, "webhooks_sent"), 1);

	free(req);
	free(l.body);
	free(l.signature);
	buf_clear(&l.request);
	EVP_PKEY_free(pub);
	sim_stop(&s);
}
END_TEST

START_TEST(test_help_and_bad_flags)
{
	char *cmd = xasprintf("'%s' --help >/dev/null", sim_bin());
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	cmd = xasprintf("'%s' --error-rate 3 2>/dev/null", sim_bin());
	int st = system(cmd);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	free(cmd);
}
END_TEST

/* call() with another Version header. */
static void call_version(struct resp *r, const struct sim *s, const char *method, const char *path,
			 const char *token, const char *json_body, const char *version)
{
	char *auth = xasprintf("Authorization: Bearer %s", token);
	char *ver = xasprintf("Version: %s", version);
	const char *hdrs[] = {ver, "Content-Type: application/json", auth, NULL};
	char *url = url_of(s, path);
	http(r, method, url, hdrs, json_body);
	free(url);
	free(ver);
	free(auth);
}

/* The go-live endpoints (sim_phone.c, sim_calendars.c, sim_menus.c,
 * sim_saas.c, sim_user_update.c): GHL's shapes, 422 message arrays, and a
 * purchase that is idempotent by fingerprintId. */
START_TEST(test_golive_endpoints)
{
	struct sim s;
	sim_start(&s, NULL);
	char *at = agency_token(&s);
	char *lid = create_location(&s, at, "Go Live", NULL, NULL);
	char *lt = location_token(&s, at, lid);
	struct resp r;

	/* phone numbers: search, buy, the same fingerprint again, an owned number */
	char *avail = xasprintf("/phone-system/numbers/location/%s/available?countryCode=ZZ", lid);
	call(&r, &s, "GET", avail, lt, NULL);
	ck_assert_int_eq(r.status, 422);
	ck_assert(
		msg_has(r.json, "countryCode must be one of the following values: US, CA, GB, AU"));
	resp_free(&r);
	free(avail);
	avail = xasprintf("/phone-system/numbers/location/%s/available?countryCode=US&firstPart=737"
			  "&smsEnabled=true",
			  lid);
	call(&r, &s, "GET", avail, lt, NULL);
	ck_assert_int_eq(r.status, 200);
	const struct json *nums = json_get(r.json, "numbers");
	ck_assert_uint_gt(json_len(nums), 0);
	for (size_t i = 0; i < json_len(nums); i++)
		ck_assert_int_eq(json_get_bool(json_get(json_at(nums, i), "capabilities"), "SMS"),
				 1);
	char *number = xstrdup(json_get_str(json_at(nums, 0), "phoneNumber"));
	ck_assert_msg(str_has_prefix(number, "+1737"), "%s", number);
	size_t offered = json_len(nums);
	resp_free(&r);
	char *buy = xasprintf("/phone-system/numbers/location/%s/purchase", lid);
	call(&r, &s, "POST", buy, lt, "{\"phoneNumber\":\"+17375550100\",\"countryCode\":\"US\"}");
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "fingerprintId should not be empty"));
	resp_free(&r);
	char *body = xasprintf("{\"phoneNumber\":\"%s\",\"countryCode\":\"US\",\"numberType\":"
			       "\"local\",\"fingerprintId\":\"fp-1\"}",
			       number);
	call(&r, &s, "POST", buy, lt, body);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(jstr(&r, "status"), "success");
	ck_assert_str_eq(json_get_str(json_get(r.json, "data"), "phoneNumber"), number);
	resp_free(&r);
	call(&r, &s, "POST", buy, lt, body); /* a retry: the first purchase again */
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(json_get_str(json_get(r.json, "data"), "phoneNumber"), number);
	resp_free(&r);
	free(body);
	body = xasprintf("{\"phoneNumber\":\"%s\",\"countryCode\":\"US\",\"numberType\":"
			 "\"local\",\"fingerprintId\":\"fp-2\"}",
			 number);
	call(&r, &s, "POST", buy, lt, body);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(jstr(&r, "message"), "Phone number is not available");
	resp_free(&r);
	call(&r, &s, "GET", avail, lt, NULL); /* the bought number is no longer offered */
	ck_assert_uint_eq(json_len(json_get(r.json, "numbers")), offered - 1);
	resp_free(&r);
	char *active = xasprintf("/phone-system/numbers/location/%s", lid);
	call(&r, &s, "GET", active, lt, NULL);
	ck_assert_uint_eq(json_len(json_get(r.json, "numbers")), 1);
	resp_free(&r);

	/* calendars (Version 2021-04-15): 422, create, list, delete */
	call(&r, &s, "POST", "/calendars/", lt, "{\"name\":\"Demo\"}");
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	const char *cv = "2021-04-15";
	call_version(&r, &s, "POST", "/calendars/", lt,
		     "{\"name\":\"Demo\",\"calendarType\":"
		     "\"party\"}",
		     cv);
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "locationId should not be empty"));
	resp_free(&r);
	free(body);
	body = xasprintf("{\"locationId\":\"%s\",\"name\":\"Demo\",\"slotDuration\":15}", lid);
	call_version(&r, &s, "POST", "/calendars/", lt, body, cv);
	ck_assert_int_eq(r.status, 200);
	char *cal = xasprintf("/calendars/%s", json_get_str(json_get(r.json, "calendar"), "id"));
	resp_free(&r);
	char *list = xasprintf("/calendars/?locationId=%s", lid);
	call_version(&r, &s, "GET", list, lt, NULL, cv);
	ck_assert_uint_eq(json_len(json_get(r.json, "calendars")), 1);
	resp_free(&r);
	call_version(&r, &s, "DELETE", cal, lt, NULL, cv);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	call_version(&r, &s, "DELETE", cal, lt, NULL, cv);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);

	/* custom menus (agency token) */
	call(&r, &s, "POST", "/custom-menus/", at, "{\"title\":\"Portal\"}");
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "url should not be empty"));
	ck_assert(msg_has(r.json, "icon must be an object"));
	resp_free(&r);
	free(body);
	body = xasprintf(
		"{\"title\":\"Portal\",\"url\":\"https://p.example/\",\"icon\":{\"name\":"
		"\"link\",\"fontFamily\":\"fas\"},\"showOnCompany\":false,\"showOnLocation\":"
		"true,\"showToAllLocations\":false,\"openMode\":\"new_tab\",\"locations\":"
		"[\"%s\"],\"userRole\":\"all\"}",
		lid);
	call(&r, &s, "POST", "/custom-menus/", at, body);
	ck_assert_int_eq(r.status, 201);
	resp_free(&r);
	free(list);
	list = xasprintf("/custom-menus/?locationId=%s&query=port", lid);
	call(&r, &s, "GET", list, at, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(json_len(json_get(r.json, "customMenus")), 1);
	resp_free(&r);

	/* SaaS: Version 2021-04-15 only; pause; rebilling's product list */
	char *pause = xasprintf("/saas/pause/%s", lid);
	free(body);
	body = xasprintf("{\"paused\":true,\"companyId\":\"%s\"}", DEMO_COMPANY);
	call(&r, &s, "POST", pause, at, body);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	call_version(&r, &s, "POST", pause, at, body, cv);
	ck_assert_int_eq(r.status, 201);
	resp_free(&r);
	char *url = xasprintf("/saas/update-rebilling/%s", DEMO_COMPANY);
	call_version(&r, &s, "POST", url, at,
		     "{\"product\":\"sms\",\"locationIds\":[],"
		     "\"config\":{}}",
		     cv);
	ck_assert_int_eq(r.status, 422);
	ck_assert(msg_has(r.json, "product must be one of the following values: contentAI, "
				  "workflow_premium_actions, workflow_ai, conversationAI, "
				  "EmailNotification, whatsApp"));
	resp_free(&r);
	free(url);
	url = xasprintf("/saas/get-saas-subscription/%s?companyId=%s", lid, DEMO_COMPANY);
	call_version(&r, &s, "GET", url, at, NULL, cv);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jstr(&r, "saasMode"), "not_activated");
	ck_assert_int_eq(json_get_bool(r.json, "paused"), 1);
	resp_free(&r);

	free(url);
	free(pause);
	free(list);
	free(cal);
	free(active);
	free(body);
	free(buy);
	free(number);
	free(avail);
	free(lt);
	free(lid);
	free(at);
	sim_stop(&s);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("ghl_sim");
	TCase *tc = tcase_create("sim");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_help_and_bad_flags);
	tcase_add_test(tc, test_oauth_code_flow);
	tcase_add_test(tc, test_refresh_rotation);
	tcase_add_test(tc, test_access_token_expiry);
	tcase_add_test(tc, test_expire_tokens_admin);
	tcase_add_test(tc, test_token_class_version_routes);
	tcase_add_test(tc, test_locations_crud);
	tcase_add_test(tc, test_snapshots);
	tcase_add_test(tc, test_users);
	tcase_add_test(tc, test_location_scoped);
	tcase_add_test(tc, test_golive_endpoints);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_rate_limit_per_resource);
	tcase_add_test(tc, test_duplicate_locations);
	tcase_add_test(tc, test_faults);
	tcase_add_test(tc, test_gate);
	tcase_add_test(tc, test_seed_deterministic);
	tcase_add_test(tc, test_state_and_reset);
	tcase_add_test(tc, test_webhook_signature);
	suite_add_tcase(s, tc);
	return s;
}

extern char **environ;

/* The simulator reads GHL_SIM_* settings: start every run from the defaults. */
static void clear_sim_env(void)
{
	for (;;) {
		char *name = NULL;
		for (char **e = environ; *e && !name; e++)
			if (str_has_prefix(*e, "GHL_SIM_") && !str_has_prefix(*e, "GHL_SIM_BIN="))
				name = xstrndup(*e, strcspn(*e, "="));
		if (!name)
			return;
		unsetenv(name);
		free(name);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	clear_sim_env();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	SRunner *sr = srunner_create(sim_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
