/* webdriver.c — a headless Chromium driven over WebDriver (chromedriver)
 * with libcurl, for the dashboard's browser tests. See webdriver.h. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "json.h"
#include "json_builder.h"
#include "testlib.h"
#include "util.h"
#include "webdriver.h"

#define WD_ELEMENT "element-6066-11e4-a52e-4f735466cecf"

/* ---- WebDriver ------------------------------------------------------------ */

/* One WebDriver command; returns the answer's "value" (a clone, caller
 * frees) and fails the test unless the status is 200. */
struct json *wd_cmd(struct wd *w, const char *method, const char *path, const char *body)
{
	char *url = xasprintf("%s%s%s%s", w->base, w->session[0] ? "/session/" : "", w->session,
			      path);
	const char *h[] = {"Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http(method, url, h, body, &out);
	ck_assert_msg(st == 200, "WebDriver %s %s: %ld %.1000s", method, url, st, out ? out : "");
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j, "WebDriver answer is not JSON: %s", out);
	struct json *v = json_clone(json_get(j, "value"));
	json_free(j);
	free(out);
	free(url);
	return v;
}

void wd_call(struct wd *w, const char *method, const char *path, const char *body)
{
	json_free(wd_cmd(w, method, path, body));
}

/* {"using":"css selector","value":css} as JSON text, malloc'd. */
static char *css_body(const char *css)
{
	struct buf b;
	struct jw jw;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_key(&jw, "using");
	jw_string(&jw, "css selector");
	jw_key(&jw, "value");
	jw_string(&jw, css);
	jw_object_end(&jw);
	return buf_take(&b);
}

/* The element id of the first match of css, or NULL when there is none. */
char *wd_find(struct wd *w, const char *css)
{
	char *body = css_body(css);
	char *url = xasprintf("%s/session/%s/elements", w->base, w->session);
	const char *h[] = {"Content-Type: application/json", NULL};
	char *out = NULL;
	long st = tl_http("POST", url, h, body, &out);
	ck_assert_msg(st == 200, "find %s: %ld %.1000s", css, st, out);
	struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *first = json_at(json_get(j, "value"), 0);
	char *id = first && json_get_str(first, WD_ELEMENT)
			   ? xstrdup(json_get_str(first, WD_ELEMENT))
			   : NULL;
	json_free(j);
	free(out);
	free(url);
	free(body);
	return id;
}

/* The visible text of the first match of css, or NULL (malloc'd). */
char *wd_text(struct wd *w, const char *css)
{
	char *id = wd_find(w, css);
	if (!id)
		return NULL;
	char *path = xasprintf("/element/%s/text", id);
	char *url = xasprintf("%s/session/%s%s", w->base, w->session, path);
	char *out = NULL;
	long st = tl_http("GET", url, NULL, NULL, &out);
	char *text = NULL;
	if (st == 200) { /* a stale element (re-rendered meanwhile) reads as "none" */
		struct json *j = json_parse(out, strlen(out), JSON_DEFAULT_MAX_DEPTH, NULL);
		const char *t = j ? json_get_str(j, "value") : NULL;
		text = t ? xstrdup(t) : NULL;
		json_free(j);
	}
	free(out);
	free(url);
	free(path);
	free(id);
	return text;
}

/* The page's text and the browser console, for failure messages (malloc'd). */
char *wd_page_state(struct wd *w)
{
	struct json *url = wd_cmd(w, "GET", "/url", NULL);
	struct json *text = wd_cmd(w, "POST", "/execute/sync",
				   "{\"script\":\"return document.body.innerText\",\"args\":[]}");
	struct json *logs = wd_cmd(w, "POST", "/se/log", "{\"type\":\"browser\"}");
	char *lj = json_to_string(logs);
	char *s = xasprintf("URL %s\n--- page text ---\n%.1200s\n--- console ---\n%.1000s",
			    url && url->type == JSON_STRING ? url->u.str.s : "?",
			    text && text->type == JSON_STRING ? text->u.str.s : "?", lj);
	free(lj);
	json_free(url);
	json_free(text);
	json_free(logs);
	return s;
}

/* Wait until the first match of css shows text containing needle. */
void wd_wait_text(struct wd *w, const char *css, const char *needle, int timeout_ms)
{
	if (timeout_ms < TL_WAIT_MIN_MS)
		timeout_ms = TL_WAIT_MIN_MS;
	int64_t deadline = now_monotonic_ms() + timeout_ms;
	char *last = NULL;
	for (;;) {
		free(last);
		last = wd_text(w, css);
		if (last && strstr(last, needle))
			break;
		if (now_monotonic_ms() > deadline) {
			char *state = wd_page_state(w);
			ck_abort_msg("no \"%s\" in %s within %d ms (text: %.500s)\n%s", needle, css,
				     timeout_ms, last ? last : "(no element)", state);
		}
		usleep(100000);
	}
	free(last);
}

void wd_wait_empty(struct wd *w, const char *css, int timeout_ms)
{
	int64_t deadline = now_monotonic_ms() + timeout_ms;
	for (;;) {
		char *t = wd_text(w, css);
		int gone = !t || !*t;
		if (!gone && now_monotonic_ms() > deadline) {
			char *state = wd_page_state(w);
			ck_abort_msg("%s still shows \"%.300s\" after %d ms\n%s", css, t,
				     timeout_ms, state);
		}
		free(t);
		if (gone)
			return;
		usleep(100000);
	}
}

/* Wait for css to match, then click it. An element that the page re-rendered
 * between the find and the click (auto-refresh) is "stale": find it again. */
void wd_click(struct wd *w, const char *css)
{
	int64_t deadline = now_monotonic_ms() + 15000; /* past a 6 s flash message */
	for (;;) {
		char *id = wd_find(w, css);
		if (id) {
			char *url = xasprintf("%s/session/%s/element/%s/click", w->base, w->session,
					      id);
			const char *h[] = {"Content-Type: application/json", NULL};
			char *out = NULL;
			long st = tl_http("POST", url, h, "{}", &out);
			int stale = st == 404 && out && strstr(out, "stale element reference");
			/* covered for now (a flash message over it, gone after 6 s):
			 * wait, as a person would, until the deadline */
			int covered = st == 400 && out &&
				      strstr(out, "element click intercepted") &&
				      now_monotonic_ms() < deadline;
			ck_assert_msg(st == 200 || stale || covered,
				      "WebDriver click %s: %ld %.1000s", css, st, out ? out : "");
			free(out);
			free(url);
			free(id);
			if (!stale && !covered)
				return;
		}
		if (now_monotonic_ms() > deadline) {
			char *state = wd_page_state(w);
			ck_abort_msg("no element %s to click\n%s", css, state);
		}
		usleep(100000);
	}
}

void wd_type(struct wd *w, const char *css, const char *text)
{
	char *id = wd_find(w, css);
	ck_assert_msg(id, "no input %s", css);
	char *path = xasprintf("/element/%s/value", id);
	struct buf b;
	struct jw jw;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_key(&jw, "text");
	jw_string(&jw, text);
	jw_object_end(&jw);
	wd_call(w, "POST", path, buf_cstr(&b));
	buf_clear(&b);
	free(path);
	free(id);
}

void wd_go(struct wd *w, const char *url)
{
	struct buf b;
	struct jw jw;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_key(&jw, "url");
	jw_string(&jw, url);
	jw_object_end(&jw);
	wd_call(w, "POST", "/url", buf_cstr(&b));
	buf_clear(&b);
}

int wd_executable(const char *path)
{
	return access(path, X_OK) == 0;
}

/* Start chromedriver in its own process group and open a headless session. */
void wd_start(struct wd *w)
{
	memset(w, 0, sizeof(*w));
	int port = tl_free_port();
	snprintf(w->base, sizeof(w->base), "http://127.0.0.1:%d", port);
	snprintf(w->profile, sizeof(w->profile), "/tmp/ghl-web-chrome-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w->profile));
	snprintf(w->log, sizeof(w->log), "/tmp/ghl-web-driver-XXXXXX");
	close(mkstemp(w->log));
	char *port_arg = xasprintf("--port=%d", port);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0); /* chromedriver and its browser: one group to kill */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(w->log, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		char *argv[] = {(char *)CHROMEDRIVER, port_arg, NULL};
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	tl_track(pid, 1); /* the group dies with the test, whatever happens */
	w->driver = pid;
	free(port_arg);
	char *status = xasprintf("%s/status", w->base);
	ck_assert_msg(tl_wait_http(status, 10000), "chromedriver did not start: %s",
		      tl_read_file(w->log));
	free(status);

	struct buf b;
	struct jw jw;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_key(&jw, "capabilities");
	jw_object_begin(&jw);
	jw_key(&jw, "alwaysMatch");
	jw_object_begin(&jw);
	jw_key(&jw, "browserName");
	jw_string(&jw, "chrome");
	jw_key(&jw, "goog:loggingPrefs");
	jw_raw(&jw, "{\"browser\":\"ALL\"}");
	jw_key(&jw, "goog:chromeOptions");
	jw_object_begin(&jw);
	jw_key(&jw, "binary");
	jw_string(&jw, CHROMIUM);
	jw_key(&jw, "args");
	jw_array_begin(&jw);
	static const char *const args[] = {"--headless=new",
					   "--no-sandbox",
					   "--disable-gpu",
					   "--disable-dev-shm-usage",
					   "--disable-background-networking",
					   "--disable-component-update",
					   "--no-first-run",
					   "--disable-sync",
					   "--window-size=1280,900"};
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		jw_string(&jw, args[i]);
	char *profile = xasprintf("--user-data-dir=%s", w->profile);
	jw_string(&jw, profile);
	free(profile);
	jw_array_end(&jw);
	jw_object_end(&jw);
	jw_object_end(&jw);
	jw_object_end(&jw);
	jw_object_end(&jw);
	struct json *v = wd_cmd(w, "POST", "/session", buf_cstr(&b));
	buf_clear(&b);
	const char *sid = json_get_str(v, "sessionId");
	ck_assert_msg(sid, "no sessionId: %s", tl_read_file(w->log));
	snprintf(w->session, sizeof(w->session), "%s", sid);
	json_free(v);
}

/* Idempotent: ends the session, the driver's process group, the profile. */
void wd_stop(struct wd *w)
{
	if (w->session[0]) {
		char *url = xasprintf("%s/session/%s", w->base, w->session);
		tl_http("DELETE", url, NULL, NULL, NULL);
		free(url);
	}
	if (w->driver > 0) {
		kill(-w->driver, SIGTERM);
		int st;
		if (tl_wait_exit(w->driver, 3000, &st)) {
			kill(-w->driver, SIGKILL);
			tl_kill(w->driver);
		}
	}
	char *rm = xasprintf("rm -rf '%s'", w->profile);
	if (w->profile[0] && system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", w->profile);
	free(rm);
	if (w->log[0])
		unlink(w->log);
	memset(w, 0, sizeof(*w));
}

void wd_require_browser(void)
{
	ck_assert_msg(wd_executable(CHROMIUM) && wd_executable(CHROMEDRIVER), "%s (missing: %s%s)",
		      INSTALL_HINT, wd_executable(CHROMIUM) ? "" : CHROMIUM " ",
		      wd_executable(CHROMEDRIVER) ? "" : CHROMEDRIVER);
}

struct json *wd_exec(struct wd *w, const char *script)
{
	struct buf b;
	struct jw jw;
	buf_init(&b);
	jw_init(&jw, &b);
	jw_object_begin(&jw);
	jw_key(&jw, "script");
	jw_string(&jw, script);
	jw_key(&jw, "args");
	jw_raw(&jw, "[]");
	jw_object_end(&jw);
	struct json *v = wd_cmd(w, "POST", "/execute/sync", buf_cstr(&b));
	buf_clear(&b);
	return v;
}

char *wd_exec_text(struct wd *w, const char *script)
{
	struct json *v = wd_exec(w, script);
	ck_assert_msg(v && v->type == JSON_STRING, "no text from the script: %.200s", script);
	char *out = xstrdup(v->u.str.s);
	json_free(v);
	return out;
}

void wd_clear(struct wd *w, const char *css)
{
	char *id = wd_find(w, css);
	ck_assert_msg(id, "no input %s", css);
	char *path = xasprintf("/element/%s/clear", id);
	wd_call(w, "POST", path, "{}");
	free(path);
	free(id);
}

void wd_login(struct wd *w, const char *base, const char *email, const char *password)
{
	char *home = xasprintf("%s/", base);
	wd_go(w, home);
	free(home);
	wd_wait_text(w, "#login-form h1", "Log in", 10000);
	wd_type(w, "#login-email", email);
	wd_type(w, "#login-password", password);
	wd_click(w, "#login-submit");
	wd_wait_text(w, "#whoami", email, 10000);
}

/* window.inner<dim> (Width, Height), or -1 when the page does not say. */
static int inner(struct wd *w, const char *dim)
{
	char *js = xasprintf("return window.inner%s", dim);
	struct json *v = wd_exec(w, js);
	int px = v && v->type == JSON_NUMBER ? (int)v->u.num.d : -1;
	json_free(v);
	free(js);
	return px;
}

/* The page reached want px in dimension dim: exactly, or (a window frame
 * around the page) it moved from before and reads the same twice in a row. */
static int settled(int now, int last, int before, int want)
{
	return now == want || (before != want && now != before && now == last);
}

/* Resize the window to width × height, then wait until the page sees it:
 * window.innerWidth is width and window.innerHeight is inner_h (or any,
 * when inner_h < 0), or each has moved and settled (settled()). */
static void resize(struct wd *w, int width, int height, int inner_h)
{
	int before_w = inner(w, "Width"), before_h = inner(w, "Height");
	char *body = xasprintf("{\"width\":%d,\"height\":%d}", width, height);
	wd_call(w, "POST", "/window/rect", body);
	free(body);
	int64_t deadline = now_monotonic_ms() + 5000;
	int last_w = -1, last_h = -1;
	for (;;) {
		int now_w = inner(w, "Width"), now_h = inner_h < 0 ? -1 : inner(w, "Height");
		if (settled(now_w, last_w, before_w, width) &&
		    (inner_h < 0 || settled(now_h, last_h, before_h, inner_h)))
			return;
		ck_assert_msg(now_monotonic_ms() < deadline,
			      "the window did not become %d × %d px (inner %d × %d, was %d × %d)",
			      width, height, now_w, now_h, before_w, before_h);
		last_w = now_w;
		last_h = now_h;
		usleep(20000);
	}
}

void wd_width(struct wd *w, int width)
{
	resize(w, width, 900, -1);
}

/* The window as tall as the page at width (at most 6000 px), so that a
 * screenshot shows all of it. */
static void whole_page(struct wd *w, int width)
{
	wd_width(w, width);
	struct json *v = wd_exec(w, "var frame = window.outerHeight - window.innerHeight;"
				    " var outer = Math.min(6000,"
				    "  document.scrollingElement.scrollHeight + frame);"
				    " return [outer, outer - frame];");
	int outer = json_len(v) == 2 ? (int)json_at(v, 0)->u.num.d : 0;
	int inner_h = json_len(v) == 2 ? (int)json_at(v, 1)->u.num.d : 0;
	json_free(v);
	if (outer > 900)
		resize(w, width, outer, inner_h);
}

static void save_png(struct wd *w, const char *name, int width)
{
	struct json *v = wd_cmd(w, "GET", "/screenshot", NULL);
	ck_assert_msg(v && v->type == JSON_STRING, "no screenshot of %s", name);
	unsigned char *png = NULL;
	size_t n = 0;
	struct err e;
	ck_assert_msg(crypto_base64_decode(v->u.str.s, strlen(v->u.str.s), &png, &n, &e) == 0,
		      "screenshot of %s is not base64", name);
	const char *dir = getenv("GHL_BUILD_DIR");
	char *sdir = xasprintf("%s/screenshots", dir && *dir ? dir : ".");
	mkdir(sdir, 0755);
	char *path = xasprintf("%s/%s-%d.png", sdir, name, width);
	FILE *f = fopen(path, "wb");
	ck_assert_msg(f, "cannot write %s", path);
	ck_assert_int_eq(fwrite(png, 1, n, f), n);
	fclose(f);
	free(path);
	free(sdir);
	free(png);
	json_free(v);
}

void wd_screenshots(struct wd *w, const char *name)
{
	whole_page(w, 1400);
	save_png(w, name, 1400);
	whole_page(w, 390);
	save_png(w, name, 390);
	wd_width(w, 1280);
}

int wd_sideways_at(struct wd *w, int width)
{
	wd_width(w, width);
	struct json *sw = wd_exec(w, "return document.scrollingElement.scrollWidth"
				     " - document.documentElement.clientWidth");
	int over = sw && sw->type == JSON_NUMBER ? (int)sw->u.num.d : 0;
	json_free(sw);
	return over;
}

int wd_sideways_px(struct wd *w, int width)
{
	int over = wd_sideways_at(w, width);
	wd_width(w, 1280);
	return over;
}

char *wd_unlabelled_cells(struct wd *w)
{
	return wd_exec_text(
		w, "var bad = [];"
		   " document.querySelectorAll('table.grid').forEach(function (t, n) {"
		   "  var ths = t.querySelectorAll('thead th');"
		   "  t.querySelectorAll('tbody tr').forEach(function (tr, r) {"
		   "   Array.prototype.forEach.call(tr.children, function (td, i) {"
		   "    var title = ths[i] ? ths[i].textContent.trim() : '';"
		   "    if (td.tagName === 'TD' && title && !td.hasAttribute('data-label'))"
		   "     bad.push('table ' + (t.id || t.className || n) + ' row ' + r + ': the \"'"
		   "      + title + '\" cell has no data-label');"
		   "   }); }); });"
		   " return bad.slice(0, 6).join('\\n');");
}

char *wd_unlabelled_fields(struct wd *w)
{
	return wd_exec_text(
		w,
		"var bad = [];"
		" document.querySelectorAll('input, select, textarea').forEach(function (e) {"
		"  if (e.type === 'hidden' || !e.getClientRects().length) return;"
		"  var named = !e.hasAttribute('data-auto-label')"
		"   && (e.getAttribute('aria-label') || '').trim()"
		"   || e.getAttribute('aria-labelledby') || (e.title || '').trim()"
		"   || Array.prototype.some.call(e.labels || [], function (l) {"
		"    return l.textContent.trim(); });"
		"  if (!named) bad.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
		"   + (e.name ? '[name=' + e.name + ']' : '') + ' ' + (e.placeholder || '') + ' in '"
		"   + (e.parentElement.closest('form, [id]') || document.body).id + ' has no label'); });"
		" return bad.slice(0, 8).join('\\n');");
}

void wd_fetch_fails(struct wd *w, int on)
{
	json_free(wd_exec(
		w, on ? "if (!window.realFetch) window.realFetch = window.fetch;"
			" window.fetch = function () {"
			" return Promise.reject(new TypeError('Failed to fetch')); };"
			" return true;"
		      : "if (window.realFetch) window.fetch = window.realFetch; return true;"));
}

void wd_assert_no_console_errors(struct wd *w)
{
	struct json *logs = wd_cmd(w, "POST", "/se/log", "{\"type\":\"browser\"}");
	for (size_t i = 0; logs && i < json_len(logs); i++) {
		struct json *m = json_at(logs, i);
		const char *level = json_get_str(m, "level");
		const char *msg = json_get_str(m, "message");
		/* Chromium logs every 4xx answer as an error; the page handles those
		 * (a wrong password, the /me probe before logging in). Scripts'
		 * errors, CSP refusals and 5xx answers fail. */
		if (msg && strstr(msg, "Failed to load resource: the server responded with a "
				       "status of 4"))
			continue;
		ck_assert_msg(!level || strcmp(level, "SEVERE") != 0, "console error: %s",
			      msg ? msg : "?");
	}
	json_free(logs);
}
