/* api_session.c — POST /api/v1/auth/login, POST /api/v1/auth/logout, GET /api/v1/me.
 *
 * Login: throttle check (per account and per client address), a bound on the
 * logins being checked at once (login_max_pending), then the attempt is
 * counted against both keys before any work is done — so parallel attempts
 * cannot overtake the limit — and a success takes it back; user lookup,
 * bcrypt on the auth worker pool (a dummy hash when the email is
 * unknown, so both misses take as long), then a new session: the token and a
 * CSRF token are returned once and stored as SHA-256 hashes. Browsers get
 * the token in an HttpOnly SameSite=Strict cookie and the CSRF token in a
 * readable cookie to echo as X-CSRF-Token. */
#include <ctype.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_int.h"
#include "app.h"
#include "passwords.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define CSRF_COOKIE "ghl_csrf"

struct login {
	struct api_state *st;
	int64_t admitted_ms; /* when the attempt was counted; 0 before */
	char *password;
	char *account_key;
	char address[64];
	char user_id[API_UUID_LEN];
	char *email;
	char *role;
	char *token;
	char *csrf;
};

static void login_free(void *arg)
{
	struct login *l = arg;
	if (!l)
		return;
	char *secrets[] = {l->password, l->token, l->csrf};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		secret_free(secrets[i]);
	if (l->admitted_ms)
		l->st->logins_pending--;
	free(l->account_key);
	free(l->email);
	free(l->role);
	free(l);
}

static void client_address(struct api_req *r, char *out, size_t n)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(r->c->req);
	char *host = NULL;
	ev_uint16_t port = 0;
	if (conn)
		evhttp_connection_get_peer(conn, &host, &port);
	snprintf(out, n, "%s", host ? host : "unknown");
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static void cookie_header(struct api_req *r, const char *name, const char *value,
			  long long max_age_s, int http_only)
{
	int secure = str_eq(r->app->cfg->session_cookie_secure, "on");
	char *v = xasprintf("%s=%s; Path=/; Max-Age=%lld; SameSite=Strict%s%s", name, value,
			    max_age_s, http_only ? "; HttpOnly" : "", secure ? "; Secure" : "");
	api_add_header(r, "Set-Cookie", v);
	secret_free(v);
}

static void login_reply(struct api_req *r, PGresult *res)
{
	struct login *l = r->data;
	if (PQntuples(res) != 1) {
		api_reply_internal(r, "session insert returned no row");
		return;
	}
	long long ttl_s = r->app->cfg->session_ttl_ms / 1000;
	cookie_header(r, SESSION_COOKIE, l->token, ttl_s, 1);
	cookie_header(r, CSRF_COOKIE, l->csrf, ttl_s, 0);
	api_add_header(r, "Cache-Control", "no-store");
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "token");
	jw_string(&w, l->token);
	jw_key(&w, "expires_at");
	jw_string(&w, PQgetvalue(res, 0, 0));
	jw_key(&w, "csrf_token");
	jw_string(&w, l->csrf);
	jw_key(&w, "user");
	jw_object_begin(&w);
	jw_key(&w, "id");
	jw_string(&w, l->user_id);
	jw_key(&w, "email");
	jw_string(&w, l->email);
	jw_key(&w, "role");
	jw_string(&w, l->role);
	jw_object_end(&w);
	jw_object_end(&w);
	char fp[CRYPTO_FINGERPRINT_LEN];
	crypto_token_fingerprint(l->token, fp);
	log_info("login", "request_id", r->c->request_id, "user_id", l->user_id, "session", fp,
		 NULL);
	api_reply_json(r, 200, buf_cstr(&b));
	crypto_wipe(b.data, b.len);
	buf_clear(&b);
}

static void login_verified(void *arg, int ok)
{
	struct api_req *r = arg;
	struct login *l = r->data;
	struct api_state *st = r->app->api;
	const struct config *cfg = r->app->cfg;
	if (!ok || !l->user_id[0]) {
		/* already counted when admitted */
		char fp[CRYPTO_FINGERPRINT_LEN];
		crypto_token_fingerprint(l->account_key, fp);
		log_warn("login failed", "request_id", r->c->request_id, "account", fp, "address",
			 l->address, NULL);
		api_reply_error(r, 401, "invalid_credentials", "email or password is wrong", NULL);
		return;
	}
	throttle_reset(st->throttle_account, l->account_key);
	throttle_forget(st->throttle_address, l->address, l->admitted_ms);
	l->token = auth_new_session_token();
	l->csrf = crypto_random_token(32);
	if (!l->token || !l->csrf) {
		api_reply_internal(r, "the random number generator failed");
		return;
	}
	char token_hash[65], csrf_hash[65];
	auth_secret_hash(l->token, token_hash);
	auth_secret_hash(l->csrf, csrf_hash);
	char ttl[48];
	snprintf(ttl, sizeof(ttl), "%lld milliseconds", (long long)cfg->session_ttl_ms);
	const char *params[] = {token_hash, l->user_id, csrf_hash, ttl};
	api_query(
		r,
		"WITH s AS (INSERT INTO sessions (token_hash, user_id, csrf_token_hash, expires_at)"
		" VALUES ($1, $2, $3, now() + $4::interval) RETURNING user_id, expires_at),"
		" au AS (" API_AUDIT_INSERT " SELECT s.user_id, NULL, 'auth.login', NULL,"
		"  s.user_id::text, NULL FROM s)"
		" SELECT " API_SQL_ISO("s.expires_at") " FROM s",
		4, params, login_reply);
}

static void login_user_found(struct api_req *r, PGresult *res)
{
	struct login *l = r->data;
	struct api_state *st = r->app->api;
	const char *hash = auth_dummy_hash;
	if (PQntuples(res) == 1) {
		snprintf(l->user_id, sizeof(l->user_id), "%s", PQgetvalue(res, 0, 0));
		hash = PQgetvalue(res, 0, 1);
		l->email = xstrdup(PQgetvalue(res, 0, 2));
		l->role = xstrdup(PQgetvalue(res, 0, 3));
	}
	auth_pool_verify(st->pool, l->password, hash, login_verified, r);
	crypto_wipe(l->password, strlen(l->password));
}

static void login(struct api_req *r)
{
	struct api_state *st = r->app->api;
	const struct config *cfg = r->app->cfg;
	struct login *l = xcalloc(1, sizeof(*l));
	l->st = st;
	r->data = l;
	r->data_free = login_free;
	l->password = xstrdup(json_get_str(r->body, "password"));
	char *email = lower_dup(json_get_str(r->body, "email"));
	l->account_key = email;
	client_address(r, l->address, sizeof(l->address));
	int64_t now = now_monotonic_ms();
	int64_t wait_a = throttle_check(st->throttle_account, l->account_key,
					cfg->login_max_failures_account,
					cfg->login_throttle_window_ms, now);
	int64_t wait_b = throttle_check(st->throttle_address, l->address,
					cfg->login_max_failures_address,
					cfg->login_throttle_window_ms, now);
	if (wait_a || wait_b) {
		char secs[32];
		snprintf(secs, sizeof(secs), "%lld",
			 (long long)(wait_a > wait_b ? wait_a : wait_b));
		api_add_header(r, "Retry-After", secs);
		char *msg = xasprintf("too many login attempts; try again in %s s", secs);
		api_reply_error(r, 429, "too_many_attempts", msg, NULL);
		free(msg);
		return;
	}
	if (st->logins_pending >= cfg->login_max_pending) {
		api_add_header(r, "Retry-After", "1");
		char *msg = xasprintf(
			"too many logins are being checked right now (login_max_pending"
			" = %lld); try again in 1 s",
			cfg->login_max_pending);
		api_reply_error(r, 429, "login_busy", msg, NULL);
		free(msg);
		return;
	}
	/* counted now, so attempts in flight count against the limits */
	throttle_fail(st->throttle_account, l->account_key, cfg->login_max_failures_account,
		      cfg->login_throttle_window_ms, now);
	throttle_fail(st->throttle_address, l->address, cfg->login_max_failures_address,
		      cfg->login_throttle_window_ms, now);
	l->admitted_ms = now;
	st->logins_pending++;
	const char *params[] = {email};
	api_query(r,
		  "SELECT id, password_hash, email, role::text FROM users"
		  " WHERE lower(email) = $1 ORDER BY created_at LIMIT 1",
		  1, params, login_user_found);
}

static const struct api_field login_fields[] = {
	{.name = "email",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .min_len = 1,
	 .max_len = 255},
	{.name = "password",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .min_len = 1,
	 .max_len = AUTH_PASSWORD_MAX},
	{0},
};

static const struct api_endpoint ep_login = {.allow = API_ALLOW_PUBLIC, .body = login_fields};

static void h_login(struct http_ctx *c)
{
	api_handle(c, &ep_login, login);
}

/* ---- logout ------------------------------------------------------------ */

static void logout_done(struct api_req *r, PGresult *res)
{
	(void)res;
	cookie_header(r, SESSION_COOKIE, "", 0, 1);
	cookie_header(r, CSRF_COOKIE, "", 0, 0);
	log_info("logout", "request_id", r->c->request_id, "user_id", r->who.user_id, NULL);
	api_reply_empty(r, 204);
}

static void logout(struct api_req *r)
{
	const char *params[] = {r->who.session_id};
	api_query(r, "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
		  1, params, logout_done);
}

static const struct api_endpoint ep_logout = {.allow = API_ALLOW_STAFF};

static void h_logout(struct http_ctx *c)
{
	api_handle(c, &ep_logout, logout);
}

/* ---- me ---------------------------------------------------------------- */

static void me(struct api_req *r)
{
	const struct principal *p = &r->who;
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "kind");
	if (p->kind == PRINCIPAL_API_KEY) {
		jw_string(&w, "api_key");
		jw_key(&w, "api_key");
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, p->api_key_id);
		jw_key(&w, "agency_id");
		jw_string(&w, p->agency_ids[0]);
		jw_object_end(&w);
	} else {
		jw_string(&w, "session");
		jw_key(&w, "user");
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, p->user_id);
		jw_key(&w, "email");
		jw_string(&w, p->email);
		jw_key(&w, "role");
		jw_string(&w, api_role_name(p->role));
		jw_key(&w, "agency_ids");
		jw_array_begin(&w);
		for (size_t i = 0; i < p->nagencies; i++)
			jw_string(&w, p->agency_ids[i]);
		jw_array_end(&w);
		jw_object_end(&w);
	}
	jw_object_end(&w);
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
}

static const struct api_endpoint ep_me = {.allow = API_ALLOW_ANY};

static void h_me(struct http_ctx *c)
{
	api_handle(c, &ep_me, me);
}

static const struct http_route auth_routes[] = {
	{"POST", "/api/v1/auth/login", h_login},
	{"POST", "/api/v1/auth/logout", h_logout},
	{"GET", "/api/v1/me", h_me},
};

const struct route_table api_auth_route_table = {auth_routes,
						 sizeof(auth_routes) / sizeof(auth_routes[0])};
