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
	char *dsn = tl_create_migrated_db("rewrap");
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
	PQclear(tl_sql(c,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Seed', 'seed-1',"
		       " 'encrypted_token_here', 'encrypted_refresh_here', LOCALTIMESTAMP)"));
	char *before = tl_sql_value(
		c, "SELECT string_agg(oauth_access_token_encrypted, ',' ORDER BY id)"
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
	v = tl_sql_value(
		c, "SELECT count(*) FROM agencies WHERE oauth_access_token_encrypted LIKE 'b8:%'"
		   " AND oauth_refresh_token_encrypted LIKE 'b8:%'");
	ck_assert_str_eq(v, "3");
	free(v);
	/* the same tokens, under the new key */
	char *enc = tl_sql_value(c, "SELECT oauth_access_token_encrypted FROM agencies"
				    " WHERE ghl_agency_id = 'co-rewrap-0'");
	char *id = tl_sql_value(c, "SELECT id FROM agencies WHERE ghl_agency_id = 'co-rewrap-0'");
	char *tok = hdecrypt(H_KEY8, enc, id, AGENCY_TOKENS_COL_ACCESS);
	ck_assert_int_eq(hghl_search(&sim, tok, "co-rewrap-0"), 200);
	free(tok);
	free(enc);
	free(id);

	/* a second run has nothing to do */
	ck_assert_int_eq(rewrap(dsn, both, NULL, &out), 0);
	assert_in(out, "0 token(s) re-encrypted under key 8, 6 already under it");
	free(out);

	/* the daemon with only the new key refreshes the rewrapped tokens */
	PQclear(tl_sql(c, "UPDATE agencies SET token_expires_at = LOCALTIMESTAMP"
			  " WHERE ghl_agency_id LIKE 'co-rewrap-%'"));
	const char *env8[] = {"GHL_AGENT_TOKEN_KEYS=" H_KEY8,
			      "GHL_AGENT_TOKEN_REFRESH_INTERVAL=100ms", NULL};
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

/* Values as versions before the AAD binding wrote them (key 7, the constant
 * additional data "ghl-agent-token-v1"). */
#define LEGACY_ACCESS "v7:ERERERERERERERER7AXz3tt5As8LHEBxMghk1Yh67mnkJFkUadENBGvFrs92zNY="
#define LEGACY_REFRESH "v7:ERERERERERERERER7AXz3tt5AtwNGVdnMk09zox05csPNAiaMEqY5xPOpr/ONOsq"

START_TEST(ciphertext_bound_to_its_row)
{
	struct hsim sim;
	hsim_start(&sim, NULL);
	char *dsn = tl_create_migrated_db("rewrap_bound");
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);
	PGconn *c = tl_connect(dsn);
	char *x = hconnect_agency(&a, c, "co-x");
	char *y = hconnect_agency(&a, c, "co-y");
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	long long refreshes = hsim_stat(&sim, "refreshes");

	/* agency x's tokens copied into agency y's row, y due for a refresh */
	tl_execf(c,
		 "UPDATE agencies y SET oauth_access_token_encrypted ="
		 " x.oauth_access_token_encrypted, oauth_refresh_token_encrypted ="
		 " x.oauth_refresh_token_encrypted, token_expires_at = LOCALTIMESTAMP"
		 " FROM agencies x WHERE x.id = '%s' AND y.id = '%s'",
		 x, y);
	const char *env[] = {"GHL_AGENT_TOKEN_REFRESH_INTERVAL=100ms", NULL};
	hagent_start(&a, dsn, &sim, env);
	/* whichever reaches y first — the start-up check of stored tokens or the
	 * refresher — must fail to decrypt x's token under y's row and say so */
	int refused = 0;
	for (int i = 0; i < 300 && !refused; i++) {
		char *seen = tl_read_file(a.log);
		refused = seen && strstr(seen, y) && strstr(seen, "authentication failed");
		free(seen);
		if (!refused)
			usleep(100 * 1000);
	}
	ck_assert_msg(refused, "agency y's row decrypted agency x's refresh token");
	ck_assert_int_eq(hagent_stop(&a), 0);
	ck_assert_int_eq(hsim_stat(&sim, "refreshes"), refreshes);
	char *log = tl_read_file(a.log);
	assert_in(log, y);
	assert_in(log, "authentication failed");
	free(log);
	unlink(a.log);

	/* values of the old format: read, and rewritten bound to their row */
	tl_execf(c,
		 "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		 " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Legacy', 'co-legacy',"
		 " '" LEGACY_ACCESS "', '" LEGACY_REFRESH "', LOCALTIMESTAMP)");
	char *legacy = tl_sqlf(c, "SELECT id FROM agencies WHERE ghl_agency_id = 'co-legacy'");
	char *out;
	ck_assert_int_eq(rewrap(dsn, H_KEY7, "--dry-run", &out), 1);
	assert_in(out, "2 token(s) would be re-encrypted under key 7"); /* the legacy pair */
	assert_in(out, "2 unreadable");					/* y's pair */
	assert_in(out, y);
	free(out);
	ck_assert_int_eq(rewrap(dsn, H_KEY7 "," H_KEY8, NULL, &out), 1);
	assert_in(out, "authentication failed");
	free(out);
	char *acc = tl_sqlf(c, "SELECT oauth_access_token_encrypted FROM agencies WHERE id = '%s'",
			    legacy);
	char *ref = tl_sqlf(c, "SELECT oauth_refresh_token_encrypted FROM agencies WHERE id = '%s'",
			    legacy);
	ck_assert_msg(str_has_prefix(acc, "b8:") && str_has_prefix(ref, "b8:"), "%s %s", acc, ref);
	char *plain = hdecrypt(H_KEY8, acc, legacy, AGENCY_TOKENS_COL_ACCESS);
	ck_assert_str_eq(plain, "legacy-access-token");
	free(plain);
	plain = hdecrypt(H_KEY8, ref, legacy, AGENCY_TOKENS_COL_REFRESH);
	ck_assert_str_eq(plain, "legacy-refresh-token");
	free(plain);
	/* bound now: the access token does not open as the refresh token */
	struct vault *v = vault_new();
	struct err e;
	ck_assert_int_eq(vault_add_keys(v, H_KEY8, &e), 0);
	ck_assert_ptr_null(vault_decrypt(v, acc, legacy, AGENCY_TOKENS_COL_REFRESH, &e));
	vault_free(v);
	free(acc);
	free(ref);
	free(legacy);
	free(x);
	free(y);
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
	tcase_add_test(t, ciphertext_bound_to_its_row);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
