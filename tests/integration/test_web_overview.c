/* test_web_overview.c — the dashboard's landing page in headless Chromium:
 * after logging in, the overview shows the seeded jobs' counts per state,
 * the per-day chart with its text alternative, success rates, time to
 * provision, the failing steps and the GHL budget; a state tile leads to the
 * jobs filtered by it; a job that ends is counted at the next refresh, and a
 * refresh that fails says what to do. Screenshots at 1400 and 390 px, no
 * console errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ghl_harness.h"
#include "webdriver.h"

static char *dsn;
static struct hsim sim;
static struct hagent ag;

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hsim_start(&sim, NULL);
	dsn = tl_create_migrated_db("web_overview");
	/* roles=api: no scheduler, the jobs keep the states given here */
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
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

static void seed(void)
{
	PGconn *db = tl_connect(dsn);
	char *agency = hconnect_agency(&ag, db, "co-web-overview");
	char *snap = tl_sqlf(db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-o', 'Roofing', 'roofing') RETURNING id",
			     agency);
	/* two completed (20 s and 40 s), one failed at CREATE_USER, one pending */
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, snapshot_id,"
		 " created_at, finished_at) SELECT '%s', '{}', s::provisioning_job_status, '%s',"
		 " LOCALTIMESTAMP - interval '1 hour', CASE WHEN s <> 'PENDING' THEN"
		 " LOCALTIMESTAMP - interval '1 hour' + d * interval '1 second' END"
		 " FROM (VALUES ('COMPLETED', 20), ('COMPLETED', 40), ('FAILED', 5),"
		 " ('PENDING', 0)) v(s, d)",
		 agency, snap);
	tl_execf(db, "INSERT INTO provisioning_logs (job_id, step, status, details_json)"
		     " SELECT id, 'CREATE_USER', 'FAILED', '{}' FROM provisioning_jobs"
		     " WHERE status = 'FAILED'");
	free(snap);
	free(agency);
	PQfinish(db);
}

static struct wd browser;

static void browser_teardown(void)
{
	wd_stop(&browser);
}

/* The page fetches its numbers again (as every 30 s, here at once: its tab
 * shown again). */
static void tab_shown(void)
{
	json_free(wd_exec(&browser, "document.dispatchEvent(new Event('visibilitychange'));"
				    " return true;"));
}

/* Fresh numbers (issue 14 item 1): the pending job ends, and the page's
 * next refresh counts it. A refresh the agent does not answer says what to
 * do above the last numbers, which stay, and goes with the next answer. */
static void fresh_numbers_and_refresh_errors(void)
{
	PGconn *db = tl_connect(dsn);
	tl_execf(db, "UPDATE provisioning_jobs SET status = 'COMPLETED',"
		     " finished_at = created_at + interval '30 seconds' WHERE status = 'PENDING'");
	PQfinish(db);
	tab_shown();
	wd_wait_text(&browser, "#overview-state-completed", "3", 10000);
	wd_wait_text(&browser, "#overview-state-pending", "0", 2000);
	wd_wait_text(&browser, "#overview-agencies", "75.0%", 2000);

	wd_fetch_fails(&browser, 1);
	tab_shown();
	wd_wait_text(&browser, "#overview-error", "Could not update the numbers", 10000);
	wd_wait_text(&browser, "#overview-error", "then try again", 2000);
	wd_wait_text(&browser, "#overview-state-completed", "3", 2000); /* still shown */
	wd_fetch_fails(&browser, 0);
	tab_shown();
	wd_wait_empty(&browser, "#overview-error", 10000);
	wd_assert_no_console_errors(&browser);
}

/* On a phone (390 px) the chart, drawn again at the next refresh, keeps its
 * ticks readable: at least 9 px tall on screen. */
static void chart_readable_on_a_phone(void)
{
	wd_width(&browser, 390);
	json_free(wd_exec(&browser, "document.querySelector('#overview figure.chart-box').remove();"
				    " return true;"));
	tab_shown();
	wd_wait_text(&browser, "#overview figure.chart-box", "Show the numbers", 10000);
	struct json *v = wd_exec(&browser,
				 "return document.querySelector("
				 "'#overview svg.chart text.tick').getBoundingClientRect()"
				 ".height;");
	ck_assert_msg(v && v->type == JSON_NUMBER && v->u.num.d >= 9,
		      "the chart's ticks are %.1f px tall at 390 px", v ? v->u.num.d : -1.0);
	json_free(v);
	wd_width(&browser, 1280);
	tab_shown();
}

START_TEST(overview_page_shows_the_counts)
{
	wd_require_browser();
	hagent_admin_token(&ag); /* creates the harness admin */
	seed();
	atexit(browser_teardown);
	wd_start(&browser);
	wd_login(&browser, ag.base, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);

	/* the landing page after login */
	wd_wait_text(&browser, "#overview-state-completed", "2", 10000);
	wd_wait_text(&browser, "#overview-state-failed", "1", 2000);
	wd_wait_text(&browser, "#overview-state-pending", "1", 2000);
	wd_wait_text(&browser, "#nav a.active", "Overview", 2000);
	wd_wait_text(&browser, "#overview-agencies", "co-web-overview", 2000);
	wd_wait_text(&browser, "#overview-agencies", "66.7%", 2000);
	wd_wait_text(&browser, "#overview-niches", "roofing", 2000);
	wd_wait_text(&browser, "#overview-median", "20.7 s", 2000); /* 20 s's bucket */
	wd_wait_text(&browser, "#overview-failing", "CREATE_USER", 2000);
	wd_wait_text(&browser, "#overview-budget", "co-web-overview", 2000);

	/* the chart: bars, and a text alternative saying the same */
	struct json *v = wd_exec(
		&browser, "const s = document.querySelector('#overview svg.chart');"
			  "return [s.querySelectorAll('rect').length, s.getAttribute('role'),"
			  " s.getAttribute('aria-label'),"
			  " document.querySelectorAll('#overview .chart-table tbody tr').length];");
	ck_assert_int_ge((long long)json_at(v, 0)->u.num.d, 3);
	ck_assert_str_eq(json_at(v, 1)->u.str.s, "img");
	ck_assert_msg(strstr(json_at(v, 2)->u.str.s, "4 jobs over 30 days"), "aria-label: %s",
		      json_at(v, 2)->u.str.s);
	ck_assert_int_eq((long long)json_at(v, 3)->u.num.d, 30);
	json_free(v);
	wd_screenshots(&browser, "overview");
	/* the page's own content fits 390 px (the header's narrow layout is the
	 * responsive stylesheet's business, measured by its own test) */
	json_free(wd_exec(&browser, "document.getElementById('top').hidden = true; return 1;"));
	ck_assert_int_eq(wd_sideways_px(&browser, 390), 0);
	json_free(wd_exec(&browser, "document.getElementById('top').hidden = false; return 1;"));

	fresh_numbers_and_refresh_errors();
	chart_readable_on_a_phone();

	/* a shorter period, then a state tile leads to the jobs in that state */
	v = wd_exec(&browser, "const d = document.querySelector('#overview-days');"
			      "d.value = '7'; d.dispatchEvent(new Event('change')); return 1;");
	json_free(v);
	long long rows = 0;
	for (int i = 0; i < 100 && rows != 7; i++) {
		v = wd_exec(&browser, "return document.querySelectorAll("
				      "'#overview .chart-table tbody tr').length;");
		rows = (long long)v->u.num.d;
		json_free(v);
		if (rows != 7)
			usleep(100000);
	}
	ck_assert_int_eq(rows, 7);
	wd_click(&browser, "#overview-state-failed a");
	wd_wait_text(&browser, "#nav a.active", "Jobs", 10000);
	v = wd_exec(&browser, "return location.hash;");
	ck_assert_msg(strstr(v->u.str.s, "status=FAILED"), "hash: %s", v->u.str.s);
	json_free(v);

	wd_assert_no_console_errors(&browser);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web_overview");
	TCase *tb = tcase_create("browser");
	tcase_add_unchecked_fixture(tb, setup, teardown);
	tcase_add_checked_fixture(tb, NULL, browser_teardown);
	tcase_set_timeout(tb, 120);
	tcase_add_test(tb, overview_page_shows_the_counts);
	suite_add_tcase(s, tb);
	return tl_run_suite(s);
}
