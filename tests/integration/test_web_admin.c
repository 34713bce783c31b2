/* test_web_admin.c — the dashboard's admin pages in headless Chromium (issue
 * 14 item 6), driven through WebDriver (tests/support/webdriver.h) against a
 * `ghl-agent serve` pointed at ghl-sim: snapshots (sync, the last-sync time,
 * editing a niche and description), API keys (create: the secret shown once;
 * listed by prefix; revoke, asked twice), the audit log (the changes above
 * with their diffs; filtered by action) and deleting an agency (its name
 * typed to confirm). Each page: screenshots at 1400 and 390 px, no console
 * error. */
#define WF_COMPANY "co-admin"
#define WF_DB "web_admin"
#include "web_fixture.h"


/* Open route + arg (an id, or ""). */
static void go(const char *route, const char *arg)
{
	char *url = xasprintf("%s/%s%s", ag.base, route, arg);
	wd_go(&browser, url);
	free(url);
}

/* Screenshots at both widths, nothing sideways at 390 px, no console error. */
static void page_done(const char *name)
{
	wd_screenshots(&browser, name);
	int over = wd_sideways_px(&browser, 390);
	ck_assert_msg(over <= 0, "%s scrolls %d px sideways at 390 px", name, over);
	wd_assert_no_console_errors(&browser);
}

START_TEST(admin_pages)
{
	hagent_admin_token(&ag);
	char *agency = hconnect_agency(&ag, db, "co-admin");
	wf_browser_start();
	wd_login(&browser, ag.base, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);

	/* snapshots: never synced, then synced (the time shown), then one edited */
	go("#/snapshots?agency=", agency);
	wd_wait_text(&browser, "#snap-synced", "Never synced", 10000);
	wd_click(&browser, "#snap-sync");
	wd_wait_text(&browser, "#flash", "added", 10000);
	wd_wait_text(&browser, "#snap-synced", "Last synced from GHL", 10000);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM agencies WHERE id = '%s'"
				   " AND snapshots_synced_at > now() - interval '1 minute'",
				   agency),
			 1);
	wd_click(&browser, "#snapshot-list button[aria-label^='Edit']");
	wd_wait_text(&browser, "#snap-edit-form h2", "Edit", 5000);
	wd_clear(&browser, "#snap-edit-niche");
	wd_type(&browser, "#snap-edit-niche", "orthodontics");
	wd_type(&browser, "#snap-edit-description", "Braces & <b>aligners</b>");
	wd_click(&browser, "#snap-edit-save");
	wd_wait_text(&browser, "#flash", "saved", 10000);
	wd_wait_text(&browser, "#snapshot-list", "orthodontics", 10000);
	wd_wait_text(&browser, "#snapshot-list", "Braces & <b>aligners</b>", 2000);
	page_done("snapshots");

	/* API keys: the secret once, the list by prefix, revoke asked twice */
	go("#/keys?agency=", agency);
	wd_wait_text(&browser, "#key-list", "No API keys yet", 10000);
	wd_click(&browser, "#key-create"); /* no name: the server says so by the field */
	wd_wait_text(&browser, "#key-form .has-error .field-error", "", 10000);
	wd_type(&browser, "#key-name", "crm-sync");
	wd_click(&browser, "#key-create");
	wd_wait_text(&browser, "#new-key-secret", "ghl_", 10000);
	char *secret = wd_text(&browser, "#new-key-secret");
	char *prefix = tl_sqlf(db, "SELECT prefix FROM api_keys WHERE name = 'crm-sync'");
	ck_assert_msg(secret && !strncmp(secret, prefix, strlen(prefix)), "secret %s, prefix %s",
		      secret, prefix);
	wd_wait_text(&browser, "#key-list", prefix, 10000);
	char *listed = wd_text(&browser, "#key-list");
	ck_assert_msg(!strstr(listed, secret), "the list shows the whole key: %s", listed);
	page_done("keys");
	wd_click(&browser, "#key-list button.danger");
	wd_wait_text(&browser, "#key-list button.danger", "Confirm revoke", 5000);
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"),
			 1); /* not yet */
	wd_click(&browser, "#key-list button.danger");
	wd_wait_text(&browser, "#key-list", "REVOKED", 10000);
	/* a new visit does not show the secret again */
	go("#/agencies", "");
	wd_wait_text(&browser, "#agency-list", "co-admin", 10000);
	go("#/keys?agency=", agency);
	wd_wait_text(&browser, "#key-list", "REVOKED", 10000);
	char *again = wd_find(&browser, "#new-key-secret");
	ck_assert_msg(!again, "the secret is shown again");

	/* the audit log: what was just done, with the snapshot's diff */
	go("#/audit", "");
	wd_wait_text(&browser, "#audit-list", "api_key.revoke", 10000);
	wd_wait_text(&browser, "#audit-list", "api_key.create", 2000);
	wd_wait_text(&browser, "#audit-list", "snapshot.update", 2000);
	wd_wait_text(&browser, "#audit-list", "orthodontics", 2000);
	wd_wait_text(&browser, "#audit-list", "auth.login", 2000);
	wd_wait_text(&browser, "#audit-list", H_ADMIN_EMAIL, 2000);
	page_done("audit");
	go("#/audit?action=api_key", "");
	wd_wait_text(&browser, "#audit-list", "api_key.create", 10000);
	char *only = wd_text(&browser, "#audit-list");
	ck_assert_msg(!strstr(only, "auth.login") && !strstr(only, "snapshot.update"),
		      "filter action=api_key: %s", only);

	/* delete the agency: the button waits for its name */
	go("#/agencies/", agency);
	wd_wait_text(&browser, "#agency-delete-form h2", "Delete this agency", 10000);
	page_done("agency");
	char *name = tl_sqlf(db, "SELECT name FROM agencies WHERE id = '%s'", agency);
	wd_type(&browser, "#agency-delete-confirm", "not the name");
	wd_click(&browser, "#agency-delete");
	ck_assert_int_eq(tl_sqlf_n(db, "SELECT count(*) FROM agencies WHERE deleted_at IS NULL"),
			 1);
	wd_clear(&browser, "#agency-delete-confirm");
	wd_type(&browser, "#agency-delete-confirm", name);
	wd_click(&browser, "#agency-delete");
	wd_wait_text(&browser, "#flash", "deleted", 10000);
	wd_wait_text(&browser, "#agency-list", "No agencies", 10000);
	ck_assert_int_eq(tl_sqlf_n(db,
				   "SELECT count(*) FROM audit_log WHERE action = 'agency.delete'"
				   " AND agency_id = '%s'",
				   agency),
			 1);
	wd_assert_no_console_errors(&browser);
	free(name);
	free(only);
	free(listed);
	free(prefix);
	free(secret);
	free(agency);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("web_admin");
	TCase *tc = tcase_create("admin");
	tcase_set_timeout(tc, 240);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, admin_pages);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
