/* test_web_a11y.c — every dashboard page is accessible and fits a phone
 * (issue 14 item 7): in headless Chromium (tests/support/webdriver.h), each
 * page of pages[] is loaded with data to show, axe-core (npm, pinned in
 * tests/a11y; installed into the build folder by the a11y/setup ctest
 * fixture, path in GHL_AXE_JS) is injected through WebDriver and run, and
 * the page must have no `serious` or `critical` violation, must not scroll
 * sideways at 600 or 360 px, label every cell of a table shown as cards,
 * keep Log out visible at 360 px, and log no console error.
 *
 * Checkboxes keep their size at 360 px; Tab through each page shows a
 * focus ring on every element it reaches. A new page gets a row in pages[]. */
#define WF_COMPANY "co-a11y"
#define WF_DB "web_a11y"
#include "web_fixture.h"


/* The pages, in order, after logging in: the route (%A an agency, %J a job
 * of it), an element and a text that say the page has loaded its data. */
static const struct {
	const char *name;
	const char *route;
	const char *css;
	const char *text;
} pages[] = {
	{"agencies", "#/agencies", "#agency-list", "co-a11y"},
	{"agency", "#/agencies/%A", "#agency-form h2", "Settings"},
	{"jobs", "#/jobs", "#job-list", "A11y Co"},
	{"job", "#/jobs/%J", "#job-title", "A11y Co"},
	{"snapshots", "#/snapshots?agency=%A", "#snapshot-list", "ACTIVE"},
	{"users", "#/users", "main", "a11y-support@example.com"},
	{"webhooks", "#/webhooks", "main", "Webhooks"},
	{"keys", "#/keys?agency=%A", "#key-list", "a11y-key"},
	{"audit", "#/audit", "#audit-list", "api_key.create"},
	{"overview", "#/overview", "main h1", "Overview"},
	{"tasks", "#/tasks", "main h1", "Tasks"},
	{"drift", "#/drift", "main h1", "Drift"},
	{"batch", "#/batches/%A/%B", "#batch-summary", "0 of 1 finished"},
};

static char *axe_source;

/* axe-core's serious and critical violations on the current page, one line
 * each ("" when none; malloc'd). */
static char *axe_violations(void)
{
	struct json *has = wd_exec(&browser, "return typeof window.axe");
	if (!has || has->type != JSON_STRING || strcmp(has->u.str.s, "object")) {
		json_free(wd_exec(&browser, axe_source));
		json_free(has);
		has = wd_exec(&browser, "return typeof window.axe");
		ck_assert_msg(has && has->type == JSON_STRING && !strcmp(has->u.str.s, "object"),
			      "axe-core did not load from %s", tl_env("GHL_AXE_JS"));
	}
	json_free(has);
	const char *run =
		"{\"args\":[],\"script\":\"var done = arguments[arguments.length - 1];"
		" axe.run(document, {resultTypes: ['violations']}).then(function (r) {"
		" done(r.violations.filter(function (v) {"
		"  return v.impact === 'serious' || v.impact === 'critical'; })"
		" .map(function (v) { return v.id + ' (' + v.impact + '): ' + v.help + ' at '"
		"  + v.nodes.slice(0, 4).map(function (n) { return n.target.join(' '); }).join(', ');"
		" }).join('\\\\n')); }, function (e) { done('axe failed: ' + e); });\"}";
	struct json *v = wd_cmd(&browser, "POST", "/execute/async", run);
	ck_assert_msg(v && v->type == JSON_STRING, "axe.run gave no answer");
	char *out = xstrdup(v->u.str.s);
	json_free(v);
	return out;
}

/* Log out stays on screen at 360 px: its box is inside the window. */
static void assert_logout_visible(const char *page)
{
	struct json *v = wd_exec(
		&browser, "var b = document.getElementById('logout').getBoundingClientRect();"
			  " return b.width > 0 && b.height > 0 && b.left >= 0"
			  " && b.right <= window.innerWidth;");
	ck_assert_msg(v && v->type == JSON_BOOL && v->u.boolean,
		      "%s: Log out is off-screen at 360 px", page);
	json_free(v);
}

/* Checkboxes and radio buttons shown wider than a box (a narrow screen's
 * full-width rule for inputs stretched one, its words pushed aside): one
 * line each ("" when none; malloc'd). */
static char *stretched_boxes(void)
{
	return wd_exec_text(&browser,
			    "var bad = [];"
			    " document.querySelectorAll('input[type=checkbox], input[type=radio]')"
			    " .forEach(function (e) { var w = e.getBoundingClientRect().width;"
			    "  if (w > 32) bad.push((e.id || e.className || e.type) + ' is '"
			    "   + Math.round(w) + ' px wide'); });"
			    " return bad.slice(0, 6).join('\\n');");
}

static void check_page(struct buf *fails, const char *name)
{
	char *bad = axe_violations();
	if (*bad)
		buf_printf(fails, "%s:\n%s\n", name, bad);
	free(bad);
	/* 360 to 600 px: the narrowest phones to a small tablet, with every
	 * panel (submit and CSV forms, steps, charts' numbers) open */
	json_free(wd_exec(&browser, "document.querySelectorAll('main details')"
				    ".forEach(function (d) { d.open = true; }); return true;"));
	static const int widths[] = {600, 360};
	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		int over = wd_sideways_at(&browser, widths[i]);
		if (over > 0)
			buf_printf(fails, "%s: scrolls %d px sideways at %d px\n", name, over,
				   widths[i]);
	}
	char *boxes = stretched_boxes(); /* the window is 360 px wide here */
	if (*boxes)
		buf_printf(fails, "%s: at 360 px:\n%s\n", name, boxes);
	free(boxes);
	char *fields = wd_unlabelled_fields(&browser);
	if (*fields)
		buf_printf(fails, "%s: fields without a label:\n%s\n", name, fields);
	free(fields);
	char *cells = wd_unlabelled_cells(&browser);
	if (*cells)
		buf_printf(fails, "%s: card cells without a label:\n%s\n", name, cells);
	free(cells);
	if (strcmp(name, "login"))
		assert_logout_visible(name);
	wd_width(&browser, 1280);
	wd_assert_no_console_errors(&browser);
}

/* Keys pressed as a person would (WebDriver actions): text, or one of
 * WebDriver's key codes ("\uE004" Tab, "\uE007" Enter). */
static void keys(const char *text)
{
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "actions");
	jw_array_begin(&w);
	jw_object_begin(&w);
	jw_key(&w, "type");
	jw_string(&w, "key");
	jw_key(&w, "id");
	jw_string(&w, "keyboard");
	jw_key(&w, "actions");
	jw_array_begin(&w);
	/* one UTF-8 character at a time: ASCII here, or a 3-byte key code */
	for (const char *p = text; *p;) {
		size_t n = (unsigned char)*p < 0x80 ? 1 : 3;
		char *ch = xasprintf("%.*s", (int)n, p);
		for (int up = 0; up < 2; up++) {
			jw_object_begin(&w);
			jw_key(&w, "type");
			jw_string(&w, up ? "keyUp" : "keyDown");
			jw_key(&w, "value");
			jw_string(&w, ch);
			jw_object_end(&w);
		}
		free(ch);
		p += n;
	}
	jw_array_end(&w);
	jw_object_end(&w);
	jw_array_end(&w);
	jw_object_end(&w);
	wd_call(&browser, "POST", "/actions", buf_cstr(&b));
	buf_clear(&b);
}

#define KEY_TAB "\xee\x80\x84"	 /* U+E004 */
#define KEY_ENTER "\xee\x80\x87" /* U+E007 */

/* The id of the focused element, and whether its focus ring shows. */
static char *focused(int *ring)
{
	struct json *v = wd_exec(&browser,
				 "var e = document.activeElement, s = getComputedStyle(e);"
				 " return [e.id || e.tagName, s.outlineStyle !== 'none'"
				 " && parseFloat(s.outlineWidth) >= 2];");
	ck_assert_msg(v && json_len(v) == 2, "no focused element");
	const struct json *name = json_at(v, 0);
	char *id = xstrdup(name && name->type == JSON_STRING ? name->u.str.s : "?");
	*ring = json_at(v, 1)->type == JSON_BOOL && json_at(v, 1)->u.boolean;
	json_free(v);
	return id;
}

/* Tab through the page from its start (the header first, then main, every
 * panel open): each element that takes the focus must show a focus ring (an
 * outline of 2 px or more, or a box shadow). Fails the page when fewer than
 * 3 took it (Tab went nowhere). */
static void focus_rings(struct buf *fails, const char *name)
{
	json_free(wd_exec(
		&browser,
		"window.__rings = []; window.__ringSeen = new WeakSet(); window.__ringDone = false;"
		" if (document.activeElement) document.activeElement.blur();"
		" if (!window.__ringWatch) { window.__ringWatch = true;"
		"  document.addEventListener('focusin', function (ev) {"
		"   var e = ev.target, s = getComputedStyle(e);"
		/* Tab past the page's end leaves the document and comes back to
		 * its start: stop at the first element seen again */
		"   if (window.__ringDone || !document.hasFocus()) return;"
		"   if (window.__ringSeen.has(e)) { window.__ringDone = true; return; }"
		"   window.__ringSeen.add(e);"
		"   var ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2"
		"    || s.boxShadow !== 'none';"
		"   window.__rings.push([(e.id ? '#' + e.id : e.tagName.toLowerCase()) + ' \"'"
		"    + (e.textContent || e.value || '').trim().slice(0, 30) + '\"', ring]); }); }"
		" return true;"));
	struct buf tabs;
	buf_init(&tabs);
	for (int i = 0; i < 40; i++)
		buf_printf(&tabs, "%s", KEY_TAB);
	keys(buf_cstr(&tabs));
	buf_clear(&tabs);
	struct json *n = wd_exec(&browser, "return window.__rings.length;");
	if (!n || n->type != JSON_NUMBER || n->u.num.d < 3)
		buf_printf(fails, "%s: Tab reached fewer than 3 elements\n", name);
	json_free(n);
	char *bad = wd_exec_text(&browser, "return window.__rings.filter(function (r) {"
					   " return !r[1]; }).map(function (r) { return r[0]; })"
					   ".slice(0, 6).join('\\n');");
	if (*bad)
		buf_printf(fails, "%s: focused without a visible focus ring:\n%s\n", name, bad);
	free(bad);
}

/* Log in with the keyboard alone: Tab to the email field (a visible focus
 * ring on the way), type, Tab, type, Enter. */
static void keyboard_login(void)
{
	char *id = NULL;
	int ring = 0;
	for (int tabs = 0; tabs < 8; tabs++) {
		keys(KEY_TAB);
		free(id);
		id = focused(&ring);
		if (!strcmp(id, "login-email"))
			break;
	}
	ck_assert_msg(!strcmp(id, "login-email"), "Tab never reached the email field (at %s)", id);
	ck_assert_msg(ring, "the focused email field shows no focus ring");
	keys(H_ADMIN_EMAIL KEY_TAB);
	free(id);
	id = focused(&ring);
	ck_assert_msg(!strcmp(id, "login-password") && ring, "after Tab: %s (ring %d)", id, ring);
	keys(H_ADMIN_PASSWORD KEY_ENTER);
	wd_wait_text(&browser, "#whoami", H_ADMIN_EMAIL, 10000);
	free(id);
}

START_TEST(every_page_is_accessible_and_fits)
{
	axe_source = tl_read_file(tl_env("GHL_AXE_JS"));
	ck_assert_msg(axe_source && *axe_source,
		      "no axe-core at %s: the a11y/setup test installs it (npm)",
		      tl_env("GHL_AXE_JS"));
	hagent_admin_token(&ag);
	char *agency = hconnect_agency(&ag, db, "co-a11y");
	char *path = xasprintf("/api/v1/agencies/%s/snapshots/sync", agency);
	char *url = hagent_url(&ag, path);
	char *authz = hagent_admin_header(&ag);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	ck_assert_int_eq(tl_http("POST", url, h, "{}", NULL), 200);
	free(url);
	free(path);
	path = xasprintf("/api/v1/agencies/%s/api-keys", agency);
	url = hagent_url(&ag, path);
	ck_assert_int_eq(tl_http("POST", url, h, "{\"name\":\"a11y-key\"}", NULL), 201);
	free(url);
	free(path);
	free(authz);
	free(huser_token(&ag, "a11y-support@example.com", "SUPPORT", "[]"));
	char *job = hjob_add(db, agency,
			     "{\"name\":\"A11y Co\",\"email\":\"a11y@example.com\","
			     "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}",
			     NULL);
	char *batch = tl_sqlf(db,
			      "INSERT INTO job_batches (agency_id, source, filename, total) VALUES"
			      " ('%s', 'csv', 'a11y-clients.csv', 1) RETURNING id",
			      agency);
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, batch_id)"
		 " VALUES ('%s', '{\"name\":\"A11y Batch\",\"email\":\"b@example.com\"}',"
		 " 'PENDING', '%s')",
		 agency, batch);

	wf_browser_start();
	struct buf fails;
	buf_init(&fails);
	/* the login page, before logging in */
	url = xasprintf("%s/", ag.base);
	wd_go(&browser, url);
	free(url);
	wd_wait_text(&browser, "#login-form h1", "Log in", 10000);
	check_page(&fails, "login");
	keyboard_login();
	const char *vars[] = {"A", agency, "J", job, "B", batch, NULL};
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char *route = tl_expand(pages[i].route, vars);
		url = xasprintf("%s/%s", ag.base, route);
		wd_go(&browser, url);
		wd_wait_text(&browser, pages[i].css, pages[i].text, 15000);
		check_page(&fails, pages[i].name);
		focus_rings(&fails, pages[i].name);
		free(url);
		free(route);
	}
	ck_assert_msg(fails.len == 0, "accessibility and width problems:\n%s", buf_cstr(&fails));
	buf_clear(&fails);
	free(batch);
	free(job);
	free(agency);
	free(axe_source);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web_a11y");
	TCase *tc = tcase_create("a11y");
	tcase_set_timeout(tc, 540);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_page_is_accessible_and_fits);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
