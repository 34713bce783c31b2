/* test_web_job.c — the job page in headless Chromium against a real agent
 * (scheduler on), PostgreSQL and ghl-sim: a job that failed at its second
 * step shows the full timeline ("1 of 2", done and failed steps), the
 * location it left in GHL, a step's GHL request expanded with its bodies;
 * "Edit and retry" refuses data without a last name at that field, then
 * resumes the job to COMPLETED; "Clone" opens a new job; a running step
 * shows a live timer, and a cancel waits for it, then the job is CANCELLED.
 * Screenshots at 1400 and 390 px; no console errors. Needs chromium and chromedriver. */
#include <curl/curl.h>

#include "ghl_harness.h"
#include "webdriver.h"

static char *dsn;
static PGconn *db;
static struct hsim sim;
static struct hagent ag;
static char *agency;
static struct wd browser;

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *flags[] = {"--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, flags);
	dsn = tl_create_migrated_db("web_job");
	db = tl_connect(dsn);
	/* GHL answers are held 12 s in running_step_timer_and_cancel: wait longer */
	const char *extra[] = {"GHL_AGENT_POLL_INTERVAL=100ms", "GHL_AGENT_GHL_TIMEOUT=60s", NULL};
	hagent_start(&ag, dsn, &sim, extra);
	agency = hconnect_agency(&ag, db, "co-web-job");
	tl_execf(db,
		 "UPDATE agencies SET settings_json = '{\"pipeline\":[{\"step\":"
		 "\"CREATE_LOCATION\"},{\"step\":\"CREATE_USER\"}]}' WHERE id = '%s'",
		 agency);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	free(agency);
	curl_global_cleanup();
}

/* The browser must not outlive the test (see test_web.c). */
static void browser_teardown(void)
{
	wd_stop(&browser);
}

/* At 360 px the job page does not scroll sideways, and its tables (the
 * attempts) become cards whose every line is labelled; steps opened. */
static void job_page_fits_narrow(void)
{
	json_free(wd_exec(&browser, "document.querySelectorAll('details.step')"
				    ".forEach(function (d) { d.open = true; }); return true;"));
	wd_wait_text(&browser, "details.step[data-index='1'] table.attempts", "COMPLETED", 5000);
	ck_assert_int_eq(wd_sideways_at(&browser, 360), 0);
	char *cells = wd_unlabelled_cells(&browser);
	ck_assert_msg(!*cells, "%s", cells);
	free(cells);
	wd_width(&browser, 1280);
}

/* The simulator's answers take latency_ms from now on. */
static void sim_latency(int ms)
{
	char *url = xasprintf("%s/_sim/faults", sim.base);
	char *body = xasprintf("{\"latency_ms\":%d}", ms);
	const char *h[] = {"Content-Type: application/json", NULL};
	ck_assert_int_eq(tl_http("POST", url, h, body, NULL), 200);
	free(body);
	free(url);
}

/* Open job's page and wait for its title. */
static void open_job(const char *job, const char *title)
{
	char *url = xasprintf("%s/#/jobs/%s", ag.base, job);
	wd_go(&browser, url);
	wd_wait_text(&browser, "#job-title", title, 10000);
	free(url);
}

/* A job whose first step is held running (every GHL answer delayed 12 s):
 * the step shows a live timer that advances while the page is open; a
 * cancel says which step it waits for, and the job ends CANCELLED after
 * that step, the next one not run. */
static void running_step_timer_and_cancel(void)
{
	sim_latency(12000);
	char *job = hjob_add(db, agency,
			     "{\"name\":\"Slow Dental\",\"email\":\"slow@example.com\","
			     "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}",
			     NULL);
	open_job(job, "Slow Dental");
	wd_wait_text(&browser, "details.step[data-index='0']", "running", 10000);
	char *first = wd_text(&browser, "details.step[data-index='0'] .live-timer");
	ck_assert_msg(first && *first, "the running step shows no live timer");
	char *now = NULL;
	for (int i = 0; i < 50; i++) { /* the timer ticks each second: poll up to 5 s */
		free(now);
		now = wd_text(&browser, "details.step[data-index='0'] .live-timer");
		if (now && strcmp(now, first))
			break;
		usleep(100000);
	}
	ck_assert_msg(now && strcmp(now, first), "the live timer stayed at \"%s\"", first);
	wd_wait_text(&browser, "details.step[data-index='1']", "pending", 2000);
	wd_screenshots(&browser, "job-running");

	/* cancel: the page says it waits for the running step, then it stops */
	wd_click(&browser, ".page-head [data-action='cancel']");
	wd_call(&browser, "POST", "/alert/accept", "{}");
	wd_wait_text(&browser, "#flash", "stops after its current step", 10000);
	wd_wait_text(&browser, "#timeline-progress", "cancelling: stops after CREATE_LOCATION",
		     10000);
	sim_latency(0);
	char *st = NULL;
	for (int i = 0; i < 300; i++) { /* the held answer comes within 12 s */
		free(st);
		st = tl_sqlf(db, "SELECT status FROM provisioning_jobs WHERE id = '%s'", job);
		if (strcmp(st, "IN_PROGRESS"))
			break;
		usleep(100000);
	}
	ck_assert_str_eq(st, "CANCELLED");
	wd_wait_text(&browser, ".page-head .badge", "CANCELLED", 10000);
	wd_wait_text(&browser, "details.step[data-index='0']", "done", 5000);
	wd_wait_text(&browser, "details.step[data-index='1']", "not run", 5000);
	ck_assert_ptr_null(wd_find(&browser, ".live-timer"));
	ck_assert_ptr_null(wd_find(&browser, ".page-head [data-action='retry']"));
	wd_assert_no_console_errors(&browser);
	free(st);
	free(now);
	free(first);
	free(job);
}

/* In the open clone form: other data that is not JSON is refused at its
 * box, saying what to do; the box is left empty. */
static void bad_other_data_says_what_to_do(void)
{
	wd_clear(&browser, "#fix-other");
	wd_type(&browser, "#fix-other", "{not json");
	wd_click(&browser, "#fix-submit");
	wd_wait_text(&browser, "#clone-form .form-error", "correct it (or empty the box)", 5000);
	wd_clear(&browser, "#fix-other");
}

/* A job that is not there (a stale link): the page says what to do and
 * leads back to the jobs (issue 14 item 8). */
static void missing_job_page(void)
{
	char *url = xasprintf("%s/#/jobs/00000000-0000-4000-8000-000000000000", ag.base);
	wd_go(&browser, url);
	wd_wait_text(&browser, "#page-error", "job not found: check the id", 10000);
	wd_click(&browser, "#page-error-back");
	wd_wait_text(&browser, "main h1", "Jobs", 10000);
	wd_wait_text(&browser, "#job-list", "Slow Dental", 10000);
	wd_assert_no_console_errors(&browser);
	free(url);
}

/* A job that waits for its next attempt in an hour (its page refreshes
 * every 3 s): a refresh the agent does not answer says what to do, and the
 * message goes with the next answer (issue 14 item 8). */
static void refresh_error_clears(void)
{
	char *job = tl_sqlf(db,
			    "INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
			    " run_at) VALUES ('%s', '{\"name\":\"Later Dental\"}',"
			    " 'RETRYING', now() + interval '1 hour') RETURNING id",
			    agency);
	open_job(job, "Later Dental");
	wd_fetch_fails(&browser, 1);
	wd_wait_text(&browser, "#job-refresh-error", "Could not update this job", 10000);
	wd_wait_text(&browser, "#job-refresh-error", "then try again", 2000);
	wd_wait_text(&browser, "#job-title", "Later Dental", 2000); /* the page stays */
	wd_fetch_fails(&browser, 0);
	wd_wait_empty(&browser, "#job-refresh-error", 10000);
	wd_assert_no_console_errors(&browser);
	free(job);
}

START_TEST(timeline_and_edit_and_retry)
{
	wd_require_browser();
	hagent_admin_token(&ag);
	atexit(browser_teardown);
	/* stored without first and last name: CREATE_USER fails for good */
	char *job = hjob_add(db, agency,
			     "{\"name\":\"Timeline <i>Dental</i>\",\"email\":\"tl@example.com\"}",
			     NULL);
	char *st = hjob_wait(db, job, 30000, ag.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);

	wd_start(&browser);
	wd_login(&browser, ag.base, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	char *url = xasprintf("%s/#/jobs/%s", ag.base, job);
	wd_go(&browser, url);
	wd_wait_text(&browser, "#job-title", "Timeline <i>Dental</i>", 10000);
	wd_wait_text(&browser, "#timeline-progress", "1 of 2", 10000);
	wd_wait_text(&browser, "details.step[data-index='0']", "CREATE_LOCATION", 2000);
	wd_wait_text(&browser, "details.step[data-index='0']", "done", 2000);
	wd_wait_text(&browser, "details.step[data-index='1']", "failed", 2000);
	wd_wait_text(&browser, "#left-in-ghl", "location_id", 2000);
	/* a step opened: its attempts, outputs and GHL requests; one request expanded */
	wd_click(&browser, "details.step[data-index='0'] > summary");
	wd_wait_text(&browser, "details.step[data-index='0'] .step-requests", "POST /locations/",
		     10000);
	wd_click(&browser, "details.step[data-index='0'] details.request > summary");
	wd_wait_text(&browser, "details.step[data-index='0'] details.request", "Response body",
		     5000);
	wd_wait_text(&browser, "details.step[data-index='0'] details.request", "Trace id", 2000);
	wd_click(&browser, "details.step[data-index='1'] > summary");
	wd_wait_text(&browser, "details.step[data-index='1']", "first_name", 5000);
	wd_screenshots(&browser, "job-failed");
	wd_assert_no_console_errors(&browser);

	/* edit and retry: without a last name the field says so */
	wd_click(&browser, "#edit-retry");
	wd_wait_text(&browser, "#edit-retry-form h2", "Edit and retry", 5000);
	wd_type(&browser, "#fix-first-name", "Ada");
	wd_click(&browser, "#fix-submit");
	wd_wait_text(&browser, "[data-field='client_data.last_name'] .field-error", "required",
		     10000);
	wd_screenshots(&browser, "job-edit-retry");
	wd_type(&browser, "#fix-last-name", "Lovelace");
	wd_click(&browser, "#fix-submit");
	wd_wait_text(&browser, "#flash", "from the step that failed", 10000);
	wd_wait_text(&browser, "#timeline-progress", "2 of 2", 30000);
	wd_wait_text(&browser, "details.step[data-index='1']", "done", 5000);
	wd_wait_text(&browser, "details.step[data-index='1']", "2 attempts", 5000);
	char *left = wd_find(&browser, "#left-in-ghl");
	ck_assert_msg(left == NULL, "a COMPLETED job lists objects left in GHL");
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM job_requests WHERE job_id = '%s'"
				   " AND step_index = 0 AND method = 'POST'",
				   job),
			 1);
	wd_screenshots(&browser, "job-timeline");
	job_page_fits_narrow();
	wd_assert_no_console_errors(&browser);

	/* clone: a new job with the same data, its page opened */
	wd_click(&browser, "#clone-job");
	wd_wait_text(&browser, "#clone-form h2", "Clone", 5000);
	bad_other_data_says_what_to_do();
	wd_click(&browser, "#fix-submit");
	wd_wait_text(&browser, "#flash", "New job queued", 10000);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM provisioning_jobs WHERE client_data_json"
				   "->>'last_name' = 'Lovelace'"),
			 2);
	char *clone = tl_sqlf(db, "SELECT id FROM provisioning_jobs WHERE id <> '%s'", job);
	char *want = xasprintf("/#/jobs/%s", clone);
	for (int i = 0; i < 100; i++) {
		struct json *href = wd_exec(&browser, "return location.href;");
		int there = href && href->type == JSON_STRING && strstr(href->u.str.s, want);
		json_free(href);
		if (there)
			break;
		ck_assert_msg(i < 99, "the clone's page did not open");
		usleep(100000);
	}
	wd_wait_text(&browser, "#job-title", "Timeline <i>Dental</i>", 10000);
	wd_assert_no_console_errors(&browser);
	free(hjob_wait(db, clone, 30000, ag.log)); /* nothing else runs during the next check */
	running_step_timer_and_cancel();
	missing_job_page();
	refresh_error_clears();
	free(want);
	free(clone);
	free(url);
	free(job);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web_job");
	TCase *tb = tcase_create("browser");
	tcase_add_unchecked_fixture(tb, setup, teardown);
	tcase_add_checked_fixture(tb, NULL, browser_teardown);
	tcase_set_timeout(tb, 150);
	tcase_add_test(tb, timeline_and_edit_and_retry);
	suite_add_tcase(s, tb);
	return tl_run_suite(s);
}
