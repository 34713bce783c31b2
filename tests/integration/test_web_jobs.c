/* test_web_jobs.c — the jobs list and the batch page in headless Chromium
 * (WebDriver, tests/support/webdriver.h) against a spawned `ghl-agent serve`
 * (roles=api: jobs keep the states the test gives them) and a real
 * PostgreSQL: search by name and by location id with the total, select two
 * jobs and cancel them with the bulk bar, rows patched in place by the
 * periodic refresh (a row's DOM node survives a status change), and a
 * batch's page following its progress. Screenshots of each page at 1400 and
 * 390 px; no console errors. */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghl_harness.h"
#include "json.h"
#include "testlib.h"
#include "util.h"
#include "webdriver.h"

static char *dsn;
static PGconn *db;
static struct hagent ag;
static struct wd browser;

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	dsn = tl_create_migrated_db("web_jobs");
	db = tl_connect(dsn);
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, NULL, extra);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

static void browser_teardown(void)
{
	wd_stop(&browser);
}

static char *job(const char *agency, const char *name, const char *status, const char *loc)
{
	return tl_sqlf(db,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status,"
		       " location_id) VALUES ('%s', jsonb_build_object('name', '%s', 'email',"
		       " lower(replace('%s', ' ', '.')) || '@example.com'), '%s', %s%s%s)"
		       " RETURNING id",
		       agency, name, name, status, loc ? "'" : "", loc ? loc : "NULL",
		       loc ? "'" : "");
}

/* The first 8 characters of an id, as the jobs table shows a batch. */
static const char *batch_short(const char *id)
{
	static char b[9];
	snprintf(b, sizeof(b), "%s", id);
	return b;
}

static void go(const char *path)
{
	char *url = xasprintf("%s/%s", ag.base, path);
	wd_go(&browser, url);
	free(url);
}

/* Wait until the DB says job id is in status st (the UI acted). */
static void wait_status(const char *id, const char *st)
{
	long long n = 0;
	for (int i = 0; i < 100 && !n; i++) {
		n = tl_sqlf_n(
			db,
			"SELECT count(*) FROM provisioning_jobs WHERE id = '%s' AND status = '%s'",
			id, st);
		if (!n)
			usleep(100 * 1000);
	}
	ck_assert_msg(n == 1, "job %s never became %s", id, st);
}

/* The left edge of each column of the jobs table, "12,52,…" (malloc'd). */
static char *column_lefts(void)
{
	return wd_exec_text(&browser, "return Array.prototype.map.call(document"
				      ".querySelectorAll('#job-list thead th'), function (t) {"
				      " return Math.round(t.getBoundingClientRect().left);"
				      " }).join(',');");
}

/* At 390 px the jobs are cards: a card shows no line for an empty cell (no
 * batch, no error), and Gamma's card still shows its Retry. */
static void empty_card_lines_hidden(void)
{
	wd_width(&browser, 390);
	char *shown = wd_exec_text(
		&browser, "return Array.prototype.filter.call(document.querySelectorAll("
			  "'#job-list td[data-label]'), function (td) {"
			  " return !td.textContent.trim() && td.getClientRects().length; })"
			  ".map(function (td) { return td.dataset.label; }).join(', ');");
	ck_assert_msg(!*shown, "empty card lines shown: %s", shown);
	free(shown);
	wd_wait_text(&browser, "#job-list", "Retry", 2000);
	wd_width(&browser, 1280);
}

/* A CSV file at a fresh path under /tmp (malloc'd; the caller unlinks it). */
static char *csv_file(const char *name, const char *text)
{
	char *path = xasprintf("/tmp/ghl-web-jobs-%d-%s", (int)getpid(), name);
	FILE *f = fopen(path, "w");
	ck_assert_msg(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

/* The CSV upload (issue 14 items 5 and 8): a file with a bad third line is
 * refused at that line's number, the progress bar goes away and the form
 * says that nothing was stored; fixed, it queues its jobs as a batch whose
 * page the form links to. */
static void csv_upload(void)
{
	long long before = tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs");
	char *bad = csv_file("bad.csv", "name,email,first_name,last_name\n"
					"Csv One,one@example.com,Ada,One\n"
					",two@example.com,Ada,Two\n");
	char *good = csv_file("autumn.csv", "name,email,first_name,last_name\n"
					    "Csv One,one@example.com,Ada,One\n"
					    "Csv Two,two@example.com,Ada,Two\n");
	go("#/jobs");
	wd_click(&browser, "#csv-panel summary");
	wd_type(&browser, "#csv-file", bad);
	wd_click(&browser, "#csv-form button[type=submit]");
	wd_wait_text(&browser, "#csv-form .form-error", "line 3", 10000);
	wd_wait_text(&browser, "#csv-form", "Nothing was stored", 2000);
	struct json *bar = wd_exec(&browser, "return document.querySelector('#csv-form progress')"
					     ".hidden");
	ck_assert_msg(bar && bar->type == JSON_BOOL && bar->u.boolean,
		      "the progress bar still shows after an upload that stored nothing");
	json_free(bar);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs"), before);
	wd_screenshots(&browser, "jobs-csv-refused");
	ck_assert_int_eq(wd_sideways_px(&browser, 360), 0); /* the open form fits a phone */
	wd_clear(&browser, "#csv-file");
	wd_type(&browser, "#csv-file", good);
	wd_click(&browser, "#csv-form button[type=submit]");
	wd_wait_text(&browser, "#csv-form", "2 jobs queued", 10000);
	wd_click(&browser, "#csv-batch-link");
	wd_wait_text(&browser, "h1", "autumn.csv", 10000);
	wd_wait_text(&browser, "#batch-summary", "0 of 2 finished", 10000);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM provisioning_jobs"), before + 2);
	wd_assert_no_console_errors(&browser);
	unlink(bad);
	unlink(good);
	free(bad);
	free(good);
}

/* The batch page's refresh (every 4 s) fails while the agent does not
 * answer: it says what to do, and the message goes when it answers again
 * (on the batch page of csv_upload, whose jobs stay PENDING). */
static void batch_refresh_error_clears(void)
{
	wd_wait_text(&browser, "#batch-summary", "0 of 2 finished", 10000);
	wd_fetch_fails(&browser, 1);
	wd_wait_text(&browser, "main .form-error", "then try again", 10000);
	wd_fetch_fails(&browser, 0);
	wd_wait_empty(&browser, "main .form-error", 15000); /* the next refresh */
	wd_assert_no_console_errors(&browser);
}

/* An agent that does not answer (the page's fetch fails): the jobs page
 * says so and what to do (issue 14 item 8), and recovers on the next load. */
static void network_error_says_what_to_do(void)
{
	go("#/jobs");
	wd_wait_text(&browser, "#job-list", "Csv Two", 10000);
	wd_fetch_fails(&browser, 1);
	wd_click(&browser, "#job-filters button[type=submit]");
	wd_wait_text(&browser, "#job-filters + div > .form-error", "The agent did not answer",
		     10000);
	wd_wait_text(&browser, "#job-filters + div > .form-error", "then try again", 2000);
	wd_fetch_fails(&browser, 0);
	wd_click(&browser, "#job-filters button[type=submit]");
	wd_wait_empty(&browser, "#job-filters + div > .form-error", 10000);
	wd_assert_no_console_errors(&browser);
}

START_TEST(jobs_search_bulk_and_batch)
{
	wd_require_browser();
	hagent_admin_token(&ag); /* creates the harness ADMIN */
	char *agency = tl_sqlf(
		db, "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		    " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Web Jobs Co',"
		    " 'co-web-jobs', 'x', 'y', now() + interval '1 day') RETURNING id");
	char *alpha = job(agency, "Alpha Dental", "PENDING", NULL);
	char *beta = job(agency, "Beta Bakery", "RETRYING", NULL);
	char *gamma = job(agency, "Gamma Gym", "FAILED", "LocGamma000000000001");
	char *delta = job(agency, "Delta Diner", "COMPLETED", NULL);
	/* a batch of two, as an upload leaves it */
	char *batch = tl_sqlf(db,
			      "INSERT INTO job_batches (agency_id, source, filename, total) VALUES"
			      " ('%s', 'csv', 'spring-clients.csv', 2) RETURNING id",
			      agency);
	tl_execf(db,
		 "INSERT INTO provisioning_jobs (agency_id, client_data_json, status, batch_id)"
		 " SELECT '%s', jsonb_build_object('name', 'Batch Client ' || i, 'email',"
		 " 'b' || i || '@example.com'), 'PENDING', '%s' FROM generate_series(1, 2) i",
		 agency, batch);

	atexit(browser_teardown);
	wd_start(&browser);
	wd_login(&browser, ag.base, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	go("#/jobs");
	wd_wait_text(&browser, "#job-total", "6 jobs", 10000);
	wd_wait_text(&browser, "#job-list", "Delta Diner", 5000);
	wd_screenshots(&browser, "jobs");
	empty_card_lines_hidden();

	/* search: a part of a name, any case; then a location id exactly */
	wd_type(&browser, "#filter-q", "ALPHA den");
	wd_click(&browser, "#job-filters button[type=submit]");
	wd_wait_text(&browser, "#job-total", "1 job", 10000);
	char *text = wd_text(&browser, "#job-list");
	ck_assert_msg(strstr(text, "Alpha Dental") && !strstr(text, "Beta Bakery"), "%s", text);
	free(text);
	wd_screenshots(&browser, "jobs-search");
	wd_clear(&browser, "#filter-q");
	wd_type(&browser, "#filter-q", "LocGamma000000000001");
	wd_click(&browser, "#job-filters button[type=submit]");
	wd_wait_text(&browser, "#job-list", "Gamma Gym", 10000);
	wd_wait_text(&browser, "#job-total", "1 job", 10000);
	wd_clear(&browser, "#filter-q");
	wd_click(&browser, "#job-filters button[type=submit]");
	wd_wait_text(&browser, "#job-total", "6 jobs", 10000);

	/* the refresh patches rows in place: a mark on Delta's row survives a
	 * status change that the next refresh shows, and no column moves
	 * although the row gains an error and a Retry button */
	char *lefts = column_lefts();
	ck_assert_msg(*lefts, "no columns in #job-list");
	char *js = xasprintf("document.querySelector(\"tr[data-id='%s']\").dataset.mark = 'kept';"
			     " return true;",
			     delta);
	json_free(wd_exec(&browser, js));
	free(js);
	tl_execf(db,
		 "UPDATE provisioning_jobs SET status = 'FAILED', error_message = 'late boom'"
		 " WHERE id = '%s'",
		 delta);
	char *row = xasprintf("tr[data-id='%s']", delta);
	wd_wait_text(&browser, row, "late boom", 15000);
	char *marked = xasprintf("tr[data-id='%s'][data-mark='kept']", delta);
	char *found = wd_find(&browser, marked);
	ck_assert_msg(found, "the refresh replaced Delta's row instead of patching it");
	free(found);
	char *moved = column_lefts();
	ck_assert_msg(!strcmp(lefts, moved), "the refresh moved the columns: %s, then %s", lefts,
		      moved);
	free(moved);
	free(lefts);
	free(marked);
	free(row);

	/* select two, cancel them with the bulk bar */
	json_free(wd_exec(&browser, "window.confirm = () => true; return true;"));
	char *box = xasprintf("tr[data-id='%s'] input.job-select", alpha);
	wd_click(&browser, box);
	free(box);
	box = xasprintf("tr[data-id='%s'] input.job-select", beta);
	wd_click(&browser, box);
	free(box);
	wd_wait_text(&browser, "#bulk-count", "2 selected", 5000);
	wd_screenshots(&browser, "jobs-selected");
	wd_click(&browser, "#bulk-cancel");
	wd_wait_text(&browser, "#flash", "2 jobs cancelled", 10000);
	wait_status(alpha, "CANCELLED");
	wait_status(beta, "CANCELLED");
	wait_status(gamma, "FAILED"); /* not selected: untouched */
	row = xasprintf("tr[data-id='%s']", alpha);
	wd_wait_text(&browser, row, "CANCELLED", 10000);
	free(row);

	/* the batch: a link from its jobs, its page with the progress */
	wd_wait_text(&browser, "#job-list", batch_short(batch), 5000);
	char *bp = xasprintf("#/batches/%s/%s", agency, batch);
	go(bp);
	free(bp);
	wd_wait_text(&browser, "h1", "spring-clients.csv", 10000);
	wd_wait_text(&browser, "#batch-summary", "0 of 2 finished", 10000);
	wd_wait_text(&browser, "#batch-states", "PENDING", 5000);
	tl_execf(db, "UPDATE provisioning_jobs SET status = 'COMPLETED' WHERE batch_id = '%s'",
		 batch);
	wd_wait_text(&browser, "#batch-summary", "2 of 2 finished", 15000);
	wd_wait_text(&browser, "#batch-states", "COMPLETED", 5000);
	wd_screenshots(&browser, "batch");
	ck_assert_int_eq(wd_sideways_px(&browser, 360), 0);

	wd_assert_no_console_errors(&browser);
	csv_upload();
	batch_refresh_error_clears();
	network_error_says_what_to_do();
	char *v[] = {agency, alpha, beta, gamma, delta, batch};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web_jobs");
	TCase *tb = tcase_create("browser");
	tcase_add_unchecked_fixture(tb, setup, teardown);
	tcase_add_checked_fixture(tb, NULL, browser_teardown);
	tcase_set_timeout(tb, 180);
	tcase_add_test(tb, jobs_search_bulk_and_batch);
	suite_add_tcase(s, tb);
	return tl_run_suite(s);
}
