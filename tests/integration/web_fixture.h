/* web_fixture.h — shared by the dashboard's browser tests of one page group
 * each (test_web_admin.c, test_web_a11y.c): a ghl-sim serving company
 * WF_COMPANY (snapshots ready at once), a database, an API-only `ghl-agent
 * serve` pointed at both, and the browser, which never outlives the test (a
 * failed assertion exits the forked test process and atexit stops it; see
 * test_web.c). Header-only, included by one test program each after
 * defining WF_COMPANY and WF_DB (the database name's prefix). */
#ifndef GHL_WEB_FIXTURE_H
#define GHL_WEB_FIXTURE_H

#include "ghl_harness.h"
#include "webdriver.h"

static char *dsn;
static struct hsim sim;
static struct hagent ag;
static PGconn *db;
static struct wd browser;

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *flags[] = {"--company-id", WF_COMPANY, "--snapshot-delay-ms", "0", NULL};
	hsim_start(&sim, flags);
	dsn = tl_create_migrated_db(WF_DB);
	db = tl_connect(dsn);
	const char *extra[] = {"GHL_AGENT_ROLES=api", NULL};
	hagent_start(&ag, dsn, &sim, extra);
}

static void teardown(void)
{
	hagent_stop(&ag);
	unlink(ag.log);
	hsim_stop(&sim);
	PQfinish(db);
	tl_drop_db(dsn);
	free(dsn);
	curl_global_cleanup();
}

static void browser_teardown(void)
{
	wd_stop(&browser);
}

/* The browser, logged-out, for the running test (wd_stop at exit). */
static void wf_browser_start(void)
{
	wd_require_browser();
	atexit(browser_teardown);
	wd_start(&browser);
}

#endif
