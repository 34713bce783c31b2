/* api_authn.c — the authentication middleware: a Bearer token or the session
 * cookie (with its CSRF token) or an API key, looked up into r->who, then the
 * request goes on (api_proceed). See api.h. */
#include "api_int.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "passwords.h"

static void reply_unauthenticated(struct api_req *r, const char *msg)
{
	api_add_header(r, "WWW-Authenticate", "Bearer realm=\"ghl-agent\"");
	api_reply_error(r, 401, "unauthenticated", msg, NULL);
}

int api_is_safe_method(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

static const char session_sql[] =
	"WITH s AS (SELECT id, user_id, csrf_token_hash, last_seen_at FROM sessions"
	"  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()),"
	" t AS (UPDATE sessions SET last_seen_at = now() FROM s WHERE sessions.id = s.id"
	"  AND s.last_seen_at < now() - interval '60 seconds')"
	" SELECT s.id, u.id, u.role::text, u.email, s.csrf_token_hash,"
	"  COALESCE((SELECT string_agg(ua.agency_id::text, ',') FROM user_agencies ua"
	"   JOIN agencies a ON a.id = ua.agency_id AND a.deleted_at IS NULL"
	"   WHERE ua.user_id = u.id), '')"
	" FROM s JOIN users u ON u.id = s.user_id";

static const char api_key_sql[] =
	"WITH k AS (SELECT k.id, k.agency_id, k.last_used_at FROM api_keys k"
	"  JOIN agencies a ON a.id = k.agency_id AND a.deleted_at IS NULL"
	"  WHERE k.key_hash = $1 AND k.revoked_at IS NULL),"
	" t AS (UPDATE api_keys SET last_used_at = now() FROM k WHERE api_keys.id = k.id"
	"  AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds'))"
	" SELECT id, agency_id FROM k";

static void session_found(void *arg, PGresult *res, const struct err *e)
{
	struct api_req *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("session lookup failed", "request_id", r->c->request_id, "error",
			 db_why(res, e), NULL);
		api_reply_db_unavailable(r,
					 "cannot check credentials right now; try again shortly");
		return;
	}
	if (PQntuples(res) != 1) {
		reply_unauthenticated(r, "the session is invalid, expired or logged out; log in "
					 "again");
		return;
	}
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_SESSION;
	snprintf(p->session_id, sizeof(p->session_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(p->user_id, sizeof(p->user_id), "%s", PQgetvalue(res, 0, 1));
	p->role = api_role_parse(PQgetvalue(res, 0, 2));
	p->email = xstrdup(PQgetvalue(res, 0, 3));
	if (p->role == API_ROLE_AGENCY_ADMIN) {
		const char *s = PQgetvalue(res, 0, 5);
		while (*s) {
			const char *comma = strchr(s, ',');
			size_t n = comma ? (size_t)(comma - s) : strlen(s);
			api_principal_add_agency(p, s, n);
			s += n + (comma ? 1 : 0);
		}
	}
	if (p->via_cookie && !api_is_safe_method(r->c->method)) {
		const char *tok = evhttp_find_header(evhttp_request_get_input_headers(r->c->req),
						     "X-CSRF-Token");
		char h[65];
		if (!tok ||
		    (auth_secret_hash(tok, h), !crypto_str_eq_ct(h, PQgetvalue(res, 0, 4)))) {
			api_reply_error(r, 403, "csrf_failed",
					"a cookie session needs the X-CSRF-Token header with the "
					"csrf_token from login",
					NULL);
			return;
		}
	}
	api_proceed(r);
}

static void api_key_found(void *arg, PGresult *res, const struct err *e)
{
	struct api_req *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("api key lookup failed", "request_id", r->c->request_id, "error",
			 db_why(res, e), NULL);
		api_reply_db_unavailable(r,
					 "cannot check credentials right now; try again shortly");
		return;
	}
	if (PQntuples(res) != 1) {
		reply_unauthenticated(r, "the API key is invalid or revoked");
		return;
	}
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_API_KEY;
	snprintf(p->api_key_id, sizeof(p->api_key_id), "%s", PQgetvalue(res, 0, 0));
	const char *agency = PQgetvalue(res, 0, 1);
	api_principal_add_agency(p, agency, strlen(agency));
	api_key_remember(r, r->key_hash);
	api_proceed(r);
}

char *api_cookie_value(const char *header, const char *name)
{
	size_t nl = strlen(name);
	const char *p = header;
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nl && !strncmp(p, name, nl) && p[nl] == '=')
			return xstrndup(p + nl + 1, len - nl - 1);
		p = end;
	}
	return NULL;
}

void api_handle(struct http_ctx *c, const struct api_endpoint *ep, api_handler_fn fn)
{
	struct api_req *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->app = c->app;
	r->ep = ep;
	r->fn = fn;
	if (ep->allow & API_ALLOW_PUBLIC) {
		api_proceed(r);
		return;
	}
	struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
	const char *authz = evhttp_find_header(in, "Authorization");
	char *token = NULL;
	if (authz) {
		if (strncasecmp(authz, "Bearer ", 7) || !authz[7]) {
			reply_unauthenticated(r, "the Authorization header must be \"Bearer "
						 "<token or API key>\"");
			return;
		}
		token = xstrdup(authz + 7);
	} else {
		const char *cookies = evhttp_find_header(in, "Cookie");
		token = cookies ? api_cookie_value(cookies, SESSION_COOKIE) : NULL;
		r->who.via_cookie = token != NULL;
	}
	if (!token || !*token || strlen(token) > 256) {
		secret_free(token);
		reply_unauthenticated(r,
				      "authentication required: log in (POST /api/v1/auth/login) "
				      "or send Authorization: Bearer <token or API key>");
		return;
	}
	char hash[65];
	auth_secret_hash(token, hash);
	const char *params[] = {hash};
	int is_key = auth_is_api_key(token);
	token = secret_free(token);
	if (is_key && !r->who.via_cookie) {
		if (api_key_cached(r, hash)) {
			api_proceed(r);
			return;
		}
		snprintf(r->key_hash, sizeof(r->key_hash), "%s", hash);
		db_pool_query_flags(r->app->db, DB_REPLAY, api_key_sql, 1, params, api_key_found,
				    r);
	} else {
		db_pool_query_flags(r->app->db, DB_REPLAY, session_sql, 1, params, session_found,
				    r);
	}
}
