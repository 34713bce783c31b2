/* test_token_check.c — the start-up check of stored tokens (issue 18): an
 * agency whose tokens cannot work (the demo seed's placeholders, a value no
 * configured key decrypts) is marked needs_reconnect with the reason before
 * /readyz says ready, and shown so by the API; a start whose keys decrypt the
 * tokens again clears that mark; other reasons and deleted agencies are left
 * alone. */
#include "agency_tokens.h"
#include "ghl_harness.h"

#define KEY9 "9:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk="
#define SUMMIT "6a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7" /* seeds/001_demo_agencies.sql */

/* plain sealed with key for the agency's row and column (the vault binds both). */
static char *encrypt_with(const char *key, const char *plain, const char *agency_id,
			  const char *column)
{
	struct vault *v = vault_new();
	struct err e;
	ck_assert_msg(vault_add_keys(v, key, &e) == 0, "%s", e.msg);
	char *out = vault_encrypt(v, plain, agency_id, column, &e);
	ck_assert_msg(out, "%s", e.msg);
	vault_free(v);
	return out;
}

static void add_agency_id(PGconn *c, const char *id, const char *co, const char *access,
			  const char *refresh, const char *extra_cols, const char *extra_vals)
{
	tl_execf(c,
		 "INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,"
		 " oauth_refresh_token_encrypted, token_expires_at%s) VALUES (%s, '%s', '%s', '%s',"
		 " '%s', now() + interval '1 day'%s)",
		 extra_cols, id, co, co, access, refresh, extra_vals);
}

static void add_agency(PGconn *c, const char *co, const char *access, const char *refresh,
		       const char *extra_cols, const char *extra_vals)
{
	add_agency_id(c, "gen_random_uuid()", co, access, refresh, extra_cols, extra_vals);
}

/* An agency whose access token is sealed with akey and refresh token with rkey. */
static void add_sealed(PGconn *c, const char *id, const char *co, const char *akey,
		       const char *rkey, const char *extra_cols, const char *extra_vals)
{
	char *a = encrypt_with(akey, "access", id, AGENCY_TOKENS_COL_ACCESS);
	char *r = encrypt_with(rkey, "refresh", id, AGENCY_TOKENS_COL_REFRESH);
	char *quoted = xasprintf("'%s'", id);
	add_agency_id(c, quoted, co, a, r, extra_cols, extra_vals);
	free(quoted);
	free(a);
	free(r);
}

static char *state(PGconn *c, const char *where)
{
	return tl_sqlf(c,
		       "SELECT needs_reconnect || ' ' || COALESCE(reconnect_reason, '-')"
		       " FROM agencies WHERE %s",
		       where);
}

static void assert_prefix(const char *got, const char *want)
{
	ck_assert_msg(!strncmp(got, want, strlen(want)), "\"%s\" does not start with \"%s\"", got,
		      want);
}

START_TEST(unusable_tokens_marked_at_start_up)
{
	char *dsn = tl_create_migrated_db("token_check");
	PGconn *c = tl_connect(dsn);
	char *seed_path = xasprintf("%s/seeds/001_demo_agencies.sql", tl_env("GHL_SOURCE_DIR"));
	char *seed = tl_read_file(seed_path);
	ck_assert_msg(*seed, "cannot read %s", seed_path);
	PQclear(tl_sql(c, seed));
	add_sealed(c, "7c000000-0000-4000-8000-000000000001", "co-good", H_KEY7, H_KEY7, "", "");
	add_sealed(c, "7c000000-0000-4000-8000-000000000002", "co-key9", KEY9, KEY9, "", "");
	add_sealed(c, "7c000000-0000-4000-8000-000000000003", "co-access9", KEY9, H_KEY7, "", "");
	add_sealed(c, "7c000000-0000-4000-8000-000000000004", "co-cleared", H_KEY7, H_KEY7,
		   ", needs_reconnect, reconnect_reason",
		   ", true, 'stored tokens unusable: an earlier start'");
	add_agency(c, "co-refused", "x", "y", ", needs_reconnect, reconnect_reason",
		   ", true, 'GHL refused the refresh (invalid_grant)'");
	add_agency(c, "co-deleted", "x", "y", ", deleted_at", ", now()");

	struct hagent a;
	hagent_start(&a, dsn, NULL, NULL); /* key 7 only; returns once /readyz is 200 */
	char *v = state(c, "id = '" SUMMIT "'");
	assert_prefix(v, "true stored tokens unusable: no encrypted refresh token is stored");
	free(v);
	v = state(c, "ghl_agency_id = 'test-ghl-agency-001'");
	assert_prefix(v, "true stored tokens unusable: no encrypted refresh token");
	free(v);
	v = state(c, "ghl_agency_id = 'co-key9'");
	assert_prefix(v,
		      "true stored tokens unusable: the stored refresh token cannot be decrypted");
	ck_assert_msg(strstr(v, "add its key to token_keys"), "%s", v);
	free(v);
	v = state(c, "ghl_agency_id = 'co-access9'");
	assert_prefix(v,
		      "true stored tokens unusable: the stored access token cannot be decrypted");
	free(v);
	v = state(c, "ghl_agency_id = 'co-good'");
	ck_assert_str_eq(v, "false -");
	free(v);
	v = state(c, "ghl_agency_id = 'co-cleared'");
	ck_assert_str_eq(v, "false -");
	free(v);
	v = state(c, "ghl_agency_id = 'co-refused'");
	ck_assert_str_eq(v, "true GHL refused the refresh (invalid_grant)");
	free(v);
	v = state(c, "ghl_agency_id = 'co-deleted'");
	ck_assert_str_eq(v, "false -");
	free(v);

	/* the API shows it */
	char *url = hagent_url(&a, "/api/v1/agencies/" SUMMIT);
	char *authz = hagent_admin_header(&a);
	const char *h[] = {authz, NULL};
	char *body = NULL;
	ck_assert_int_eq(tl_http("GET", url, h, NULL, &body), 200);
	ck_assert_msg(strstr(body, "\"needs_reconnect\":true") &&
			      strstr(body, "\"reconnect_reason\":\"stored tokens unusable: "),
		      "%s", body);
	free(body);
	free(authz);
	free(url);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	/* key 9 configured again: its agencies are usable, the placeholders still not */
	const char *both[] = {"GHL_AGENT_TOKEN_KEYS=" H_KEY7 "," KEY9, NULL};
	hagent_start(&a, dsn, NULL, both);
	v = state(c, "ghl_agency_id = 'co-key9'");
	ck_assert_str_eq(v, "false -");
	free(v);
	v = state(c, "ghl_agency_id = 'co-access9'");
	ck_assert_str_eq(v, "false -");
	free(v);
	v = state(c, "id = '" SUMMIT "'");
	assert_prefix(v, "true stored tokens unusable: ");
	free(v);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	free(seed);
	free(seed_path);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("token_check");
	TCase *t = tcase_create("token_check");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, unusable_tokens_marked_at_start_up);
	suite_add_tcase(s, t);
	return tl_run_suite(s);
}
