/* test_rewrap.c — key rotation: `ghl-agent rewrap [--dry-run]` re-encrypts
 * the tokens stored under key 7 with the newest key 8; the daemon keeps
 * working with the rewrapped tokens; a missing key is reported. */
#include "ghl_harness.h"

static int rewrap(const char *dsn, const char *keys, const char *arg, char **out)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env_keys = xasprintf("GHL_AGENT_TOKEN_KEYS=%s", keys);
	char *env[] = {env_dsn, env_keys, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"rewrap", (char *)arg, NULL};
	int rc = tl_run(argv, env, out);
	free(env_dsn);
	free(env_keys);
	return rc;
}

static void assert_in(const char *hay, const char *needle)
{
	ck_assert_msg(hay && strstr(hay, needle), "\"%s\" not in: %s", needle, hay);
}

START_TEST(rotate_and_rewrap)
{
	struct hsim sim;
	const char *flags[] = {"--company-id", "co-rewrap", NULL};
	hsim_start(&sim, flags);
	char *dsn = tl_create_db("rewrap");
	hmigrate(dsn);
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL); /* key 7 only */
	for (int i = 0; i < 3; i++) {
		char co[32];
		snprintf(co, sizeof(co), "co-rewrap-%d", i);
		struct hresp r;
		char *cb = hconnect(&a, co, &r);
		ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
		hresp_free(&r);
		free(cb);
	}
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	PGconn *c = tl_connect(dsn);
	/* a placeholder row like the demo seed's: skipped, not an error */
	PQclear(tl_sql(c, "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
			  " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Seed', 'seed-1',"
			  " 'encrypted_token_here', 'encrypted_refresh_here', LOCALTIMESTAMP)"));
	char *before = tl_sql_value(c, "SELECT string_agg(oauth_access_token_encrypted, ',' ORDER BY id)"
				       " FROM agencies");

	char *out;
	const char *both = H_KEY7 "," H_KEY8;
	ck_assert_int_eq(rewrap(dsn, both, "--dry-run", &out), 0);
	assert_in(out, "dry run: 4 agencies: 6 token(s) would be re-encrypted under key 8");
	assert_in(out, "2 not encrypted values");
	free(out);
	char *v = tl_sql_value(c, "SELECT string_agg(oauth_access_token_encrypted, ',' ORDER BY id)"
				  " FROM agencies");
	ck_assert_str_eq(v, before);
	free(v);

	ck_assert_int_eq(rewrap(dsn, both, NULL, &out), 0);
	assert_in(out, "4 agencies: 6 token(s) re-encrypted under key 8, 0 already under it");
	free(out);
	v = tl_sql_value(c, "SELECT count(*) FROM agencies WHERE oauth_access_token_encrypted LIKE 'v8:%'"
			    " AND oauth_refresh_token_encrypted LIKE 'v8:%'");
	ck_assert_str_eq(v, "3");
	free(v);
	/* the same tokens, under the new key */
	char *enc = tl_sql_value(c, "SELECT oauth_access_token_encrypted FROM agencies"
				    " WHERE ghl_agency_id = 'co-rewrap-0'");
	char *tok = hdecrypt(H_KEY8, enc);
	ck_assert_int_eq(hghl_search(&sim, tok, "co-rewrap-0"), 200);
	free(tok);
	free(enc);

	/* a second run has nothing to do */
	ck_assert_int_eq(rewrap(dsn, both, NULL, &out), 0);
	assert_in(out, "0 token(s) re-encrypted under key 8, 6 already under it");
	free(out);

	/* the daemon with only the new key refreshes the rewrapped tokens */
	PQclear(tl_sql(c, "UPDATE agencies SET token_expires_at = LOCALTIMESTAMP"
			  " WHERE ghl_agency_id LIKE 'co-rewrap-%'"));
	const char *env8[] = {"GHL_AGENT_TOKEN_KEYS=" H_KEY8, "GHL_AGENT_TOKEN_REFRESH_INTERVAL=100ms",
			      NULL};
	hagent_start(&a, dsn, &sim, env8);
	int64_t end = now_monotonic_ms() + 10000;
	while (hsim_stat(&sim, "refreshes") < 3 && now_monotonic_ms() < end)
		usleep(50000);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), 3);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	/* a value under a key that is not configured: reported, exit 1 */
	const char *key9 = "9:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
	ck_assert_int_eq(rewrap(dsn, key9, NULL, &out), 1);
	assert_in(out, "unknown key id 8");
	assert_in(out, "6 unreadable");
	assert_in(out, "hint:");
	free(out);
	/* unknown argument */
	ck_assert_int_eq(rewrap(dsn, both, "--bogus", &out), 2);
	free(out);

	char *dump = hpg_dump(dsn);
	hassert_no_tokens(&sim, "pg_dump", dump, 2 * 3);
	free(dump);
	free(before);
	PQfinish(c);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rewrap");
	TCase *t = tcase_create("rewrap");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, rotate_and_rewrap);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
