/* test_oauth.c — GET /oauth/connect and /oauth/callback end to end: a real
 * `ghl-agent serve`, the real ghl-sim, a real PostgreSQL. The connection
 * stores encrypted tokens; every failure answers an error page and writes
 * nothing; no token ghl-sim issued reaches the log or a pg_dump. */
#include "ghl_harness.h"

#include "crypto.h"

static char *row(PGconn *c, const char *sql)
{
	return tl_sql_value(c, sql);
}

static void assert_in(const char *hay, const char *needle)
{
	ck_assert_msg(hay && strstr(hay, needle), "\"%s\" not in: %s", needle, hay);
}

START_TEST(connect_end_to_end)
{
	const char *flags[] = {"--company-id", "co-oauth-main", NULL};
	struct hsim sim;
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("oauth_e2e");
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);

	/* only a logged-in ADMIN or AGENCY_ADMIN may start a connection */
	struct hresp r;
	char *url = hagent_url(&a, "/oauth/connect");
	hhttp(&r, "GET", url, NULL, NULL, 0);
	ck_assert_msg(r.status == 401 && !r.location && strstr(r.body, "unauthenticated"), "%ld %s",
		      r.status, r.body);
	hresp_free(&r);
	const char *bad[] = {"Authorization: Bearer not-a-session", NULL};
	hhttp(&r, "GET", url, bad, NULL, 0);
	ck_assert_int_eq(r.status, 401);
	hresp_free(&r);

	/* the redirect carries everything GHL needs */
	char *authz = hagent_admin_header(&a);
	const char *hdrs[] = {authz, NULL};
	hhttp(&r, "GET", url, hdrs, NULL, 0);
	free(authz);
	free(url);
	ck_assert_int_eq(r.status, 302);
	ck_assert_ptr_nonnull(r.location);
	char *authorize = xasprintf("%s/oauth/chooselocation?", sim.base);
	ck_assert_msg(str_has_prefix(r.location, authorize), "%s", r.location);
	free(authorize);
	assert_in(r.location, "response_type=code");
	assert_in(r.location, "client_id=" H_CLIENT_ID);
	char *redir = xasprintf("redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Foauth%%2Fcallback",
				a.port);
	assert_in(r.location, redir);
	free(redir);
	assert_in(r.location, "scope=locations.write%20locations.readonly");
	assert_in(r.location, "&state=");
	hresp_free(&r);

	/* the dance: a new agency row with encrypted tokens */
	char *admin = hagent_admin_header(&a);
	char *cookie = NULL;
	char *callback = hconnect_as(&a, admin, NULL, &r, &cookie);
	free(admin);
	ck_assert_msg(r.status == 200, "callback: %ld %s", r.status, r.body);
	assert_in(r.body, "is connected");
	assert_in(r.body, "co-oauth-main");
	hresp_free(&r);

	PGconn *c = tl_connect(dsn);
	char *v = row(c, "SELECT count(*) FROM agencies WHERE ghl_agency_id = 'co-oauth-main'"
			 " AND deleted_at IS NULL AND needs_reconnect = false"
			 " AND token_expires_at > LOCALTIMESTAMP + interval '23 hours'"
			 " AND last_refreshed_at IS NOT NULL");
	ck_assert_str_eq(v, "1");
	free(v);
	char *acc = row(c, "SELECT oauth_access_token_encrypted FROM agencies");
	char *ref = row(c, "SELECT oauth_refresh_token_encrypted FROM agencies");
	char *id = row(c, "SELECT id FROM agencies");
	ck_assert_msg(str_has_prefix(acc, "b7:") && str_has_prefix(ref, "b7:"), "%s %s", acc, ref);
	char *access = hdecrypt(H_KEY7, acc, id, AGENCY_TOKENS_COL_ACCESS);
	char *refresh = hdecrypt(H_KEY7, ref, id, AGENCY_TOKENS_COL_REFRESH);
	free(id);
	ck_assert_int_eq(hghl_search(&sim, access, "co-oauth-main"), 200);
	/* the stored refresh token is the live one ghl-sim issued */
	struct json *st = hsim_admin(&sim, "GET", "state", NULL);
	struct json *toks = json_get(st, "tokens");
	int found = 0;
	for (size_t i = 0; i < json_len(toks); i++) {
		const struct json *t = json_at(toks, i);
		if (str_eq(json_get_str(t, "token"), refresh)) {
			found = 1;
			ck_assert_int_eq(json_get_bool(t, "used"), 0);
			ck_assert_str_eq(json_get_str(t, "kind"), "refresh");
		}
	}
	ck_assert_msg(found, "stored refresh token unknown to ghl-sim");
	json_free(st);

	/* the same callback again, in the same browser: the state is spent */
	const char *jar[] = {cookie, NULL};
	hhttp(&r, "GET", callback, jar, NULL, 0);
	ck_assert_msg(r.status == 400, "replayed callback: %ld %s", r.status, r.body);
	assert_in(r.body, "already been used");
	assert_in(r.body, "No agency was connected or changed");
	hresp_free(&r);
	free(cookie);
	v = row(c, "SELECT oauth_access_token_encrypted FROM agencies");
	ck_assert_str_eq(v, acc);
	free(v);

	/* connecting again updates the same row with new tokens */
	free(callback);
	callback = hconnect(&a, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	v = row(c, "SELECT count(*) FROM agencies");
	ck_assert_str_eq(v, "1");
	free(v);
	v = row(c, "SELECT oauth_access_token_encrypted FROM agencies");
	ck_assert_str_ne(v, acc);
	free(v);

	/* a second company is a second agency */
	free(callback);
	callback = hconnect(&a, "co-oauth-second", &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	assert_in(r.body, "co-oauth-second");
	hresp_free(&r);
	v = row(c, "SELECT count(*) FROM agencies");
	ck_assert_str_eq(v, "2");
	free(v);

	ck_assert_int_eq(hagent_stop(&a), 0);
	char *log = tl_read_file(a.log);
	assert_in(log, "agency connected");
	hassert_no_tokens(&sim, "the agent's log", log, 6);
	ck_assert_msg(!strstr(log, H_CLIENT_SECRET), "client secret in log");
	char *dump = hpg_dump(dsn);
	assert_in(dump, "co-oauth-second");
	hassert_no_tokens(&sim, "pg_dump", dump, 6);
	free(dump);
	free(log);
	unlink(a.log);
	free(callback);
	free(access);
	free(refresh);
	free(acc);
	free(ref);
	PQfinish(c);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* /oauth/callback?query in a browser holding cookie ("Cookie: …" or NULL). */
static long callback_in(struct hagent *a, const char *query, const char *cookie, char **body)
{
	char *path = xasprintf("/oauth/callback?%s", query);
	char *url = hagent_url(a, path);
	struct hresp r;
	const char *h[] = {cookie, NULL};
	hhttp(&r, "GET", url, cookie ? h : NULL, NULL, 0);
	free(url);
	free(path);
	*body = r.body;
	r.body = NULL;
	long st = r.status;
	hresp_free(&r);
	return st;
}

/* A callback URL with the given state and code, in a browser without cookies. */
static long callback_with(struct hagent *a, const char *query, char **body)
{
	return callback_in(a, query, NULL, body);
}

/* GET /oauth/connect as the harness's ADMIN: the state it issued (malloc'd)
 * and *cookie, the "Cookie: …" header of the browser that asked. */
static char *start_connect(struct hagent *a, char **cookie)
{
	struct hresp r;
	char *url = hagent_url(a, "/oauth/connect");
	char *authz = hagent_admin_header(a);
	const char *h[] = {authz, NULL};
	hhttp(&r, "GET", url, h, NULL, 0);
	free(authz);
	free(url);
	ck_assert_msg(r.status == 302 && r.location, "connect: %ld %s", r.status, r.body);
	const char *st = strstr(r.location, "state=");
	ck_assert_ptr_nonnull(st);
	char *state = xstrndup(st + 6, strcspn(st + 6, "&"));
	*cookie = hoauth_cookie(r.headers);
	hresp_free(&r);
	return state;
}

START_TEST(callback_failures_write_nothing)
{
	struct hsim sim;
	hsim_start(&sim, NULL);
	char *dsn = tl_create_migrated_db("oauth_fail");
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);
	char *body;
	int64_t now = now_wall_ms() / 1000;

	/* a real code from the sim, so only the state is wrong */
	struct hresp r;
	char *url = xasprintf("%s/oauth/chooselocation?response_type=code&client_id=%s"
			      "&redirect_uri=http://127.0.0.1:%d/oauth/callback&state=x",
			      sim.base, H_CLIENT_ID, a.port);
	hhttp(&r, "GET", url, NULL, NULL, 0);
	free(url);
	ck_assert_int_eq(r.status, 302);
	const char *code = strstr(r.location, "code=") + 5;
	char *codev = xstrndup(code, strcspn(code, "&"));
	hresp_free(&r);

	/* tampered: signed with another secret */
	char *bad = crypto_state_sign("not-the-secret", "nonce", now + 600);
	char *q = xasprintf("code=%s&state=%s", codev, bad);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "invalid");
	assert_in(body, "signature mismatch");
	free(body);
	free(q);
	free(bad);

	/* tampered: one character of a good state changed */
	char *good = crypto_state_sign(H_STATE_SECRET, "nonce", now + 600);
	good[2] = good[2] == 'A' ? 'B' : 'A';
	q = xasprintf("code=%s&state=%s", codev, good);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "The connection request is invalid");
	free(body);
	free(q);
	free(good);

	/* expired */
	char *old = crypto_state_sign(H_STATE_SECRET, "nonce", now - 5);
	q = xasprintf("code=%s&state=%s", codev, old);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "has expired");
	free(body);
	free(q);
	free(old);

	/* missing state, missing code */
	q = xasprintf("code=%s", codev);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "state parameter is missing");
	free(body);
	free(q);
	char *ok = crypto_state_sign(H_STATE_SECRET, "nonce", now + 600);
	q = xasprintf("state=%s", ok);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "code parameter is missing");
	free(body);
	free(q);

	/* GHL's error redirect, escaped in the page */
	ck_assert_int_eq(
		callback_with(&a,
			      "error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E",
			      &body),
		400);
	assert_in(body, "access_denied");
	assert_in(body, "&lt;script&gt;");
	ck_assert_msg(!strstr(body, "<script>"), "unescaped: %s", body);
	free(body);

	/* a signed state this agent never issued (no cookie, nothing stored) */
	q = xasprintf("code=%s&state=%s", codev, ok);
	ck_assert_int_eq(callback_with(&a, q, &body), 400);
	assert_in(body, "another browser");
	free(body);
	free(q);
	free(ok);

	/* an unknown code with a good state: GHL refuses */
	char *cookie;
	char *state = start_connect(&a, &cookie);
	q = xasprintf("code=no-such-code&state=%s", state);
	ck_assert_int_eq(callback_in(&a, q, cookie, &body), 400);
	assert_in(body, "GoHighLevel refused the connection");
	assert_in(body, "Invalid authorization code");
	free(body);
	free(q);
	free(state);
	free(cookie);

	PGconn *c = tl_connect(dsn);
	char *v = tl_sql_value(c, "SELECT count(*) FROM agencies");
	ck_assert_str_eq(v, "0");
	free(v);
	PQfinish(c);

	/* the unused code still works: the failures above did not consume it */
	state = start_connect(&a, &cookie);
	q = xasprintf("code=%s&state=%s", codev, state);
	ck_assert_int_eq(callback_in(&a, q, cookie, &body), 200);
	free(body);
	free(q);
	free(state);
	free(cookie);
	free(codev);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(state_secret_required_outside_demo)
{
	struct hsim sim;
	hsim_start(&sim, NULL);
	char *dsn = tl_create_migrated_db("oauth_secret");
	struct hagent a;
	const char *no_secret[] = {"GHL_AGENT_OAUTH_STATE_SECRET=", NULL};
	hagent_start(&a, dsn, &sim, no_secret);
	struct hresp r;
	char *url = hagent_url(&a, "/oauth/connect");
	char *authz = hagent_admin_header(&a);
	const char *hdrs[] = {authz, NULL};
	hhttp(&r, "GET", url, hdrs, NULL, 0);
	free(authz);
	ck_assert_int_eq(r.status, 500);
	assert_in(r.body, "oauth_state_secret is not set");
	assert_in(r.body, "GHL_AGENT_OAUTH_STATE_SECRET");
	hresp_free(&r);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	/* demo mode derives one (and warns) */
	const char *demo[] = {"GHL_AGENT_OAUTH_STATE_SECRET=", "GHL_AGENT_DEMO=on", NULL};
	hagent_start(&a, dsn, &sim, demo);
	char *cb = hconnect(&a, "co-demo", &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(cb);
	ck_assert_int_eq(hagent_stop(&a), 0);
	char *log = tl_read_file(a.log);
	assert_in(log, "demo mode derives one");
	free(log);
	unlink(a.log);
	free(url);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

/* The authorize redirect for a state: a fresh code each time, same state. */
static char *authorize_again(struct hsim *sim, struct hagent *a, const char *state)
{
	char *url = xasprintf("%s/oauth/chooselocation?response_type=code&client_id=%s"
			      "&redirect_uri=http://127.0.0.1:%d/oauth/callback&state=%s",
			      sim->base, H_CLIENT_ID, a->port, state);
	struct hresp r;
	hhttp(&r, "GET", url, NULL, NULL, 0);
	free(url);
	ck_assert_msg(r.status == 302 && r.location, "authorize: %ld %s", r.status, r.body);
	const char *q = strchr(r.location, '?');
	char *query = xstrdup(q ? q + 1 : "");
	hresp_free(&r);
	return query;
}

START_TEST(state_single_use_and_bound_to_browser)
{
	const char *flags[] = {"--company-id", "co-once", NULL};
	struct hsim sim;
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("oauth_state");
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);
	PGconn *c = tl_connect(dsn);

	/* /oauth/connect sets a short-lived, browser-only cookie */
	struct hresp r;
	char *url = hagent_url(&a, "/oauth/connect");
	char *authz = hagent_admin_header(&a);
	const char *h[] = {authz, NULL};
	hhttp(&r, "GET", url, h, NULL, 0);
	ck_assert_int_eq(r.status, 302);
	const char *set = strstr(r.headers, "Set-Cookie: " H_OAUTH_COOKIE "=");
	ck_assert_msg(set, "no " H_OAUTH_COOKIE " cookie: %s", r.headers);
	char *line = xstrndup(set, strcspn(set, "\r\n"));
	assert_in(line, "SameSite=Lax");
	assert_in(line, "HttpOnly");
	assert_in(line, "Max-Age=600");
	free(line);
	char *cookie = hoauth_cookie(r.headers);
	const char *st = strstr(r.location, "state=");
	char *state = xstrndup(st + 6, strcspn(st + 6, "&"));
	hresp_free(&r);

	/* two codes for the one state (a leaked state, replayed) */
	char *q1 = authorize_again(&sim, &a, state);
	char *q2 = authorize_again(&sim, &a, state);
	char *body;
	/* another browser: no cookie, or someone else's */
	ck_assert_int_eq(callback_in(&a, q1, NULL, &body), 400);
	assert_in(body, "another browser");
	free(body);
	ck_assert_int_eq(callback_in(&a, q1, "Cookie: " H_OAUTH_COOKIE "=someone-elses", &body),
			 400);
	assert_in(body, "another browser");
	free(body);
	ck_assert_int_eq(tl_sqlf_n(c, "SELECT count(*) FROM agencies"), 0);
	/* the browser that started it completes it, once */
	ck_assert_int_eq(callback_in(&a, q1, cookie, &body), 200);
	assert_in(body, "is connected");
	free(body);
	char *tokens = tl_sqlf(c, "SELECT oauth_access_token_encrypted FROM agencies");
	ck_assert_int_eq(callback_in(&a, q2, cookie, &body), 400);
	assert_in(body, "already been used");
	free(body);
	char *after = tl_sqlf(c, "SELECT oauth_access_token_encrypted FROM agencies");
	ck_assert_str_eq(after, tokens);
	/* the second code was never exchanged: one access and one refresh token */
	int ntok = 0;
	char **toks = hsim_tokens(&sim, &ntok);
	hfree_strv(toks, ntok);
	ck_assert_int_eq(ntok, 2);
	free(after);
	free(tokens);
	free(q1);
	free(q2);
	free(state);
	free(cookie);
	free(authz);
	free(url);
	PQfinish(c);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

#define PW_AA "agency admin password 1"

START_TEST(agency_admin_connects_only_its_own_agencies)
{
	struct hsim sim;
	hsim_start(&sim, NULL);
	char *dsn = tl_create_migrated_db("oauth_scope");
	struct hagent a;
	hagent_start(&a, dsn, &sim, NULL);
	PGconn *c = tl_connect(dsn);
	char *id_a = hconnect_agency(&a, c, "co-victim");
	char *id_b = hconnect_agency(&a, c, "co-mine");
	char *args = xasprintf("--email aa@example.com --role AGENCY_ADMIN --agency %s", id_b);
	huser_add(&a, args, PW_AA);
	free(args);
	char *aa_token = hlogin(&a, "aa@example.com", PW_AA);
	char *aa = xasprintf("Authorization: Bearer %s", aa_token);
	char *victim_before = tl_sqlf(c,
				      "SELECT oauth_access_token_encrypted FROM agencies"
				      " WHERE id = '%s'",
				      id_a);

	/* another agency's company: refused, its tokens untouched */
	struct hresp r;
	free(hconnect_as(&a, aa, "co-victim", &r, NULL));
	ck_assert_msg(r.status == 403, "%ld %s", r.status, r.body);
	assert_in(r.body, "not one of your agencies");
	assert_in(r.body, "No agency was connected or changed");
	hresp_free(&r);
	char *v = tl_sqlf(c, "SELECT oauth_access_token_encrypted FROM agencies WHERE id = '%s'",
			  id_a);
	ck_assert_str_eq(v, victim_before);
	free(v);
	/* a new company: only an ADMIN adds agencies */
	free(hconnect_as(&a, aa, "co-brand-new", &r, NULL));
	ck_assert_msg(r.status == 403, "%ld %s", r.status, r.body);
	hresp_free(&r);
	ck_assert_int_eq(tl_sqlf_n(c, "SELECT count(*) FROM agencies"), 2);
	/* its own agency: reconnected */
	char *mine_before = tl_sqlf(c,
				    "SELECT oauth_access_token_encrypted FROM agencies"
				    " WHERE id = '%s'",
				    id_b);
	free(hconnect_as(&a, aa, "co-mine", &r, NULL));
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	v = tl_sqlf(c, "SELECT oauth_access_token_encrypted FROM agencies WHERE id = '%s'", id_b);
	ck_assert_str_ne(v, mine_before);
	free(v);

	/* deleted: the AGENCY_ADMIN cannot bring it back, an ADMIN can */
	char *path = xasprintf("/api/v1/agencies/%s", id_b);
	char *url = hagent_url(&a, path);
	char *admin = hagent_admin_header(&a);
	const char *h[] = {admin, NULL};
	hhttp(&r, "DELETE", url, h, NULL, 0);
	ck_assert_msg(r.status == 204, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(hconnect_as(&a, aa, "co-mine", &r, NULL));
	ck_assert_msg(r.status == 403, "%ld %s", r.status, r.body);
	hresp_free(&r);
	ck_assert_int_eq(tl_sqlf_n(c,
				   "SELECT count(*) FROM agencies WHERE id = '%s'"
				   " AND deleted_at IS NULL",
				   id_b),
			 0);
	free(hconnect_as(&a, admin, "co-mine", &r, NULL));
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	ck_assert_int_eq(tl_sqlf_n(c,
				   "SELECT count(*) FROM agencies WHERE id = '%s'"
				   " AND deleted_at IS NULL",
				   id_b),
			 1);
	/* … without its old user links */
	ck_assert_int_eq(
		tl_sqlf_n(c, "SELECT count(*) FROM user_agencies WHERE agency_id = '%s'", id_b), 0);

	free(admin);
	free(url);
	free(path);
	free(mine_before);
	free(victim_before);
	free(aa);
	free(aa_token);
	free(id_a);
	free(id_b);
	PQfinish(c);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("oauth");
	TCase *t = tcase_create("oauth");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, connect_end_to_end);
	tcase_add_test(t, callback_failures_write_nothing);
	tcase_add_test(t, state_secret_required_outside_demo);
	tcase_add_test(t, state_single_use_and_bound_to_browser);
	tcase_add_test(t, agency_admin_connects_only_its_own_agencies);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
