/* test_web.c — the dashboard (web/, core/api/web.c).
 *
 * Static serving over real HTTP: Content-Types, the security headers (CSP,
 * X-Frame-Options, nosniff), ETag/304, unknown files and traversal attempts
 * (dot segments, encoded slashes and NULs, hidden files, symlinks, folders)
 * refused in the API error shape, and `web_dir`.
 *
 * End to end in headless Chromium, driven through WebDriver (chromedriver)
 * over plain HTTP with libcurl: log in through the form, connect an agency
 * with "Connect with GHL" (the session cookie carries /oauth/connect through
 * ghl-sim's OAuth), sync its snapshots, submit a job through the form, and
 * follow it to its step timeline. Without chromium and chromedriver that
 * case fails, saying how to install them. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ghl_harness.h"
#include "json.h"
#include "testlib.h"
#include "util.h"
#include "webdriver.h"


static char *dsn;
static struct hsim sim;
static struct hagent ag;

/* ---- plain HTTP with headers -------------------------------------------- */

struct resp {
	long status;
	char *body;
	char *headers;
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

/* path is sent exactly as given (no dot-segment squashing by curl). */
static struct resp get(const char *base, const char *method, const char *path,
		       const char *extra_header)
{
	struct resp r = {0};
	CURL *c = curl_easy_init();
	struct buf b, h;
	buf_init(&b);
	buf_init(&h);
	struct curl_slist *hl = extra_header ? curl_slist_append(NULL, extra_header) : NULL;
	char *url = xasprintf("%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	free(url);
	r.body = buf_take(&b);
	r.headers = buf_take(&h);
	return r;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	free(r->headers);
}

/* The value of header name (case-insensitive) in r, malloc'd, or NULL. */
static char *header(const struct resp *r, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = r->headers; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			return xstrndup(v, (size_t)(eol - v));
		}
		p = eol + 2;
	}
	return NULL;
}

static void assert_header(const struct resp *r, const char *name, const char *want)
{
	char *v = header(r, name);
	ck_assert_msg(v && !strcmp(v, want), "header %s: \"%s\", want \"%s\"\n%s", name,
		      v ? v : "(none)", want, r->headers);
	free(v);
}

/* A refused request: status and the API error shape with code. */
static void assert_refused(const char *base, const char *path, long status, const char *code)
{
	struct resp r = get(base, "GET", path, NULL);
	ck_assert_msg(r.status == status, "GET %s: %ld, want %ld: %s", path, r.status, status,
		      r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *e = j ? json_get(j, "error") : NULL;
	ck_assert_msg(e && str_eq(json_get_str(e, "code"), code) && json_get_str(e, "message"),
		      "GET %s: not an error with code %s: %s", path, code, r.body);
	ck_assert_msg(!strstr(r.body, "root:"), "GET %s leaked a file: %s", path, r.body);
	json_free(j);
	resp_free(&r);
}

/* ---- fixture -------------------------------------------------------------- */

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *flags[] = {"--company-id", "co-web", "--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, flags);
	dsn = tl_create_migrated_db("web");
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=200ms", NULL};
	hagent_start(&ag, dsn, &sim, extra);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

/* ---- static serving --------------------------------------------------------- */

static void assert_security_headers(const struct resp *r)
{
	char *csp = header(r, "Content-Security-Policy");
	ck_assert_msg(
		csp && strstr(csp, "default-src 'self'") && strstr(csp, "frame-ancestors 'none'") &&
			strstr(csp, "script-src 'self'") && strstr(csp, "object-src 'none'") &&
			!strstr(csp, "unsafe-inline") && !strstr(csp, "unsafe-eval"),
		"CSP: %s", csp ? csp : "(none)");
	free(csp);
	assert_header(r, "X-Frame-Options", "DENY");
	assert_header(r, "X-Content-Type-Options", "nosniff");
}

START_TEST(serves_index_and_assets)
{
	struct resp r = get(ag.base, "GET", "/", NULL);
	ck_assert_msg(r.status == 200, "GET /: %ld %s", r.status, r.body);
	assert_header(&r, "Content-Type", "text/html; charset=utf-8");
	assert_header(&r, "Cache-Control", "no-cache");
	assert_security_headers(&r);
	ck_assert_msg(strstr(r.body, "<script type=\"module\" src=\"/web/app.js\">"), "%s", r.body);
	resp_free(&r);

	static const struct {
		const char *path, *type;
	} files[] = {
		{"/web/index.html", "text/html; charset=utf-8"},
		{"/web/app.js", "text/javascript; charset=utf-8"},
		{"/web/api.js", "text/javascript; charset=utf-8"},
		{"/web/page-jobs.js", "text/javascript; charset=utf-8"},
		{"/web/page-webhooks.js", "text/javascript; charset=utf-8"},
		{"/web/style.css", "text/css; charset=utf-8"},
		{"/web/favicon.svg", "image/svg+xml"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		r = get(ag.base, "GET", files[i].path, NULL);
		ck_assert_msg(r.status == 200 && r.body[0], "GET %s: %ld", files[i].path, r.status);
		assert_header(&r, "Content-Type", files[i].type);
		assert_security_headers(&r);
		char *want = xasprintf("%s/web%s", tl_env("GHL_SOURCE_DIR"), files[i].path + 4);
		char *disk = tl_read_file(want);
		ck_assert_msg(!strcmp(disk, r.body), "%s differs from %s", files[i].path, want);
		free(disk);
		free(want);
		resp_free(&r);
	}

	/* revalidation: the ETag answers 304 without a body; HEAD has no body */
	r = get(ag.base, "GET", "/web/app.js", NULL);
	char *etag = header(&r, "ETag");
	ck_assert_msg(etag && etag[0] == '"', "ETag: %s", r.headers);
	resp_free(&r);
	char *inm = xasprintf("If-None-Match: %s", etag);
	r = get(ag.base, "GET", "/web/app.js", inm);
	ck_assert_msg(r.status == 304 && !r.body[0], "If-None-Match: %ld %s", r.status, r.body);
	resp_free(&r);
	r = get(ag.base, "GET", "/web/app.js", "If-None-Match: \"other\"");
	ck_assert_msg(r.status == 200 && r.body[0], "stale ETag: %ld", r.status);
	resp_free(&r);
	r = get(ag.base, "HEAD", "/web/style.css", NULL);
	ck_assert_msg(r.status == 200 && !r.body[0], "HEAD: %ld %s", r.status, r.body);
	assert_header(&r, "Content-Type", "text/css; charset=utf-8");
	resp_free(&r);
	free(inm);
	free(etag);
}
END_TEST

START_TEST(refuses_unknown_and_traversal)
{
	assert_refused(ag.base, "/web/nope.js", 404, "not_found");
	assert_refused(ag.base, "/web/", 404, "not_found");
	assert_refused(ag.base, "/web/.htaccess", 404, "not_found");
	assert_refused(ag.base, "/web/app.js.bak", 404, "not_found"); /* unknown extension */
	assert_refused(ag.base, "/web/README", 404, "not_found");
	assert_refused(ag.base, "/web/a%20b.js", 404, "not_found");
	assert_refused(ag.base, "/web/..", 400, "bad_path");
	assert_refused(ag.base, "/web/%2e%2e", 400, "bad_path");
	assert_refused(ag.base, "/web/.", 400, "bad_path");
	assert_refused(ag.base, "/web/app.js%00.png", 400, "bad_path");
	assert_refused(ag.base, "/web/%00", 404, "not_found"); /* decodes to "/web/" */
	/* more than one segment never reaches a file */
	assert_refused(ag.base, "/web/../../../../etc/passwd", 404, "not_found");
	assert_refused(ag.base, "/web/..%2f..%2f..%2f..%2fetc%2fpasswd", 404, "not_found");
	assert_refused(ag.base, "/web/%2fetc%2fpasswd", 404, "not_found");
	assert_refused(ag.base, "/web/..%5c..%5cetc%5cpasswd", 400, "bad_path");
	assert_refused(ag.base, "/../../etc/passwd", 404, "not_found");
	assert_refused(ag.base, "/web/sub/app.js", 404, "not_found");
	/* the API error shape also carries the page's security headers */
	struct resp r = get(ag.base, "GET", "/web/nope.js", NULL);
	assert_security_headers(&r);
	assert_header(&r, "Content-Type", "application/json");
	resp_free(&r);
	/* only GET (and HEAD) */
	r = get(ag.base, "POST", "/web/app.js", NULL);
	ck_assert_msg(r.status == 405, "POST: %ld %s", r.status, r.body);
	resp_free(&r);
}
END_TEST

/* The shipped scripts never parse data as HTML and carry no inline code. */
START_TEST(scripts_never_use_html_sinks)
{
	char *dir = xasprintf("%s/web", tl_env("GHL_SOURCE_DIR"));
	DIR *d = opendir(dir);
	ck_assert_msg(d, "opendir %s: %s", dir, strerror(errno));
	static const char *const sinks[] = {
		"innerHTML",	"outerHTML", "insertAdjacentHTML", "document.write", "eval(",
		"new Function", NULL};
	int files = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		int js = n > 3 && !strcmp(de->d_name + n - 3, ".js");
		int html = n > 5 && !strcmp(de->d_name + n - 5, ".html");
		if (!js && !html)
			continue;
		char *path = xasprintf("%s/%s", dir, de->d_name);
		char *text = tl_read_file(path);
		for (int i = 0; js && sinks[i]; i++)
			ck_assert_msg(!strstr(text, sinks[i]), "%s uses %s", path, sinks[i]);
		if (html)
			ck_assert_msg(!strstr(text, "<script>") && !strstr(text, " style=") &&
					      !strstr(text, " onclick=") &&
					      !strstr(text, " onload="),
				      "%s has inline script, style or handler", path);
		files++;
		free(text);
		free(path);
	}
	closedir(d);
	ck_assert_msg(files >= 5, "only %d scripts in %s", files, dir);
	free(dir);
}
END_TEST

/* web_dir: another folder; symlinks (even to files inside it) and folders
 * are not served. */
START_TEST(web_dir_and_symlinks)
{
	char dir[] = "/tmp/ghl-web-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char *p = xasprintf("%s/index.html", dir);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs("<!doctype html><title>custom</title>", f);
	fclose(f);
	char *link_out = xasprintf("%s/passwd.txt", dir);
	ck_assert_int_eq(symlink("/etc/passwd", link_out), 0);
	char *link_in = xasprintf("%s/again.html", dir);
	ck_assert_int_eq(symlink(p, link_in), 0);
	char *sub = xasprintf("%s/folder.js", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);

	struct hagent b;
	char *env_dir = xasprintf("GHL_AGENT_WEB_DIR=%s", dir);
	const char *extra[] = {env_dir, "GHL_AGENT_ROLES=api", NULL};
	hagent_start(&b, dsn, NULL, extra);
	struct resp r = get(b.base, "GET", "/", NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "custom"), "%ld %s", r.status, r.body);
	resp_free(&r);
	assert_refused(b.base, "/web/passwd.txt", 404, "not_found");
	assert_refused(b.base, "/web/again.html", 404, "not_found");
	assert_refused(b.base, "/web/folder.js", 404, "not_found");
	assert_refused(b.base, "/web/app.js", 404, "not_found"); /* not in this folder */
	hagent_stop(&b);
	unlink(b.log);

	unlink(link_out);
	unlink(link_in);
	unlink(p);
	rmdir(sub);
	rmdir(dir);
	free(env_dir);
	free(sub);
	free(link_in);
	free(link_out);
	free(p);
}
END_TEST

/* The browser must not outlive the test: a failed assertion exits the
 * forked test process (atexit runs), a passing one runs the checked
 * teardown, and a killed one takes chromedriver along (PDEATHSIG) and with
 * it the browser's pipe. */
static struct wd browser;

static void browser_teardown(void)
{
	wd_stop(&browser);
}

/* The OAuth result page (issue 14 item 8): styled like the dashboard, fits
 * a phone, and its button leads back to the connected agency's page. */
static void oauth_result_page(void)
{
	struct json *styled = wd_exec(&browser, "return getComputedStyle(document.querySelector("
						"'.oauth-links .button')).backgroundColor");
	ck_assert_msg(styled && styled->type == JSON_STRING &&
			      strcmp(styled->u.str.s, "rgba(0, 0, 0, 0)"),
		      "the OAuth result page's button is unstyled");
	json_free(styled);
	wd_screenshots(&browser, "oauth-connected");
	ck_assert_int_eq(wd_sideways_px(&browser, 360), 0);
	wd_assert_no_console_errors(&browser);
	wd_click(&browser, ".oauth-links a.button");
	wd_wait_text(&browser, "#agency-form h2", "Settings", 10000);
}

START_TEST(browser_end_to_end)
{
	wd_require_browser();
	hagent_admin_token(&ag); /* the harness admin (H_ADMIN_EMAIL), logged in once */
	int64_t t0 = now_monotonic_ms();
	atexit(browser_teardown);
	wd_start(&browser);

	/* log in through the form */
	char *home = xasprintf("%s/", ag.base);
	wd_go(&browser, home);
	wd_wait_text(&browser, "#login-form h1", "Log in", 10000);
	wd_type(&browser, "#login-email", H_ADMIN_EMAIL);
	wd_type(&browser, "#login-password", "wrong password!");
	wd_click(&browser, "#login-submit");
	wd_wait_text(&browser, "#login-form .form-error", "password", 10000);
	char *pw = wd_find(&browser, "#login-password");
	char *clear_path = xasprintf("/element/%s/clear", pw);
	wd_call(&browser, "POST", clear_path, "{}");
	free(clear_path);
	free(pw);
	wd_type(&browser, "#login-password", H_ADMIN_PASSWORD);
	wd_click(&browser, "#login-submit");
	wd_wait_text(&browser, "#whoami", H_ADMIN_EMAIL, 10000);
	/* the landing page is the overview; the agencies are one click away */
	wd_wait_text(&browser, "#overview-states", "Pending", 10000);
	char *agencies = xasprintf("%s/#/agencies", ag.base);
	wd_go(&browser, agencies);
	wd_wait_text(&browser, "#agency-list", "No agencies yet", 10000);
	wd_wait_text(&browser, "#nav", "Users", 2000); /* an ADMIN sees Users */
	wd_screenshots(&browser, "agencies-empty");

	/* "Connect with GHL": the cookie session takes /oauth/connect through the
	 * simulator's consent to the callback page */
	wd_click(&browser, "#connect-ghl");
	wd_wait_text(&browser, "body", "is connected", 15000);
	oauth_result_page();
	wd_go(&browser, agencies);
	wd_wait_text(&browser, "#agency-list", "co-web", 10000);
	wd_wait_text(&browser, "#agency-list", "Connected", 2000);

	/* snapshots: sync from GHL */
	char *url = xasprintf("%s/#/snapshots", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_click(&browser, "#snap-sync");
	wd_wait_text(&browser, "#flash", "added", 10000);
	wd_wait_text(&browser, "#snapshot-list", "ACTIVE", 5000);

	/* webhooks: a loopback URL refused at its field, then a subscription whose
	 * secret is shown once */
	url = xasprintf("%s/#/webhooks", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_wait_text(&browser, "#hook-form h2", "New subscription", 10000);
	wd_type(&browser, "#hook-url", "http://127.0.0.1:9/hook");
	wd_click(&browser, "#hook-create");
	wd_wait_text(&browser, "[data-field='url'] .field-error", "loopback", 10000);
	char *hu = wd_find(&browser, "#hook-url");
	char *hu_clear = xasprintf("/element/%s/clear", hu);
	wd_call(&browser, "POST", hu_clear, "{}");
	free(hu_clear);
	free(hu);
	wd_type(&browser, "#hook-url", "https://hooks.example/ghl?<b>x</b>");
	wd_click(&browser, "#hook-create");
	wd_wait_text(&browser, "#hook-secret", "whsec_", 10000);
	wd_wait_text(&browser, "#hook-list", "https://hooks.example/ghl?<b>x</b>", 10000);

	/* jobs: a validation error shown next to its field, then a job */
	url = xasprintf("%s/#/jobs", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_click(&browser, "#submit-panel summary");
	/* the fields the agency's pipeline needs are marked required (CREATE_USER's) */
	wd_wait_text(&browser, "[data-field='client_data.last_name'] .label", "Last name *", 10000);
	wd_type(&browser, "#job-name", "Bright Smiles <b>Dental</b>");
	wd_type(&browser, "#job-email", "not-an-email");
	wd_click(&browser, "#job-submit");
	wd_wait_text(&browser, "[data-field='client_data.email'] .field-error", "mail", 10000);
	char *em = wd_find(&browser, "#job-email");
	clear_path = xasprintf("/element/%s/clear", em);
	wd_call(&browser, "POST", clear_path, "{}");
	free(clear_path);
	free(em);
	wd_type(&browser, "#job-email", "owner@brightsmiles.example");
	wd_type(&browser, "#job-first-name", "Ada");
	wd_type(&browser, "#job-last-name", "Lovelace");
	wd_click(&browser, "#job-submit");
	wd_wait_text(&browser, "#flash", "Job queued", 10000);
	/* markup in data stays text */
	wd_wait_text(&browser, "#job-list", "Bright Smiles <b>Dental</b>", 10000);

	/* its detail page: the step timeline from the audit log */
	wd_click(&browser, "#job-list a.client-name");
	wd_wait_text(&browser, "#job-title", "Bright Smiles <b>Dental</b>", 10000);
	wd_wait_text(&browser, "#timeline", "CREATE_LOCATION", 20000);
	wd_wait_text(&browser, "#timeline", "COMPLETED", 20000);
	wd_wait_text(&browser, ".page-head .badge", "COMPLETED", 20000);
	char *timeline = wd_text(&browser, "#timeline");
	ck_assert_msg(timeline && strstr(timeline, "VALIDATE_SNAPSHOT") &&
			      strstr(timeline, "CREATE_USER") && strstr(timeline, "201"),
		      "timeline: %s", timeline);
	free(timeline);
	wd_screenshots(&browser, "job");

	/* CANCELLED: its badge and filter, no Retry; a running job being cancelled
	 * names the step it finishes first */
	PGconn *db = tl_connect(dsn);
	tl_execf(db, "INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		     " error_message, finished_at) SELECT agency_id, '{\"name\":\"Cancelled Co\","
		     "\"email\":\"c@x.example\"}', 'CANCELLED', 'cancelled by request', now()"
		     " FROM provisioning_jobs LIMIT 1");
	tl_execf(db,
		 "WITH j AS (INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		 " cancel_requested, started_at) SELECT agency_id, '{\"name\":\"Waiting Co\","
		 "\"email\":\"w@x.example\"}', 'IN_PROGRESS', true, now()"
		 " FROM provisioning_jobs LIMIT 1 RETURNING id)"
		 " INSERT INTO provisioning_logs (job_id, step, status) SELECT id,"
		 " 'WAIT_FOR_SNAPSHOT', 'STARTED' FROM j");
	PQfinish(db);
	url = xasprintf("%s/#/jobs?status=CANCELLED", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_wait_text(&browser, "#job-list", "Cancelled Co", 10000);
	wd_wait_text(&browser, "#job-list .badge-cancelled", "CANCELLED", 10000);
	char *retry = wd_find(&browser, "#job-list [data-action='retry']");
	ck_assert_msg(!retry, "a CANCELLED job offers Retry");
	url = xasprintf("%s/#/jobs?status=IN_PROGRESS", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_wait_text(&browser, "#job-list", "cancelling: stops after WAIT_FOR_SNAPSHOT", 10000);

	/* the job's event in the subscription's delivery log, and a redelivery */
	url = xasprintf("%s/#/webhooks", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_click(&browser, "#hook-list a.button");
	wd_wait_text(&browser, "#delivery-list", "job.completed", 15000);
	wd_click(&browser, "#delivery-list button");
	wd_wait_text(&browser, "#flash", "queued again", 10000);

	wd_assert_no_console_errors(&browser);

	/* log out: back to the form */
	wd_click(&browser, "#logout");
	wd_wait_text(&browser, "#login-form h1", "Log in", 10000);
	free(home);
	free(agencies);
	/* printed, not asserted: speed is measured by benchmarks, and a loaded machine is slow */
	fprintf(stderr, "browser walk-through took %lld ms\n",
		(long long)(now_monotonic_ms() - t0));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web");
	TCase *tc = tcase_create("static");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, serves_index_and_assets);
	tcase_add_test(tc, refuses_unknown_and_traversal);
	tcase_add_test(tc, scripts_never_use_html_sinks);
	tcase_add_test(tc, web_dir_and_symlinks);
	suite_add_tcase(s, tc);
	TCase *tb = tcase_create("browser");
	tcase_add_unchecked_fixture(tb, setup, teardown);
	tcase_add_checked_fixture(tb, NULL, browser_teardown);
	tcase_set_timeout(tb, 120);
	tcase_add_test(tb, browser_end_to_end);
	suite_add_tcase(s, tb);
	return tl_run_suite(s);
}
