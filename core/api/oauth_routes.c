/* oauth_routes.c — GET /oauth/connect and GET /oauth/callback (see oauth_routes.h). */
#include "oauth_routes.h"

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "api.h"
#include "app.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "ghl_client.h"
#include "http.h"
#include "log.h"
#include "vault.h"

#define MAX_QUERY_LEN 8192     /* a callback URL longer than this is refused */
#define MAX_COMPANY_ID_LEN 255 /* agencies.ghl_agency_id is VARCHAR(255) */
#define STATE_NONCE_BYTES 18
#define BROWSER_TOKEN_BYTES 24
#define OAUTH_COOKIE "ghl_oauth" /* binds a connection to its browser */
#define DEMO_STATE_LABEL "ghl-agent oauth state secret (demo mode) v1"
#define DEFAULT_EXPIRES_IN 86399

/* ---- state secret -------------------------------------------------------------- */

char *oauth_state_secret(const struct config *cfg, struct err *e)
{
	if (cfg->oauth_state_secret[0])
		return xstrdup(cfg->oauth_state_secret);
	if (!str_eq(cfg->demo, "on")) {
		err_set(e,
			"oauth_state_secret is not set; set it (GHL_AGENT_OAUTH_STATE_SECRET) to "
			"a long random string, e.g. the output of `openssl rand -base64 32`");
		return NULL;
	}
	/* demo: derived from the token keys, so every process of one set-up agrees */
	char *keys = NULL;
	size_t len = 0;
	if (cfg->token_keys[0])
		keys = xstrdup(cfg->token_keys);
	else if (!cfg->token_keys_file[0] || file_read_all(cfg->token_keys_file, &keys, &len, NULL))
		keys = xstrdup("ghl-agent-demo");
	char hex[CRYPTO_SHA256_HEX_LEN];
	int rc = crypto_hmac_sha256_hex(keys, strlen(keys), DEMO_STATE_LABEL,
					strlen(DEMO_STATE_LABEL), hex);
	secret_free(keys);
	if (rc) {
		err_set(e, "cannot derive the demo OAuth state secret");
		return NULL;
	}
	char *out = xstrdup(hex);
	crypto_wipe(hex, sizeof(hex));
	return out;
}

void oauth_check_config(const struct config *cfg)
{
	if (!cfg->oauth_state_secret[0]) {
		if (str_eq(cfg->demo, "on"))
			log_warn(
				"oauth_state_secret is not set: demo mode derives one from the token "
				"keys; set GHL_AGENT_OAUTH_STATE_SECRET outside the demo",
				NULL);
		else
			log_warn("oauth_state_secret is not set: /oauth/connect answers 500 until "
				 "it is (GHL_AGENT_OAUTH_STATE_SECRET)",
				 NULL);
	}
	if (!cfg->ghl_client_id[0] || !cfg->ghl_client_secret[0])
		log_warn("ghl_client_id / ghl_client_secret are not set: agencies cannot connect "
			 "to GoHighLevel",
			 NULL);
}

/* ---- pages ----------------------------------------------------------------------- */

static void html_escape(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '&': buf_puts(b, "&amp;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#39;"); break;
		default: buf_putc(b, *s);
		}
	}
}

static void page_begin(struct buf *b, const char *title)
{
	buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	html_escape(b, title);
	/* the dashboard's stylesheet: the page looks like the rest of it */
	buf_puts(b, "</title><link rel=\"stylesheet\" href=\"/web/style.css\"></head>"
		    "<body class=\"oauth-page\"><main><div class=\"card\">\n<h1>");
	html_escape(b, title);
	buf_puts(b, "</h1>\n");
}

/* The way back to the dashboard: the agency's page when there is one. */
static void page_links(struct buf *b, const char *agency_id, const char *agency_name)
{
	buf_puts(b, "<p class=\"oauth-links\">");
	if (agency_id) {
		buf_puts(b, "<a class=\"button\" href=\"/#/agencies/");
		html_escape(b, agency_id);
		buf_puts(b, "\">Open ");
		html_escape(b, agency_name);
		buf_puts(b, "</a> ");
	}
	buf_puts(b, "<a href=\"/#/agencies\">Back to the agencies</a></p>\n");
}

static void page_send(struct http_ctx *c, int status, struct buf *b)
{
	buf_puts(b, "</div></main></body></html>\n");
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'none'; style-src 'self'; frame-ancestors 'none'");
	http_reply(c, status, "text/html; charset=utf-8", b->data, b->len);
	buf_clear(b);
}

/* An error page: a short first line, the detail, then what to do. */
static void error_page(struct http_ctx *c, int status, const char *title, const char *detail,
		       const char *hint)
{
	struct buf b;
	buf_init(&b);
	page_begin(&b, title);
	if (detail) {
		buf_puts(&b, "<p>");
		html_escape(&b, detail);
		buf_puts(&b, "</p>\n");
	}
	if (hint) {
		buf_puts(&b, "<p>");
		html_escape(&b, hint);
		buf_puts(&b, "</p>\n");
	}
	buf_puts(&b, "<p>No agency was connected or changed.</p>\n");
	page_links(&b, NULL, NULL);
	char st[8];
	snprintf(st, sizeof(st), "%d", status);
	log_warn("oauth: connection refused", "request_id", c->request_id, "status", st, "reason",
		 title, "detail", detail, NULL);
	page_send(c, status, &b);
}

/* Remember a state until it expires (and forget the expired ones). */
static const char sql_state_insert[] =
	"WITH gone AS (DELETE FROM oauth_states WHERE expires_at < now())"
	" INSERT INTO oauth_states (state_hash, browser_hash, user_id, expires_at)"
	" VALUES ($1, $2, $3::uuid, to_timestamp($4::double precision))";

/* ---- GET /oauth/connect --------------------------------------------------------------- */

static void add_param(struct buf *url, const char *name, const char *value, int *first)
{
	char *enc = ghl_urlencode(value);
	buf_printf(url, "%s%s=%s", *first ? "" : "&", name, enc);
	*first = 0;
	free(enc);
}

/* The cookie binding a connection to the browser that started it. */
static void browser_cookie(struct http_ctx *c, const char *value, long long max_age_s)
{
	const struct config *cfg = ((struct app *)c->app)->cfg;
	char *v = xasprintf(OAUTH_COOKIE "=%s; Path=/oauth/callback; Max-Age=%lld; HttpOnly; "
					 "SameSite=Lax%s",
			    value, max_age_s,
			    str_eq(cfg->session_cookie_secure, "on") ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Set-Cookie", v);
	secret_free(v);
}

struct connect {
	struct http_ctx *c;
	char *url;     /* GHL's authorize URL with our state */
	char *browser; /* the cookie's value */
	long long ttl_s;
};

static void connect_free(struct connect *k)
{
	free(k->url);
	secret_free(k->browser);
	free(k);
}

static void on_state_stored(void *arg, PGresult *res, const struct err *e)
{
	struct connect *k = arg;
	struct http_ctx *c = k->c;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_error("oauth: cannot store the state", "request_id", c->request_id, "error",
			  db_why(res, e), NULL);
		error_page(c, 503, "Cannot start the connection",
			   "The database did not accept the connection request.",
			   "Try again in a moment.");
		connect_free(k);
		return;
	}
	browser_cookie(c, k->browser, k->ttl_s);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Location", k->url);
	struct buf b;
	buf_init(&b);
	page_begin(&b, "Connecting to GoHighLevel");
	buf_puts(&b, "<p><a href=\"");
	html_escape(&b, k->url);
	buf_puts(&b, "\">Continue to GoHighLevel</a></p>\n");
	log_info("oauth: connect started", "request_id", c->request_id, NULL);
	page_send(c, 302, &b);
	connect_free(k);
}

/* A signed, expiring state, remembered with who asked and a hash of a new
 * cookie for this browser; the callback accepts it once, from that browser. */
static void connect_start(struct http_ctx *c, const char *user_id)
{
	struct app *app = c->app;
	const struct config *cfg = app->cfg;
	struct err e;
	if (!cfg->ghl_client_id[0]) {
		error_page(c, 500, "GoHighLevel is not configured", "ghl_client_id is not set.",
			   "Set ghl_client_id and ghl_client_secret (GHL_AGENT_GHL_CLIENT_ID, "
			   "GHL_AGENT_GHL_CLIENT_SECRET) to your marketplace app's credentials.");
		return;
	}
	char *secret = oauth_state_secret(cfg, &e);
	if (!secret) {
		error_page(c, 500, "OAuth is not configured", e.msg, NULL);
		return;
	}
	char *nonce = crypto_random_token(STATE_NONCE_BYTES);
	char *browser = crypto_random_token(BROWSER_TOKEN_BYTES);
	if (!nonce || !browser) {
		secret_free(secret);
		free(nonce);
		secret_free(browser);
		error_page(c, 500, "Cannot start the connection",
			   "the random number generator failed", NULL);
		return;
	}
	long long ttl_s = (cfg->oauth_state_ttl_ms + 999) / 1000;
	int64_t expires = now_wall_ms() / 1000 + ttl_s;
	char *state = crypto_state_sign(secret, nonce, expires);
	secret_free(secret);
	free(nonce);
	if (!state) {
		secret_free(browser);
		error_page(c, 500, "Cannot start the connection", "signing the state failed", NULL);
		return;
	}
	struct buf url;
	buf_init(&url);
	buf_puts(&url, cfg->ghl_oauth_authorize_url);
	buf_putc(&url, strchr(cfg->ghl_oauth_authorize_url, '?') ? '&' : '?');
	int first = 1;
	add_param(&url, "response_type", "code", &first);
	add_param(&url, "redirect_uri", cfg->ghl_redirect_url, &first);
	add_param(&url, "client_id", cfg->ghl_client_id, &first);
	add_param(&url, "scope", cfg->ghl_scopes, &first);
	add_param(&url, "state", state, &first);

	struct connect *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->url = buf_take(&url);
	k->browser = browser;
	k->ttl_s = ttl_s;
	char state_hash[CRYPTO_SHA256_HEX_LEN], browser_hash[CRYPTO_SHA256_HEX_LEN], exp[24];
	crypto_sha256_hex(state, strlen(state), state_hash);
	crypto_sha256_hex(browser, strlen(browser), browser_hash);
	snprintf(exp, sizeof(exp), "%lld", (long long)expires);
	free(state);
	const char *p[] = {state_hash, browser_hash, user_id, exp};
	db_pool_query(app->db, sql_state_insert, 4, p, on_state_stored, k);
}

/* Only staff who may manage agencies start a connection: an ADMIN or
 * AGENCY_ADMIN session, by cookie (a GET: no CSRF token) or Bearer. What the
 * connection may bind to is decided in the callback (bind_allowed). */
static const struct api_endpoint ep_connect = {.allow = API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN};

static void connect_authed(struct api_req *r)
{
	struct http_ctx *c = r->c;
	char user_id[API_UUID_LEN];
	snprintf(user_id, sizeof(user_id), "%s", r->who.user_id);
	log_info("oauth: connect requested", "request_id", c->request_id, "by", user_id, NULL);
	api_req_done(r);
	connect_start(c, user_id);
}

static void h_connect(struct http_ctx *c)
{
	api_handle(c, &ep_connect, connect_authed);
}

/* ---- GET /oauth/callback ---------------------------------------------------------------- */

struct callback {
	struct http_ctx *c;
	struct app *app;
	char *code;
	char *company;
	char user_id[API_UUID_LEN];   /* who started the connection */
	enum api_role role;	      /* their role now */
	char agency_id[API_UUID_LEN]; /* the row the tokens are bound to */
	char *access, *refresh;	      /* encrypted for that row */
	long long expires_in;
	char fp[CRYPTO_FINGERPRINT_LEN];
};

static void callback_free(struct callback *cb)
{
	secret_free(cb->code);
	free(cb->company);
	secret_free(cb->access); /* plaintext until on_target encrypts them */
	secret_free(cb->refresh);
	free(cb);
}

static void on_upserted(void *arg, PGresult *res, const struct err *e)
{
	struct callback *cb = arg;
	struct http_ctx *c = cb->c;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *why = db_why(res, e);
		log_error("oauth: cannot store the agency", "ghl_agency_id", cb->company, "error",
			  why, NULL);
		error_page(c, 503, "The agency could not be saved",
			   "The database did not accept the connection; the tokens GoHighLevel "
			   "issued were discarded.",
			   "Try connecting again in a moment.");
		callback_free(cb);
		return;
	}
	if (PQntuples(res) != 1) {
		error_page(c, 409, "The agency changed while it was being connected",
			   "It was deleted, connected by someone else, or your access to it "
			   "changed; the tokens GoHighLevel issued were discarded.",
			   "Start again from /oauth/connect.");
		callback_free(cb);
		return;
	}
	const char *id = PQgetvalue(res, 0, 0);
	const char *name = PQgetvalue(res, 0, 1);
	int inserted = !strcmp(PQgetvalue(res, 0, 2), "t");
	log_info("agency connected", "agency_id", id, "ghl_agency_id", cb->company, "token", cb->fp,
		 "new_agency", inserted ? "true" : "false", "by", cb->user_id, NULL);
	struct buf b;
	buf_init(&b);
	char *title = xasprintf("Agency %s is connected", name);
	page_begin(&b, title);
	free(title);
	buf_puts(&b, "<p>GoHighLevel company <code>");
	html_escape(&b, cb->company);
	buf_puts(&b, "</code> is connected to the provisioning agent");
	buf_puts(&b, inserted ? " as a new agency" : "");
	buf_puts(&b, " (agency id <code>");
	html_escape(&b, id);
	buf_puts(&b,
		 "</code>).</p>\n<p>Its tokens are stored encrypted and refreshed "
		 "automatically. Next: sync its snapshots and set its pipeline on its page.</p>\n");
	page_links(&b, id, name);
	page_send(c, 200, &b);
	callback_free(cb);
}

/* An ADMIN: insert, or update the row found (a deleted one comes back). */
static const char sql_upsert[] =
	"INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,"
	" oauth_refresh_token_encrypted, token_expires_at, needs_reconnect, reconnect_reason,"
	" last_refreshed_at, deleted_at)"
	" VALUES ($5::uuid, $1, $1, $2, $3, LOCALTIMESTAMP + make_interval(secs => $4::double precision),"
	" false, NULL, LOCALTIMESTAMP, NULL)"
	" ON CONFLICT (ghl_agency_id) DO UPDATE SET"
	" oauth_access_token_encrypted = EXCLUDED.oauth_access_token_encrypted,"
	" oauth_refresh_token_encrypted = EXCLUDED.oauth_refresh_token_encrypted,"
	" token_expires_at = EXCLUDED.token_expires_at, needs_reconnect = false,"
	" reconnect_reason = NULL, last_refreshed_at = LOCALTIMESTAMP, deleted_at = NULL,"
	" updated_at = LOCALTIMESTAMP"
	" WHERE agencies.id = EXCLUDED.id"
	" RETURNING id::text, name, (xmax = 0)";

/* An AGENCY_ADMIN: only a live agency still linked to them. */
static const char sql_reconnect[] =
	"UPDATE agencies a SET oauth_access_token_encrypted = $2,"
	" oauth_refresh_token_encrypted = $3,"
	" token_expires_at = LOCALTIMESTAMP + make_interval(secs => $4::double precision),"
	" needs_reconnect = false, reconnect_reason = NULL, last_refreshed_at = LOCALTIMESTAMP,"
	" updated_at = LOCALTIMESTAMP"
	" WHERE a.id = $5::uuid AND a.ghl_agency_id = $1 AND a.deleted_at IS NULL"
	" AND EXISTS (SELECT 1 FROM user_agencies ua JOIN users u ON u.id = ua.user_id"
	"  WHERE ua.agency_id = a.id AND ua.user_id = $6::uuid AND u.role = 'AGENCY_ADMIN')"
	" RETURNING id::text, name, false";

/* The row for the company: its id (a new one when there is none), whether
 * it is new, deleted, and linked to the user who started the connection. */
static const char sql_target[] =
	"SELECT COALESCE(a.id, gen_random_uuid())::text, a.id IS NULL,"
	" COALESCE(a.deleted_at IS NOT NULL, false),"
	" EXISTS (SELECT 1 FROM user_agencies ua WHERE ua.agency_id = a.id"
	"  AND ua.user_id = $2::uuid)"
	" FROM (SELECT 1) one LEFT JOIN agencies a ON a.ghl_agency_id = $1";

/* NULL when the user who started the connection may bind it to this row;
 * else why not. An ADMIN binds anything; an AGENCY_ADMIN only reconnects a
 * live agency linked to them. */
static const char *bind_refused(const struct callback *cb, int is_new, int deleted, int linked)
{
	if (cb->role == API_ROLE_ADMIN)
		return NULL;
	if (cb->role != API_ROLE_AGENCY_ADMIN)
		return "Only an ADMIN or AGENCY_ADMIN connects agencies.";
	if (is_new)
		return "This GoHighLevel company is not an agency here yet; only an ADMIN adds "
		       "agencies.";
	if (deleted)
		return "This agency was deleted; only an ADMIN reconnects it.";
	if (!linked)
		return "This GoHighLevel company is not one of your agencies.";
	return NULL;
}

static void on_target(void *arg, PGresult *res, const struct err *dbe)
{
	struct callback *cb = arg;
	struct http_ctx *c = cb->c;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_error("oauth: cannot look the agency up", "ghl_agency_id", cb->company, "error",
			  db_why(res, dbe), NULL);
		error_page(c, 503, "The agency could not be saved",
			   "The database is unavailable; the tokens GoHighLevel issued were "
			   "discarded.",
			   "Try connecting again in a moment.");
		callback_free(cb);
		return;
	}
	const char *why = bind_refused(cb, !strcmp(PQgetvalue(res, 0, 1), "t"),
				       !strcmp(PQgetvalue(res, 0, 2), "t"),
				       !strcmp(PQgetvalue(res, 0, 3), "t"));
	if (why) {
		log_warn("oauth: connection not allowed for this user", "ghl_agency_id",
			 cb->company, "by", cb->user_id, NULL);
		error_page(c, 403, "You may not connect this agency", why,
			   "Ask an ADMIN to connect it, or to link it to you.");
		callback_free(cb);
		return;
	}
	snprintf(cb->agency_id, sizeof(cb->agency_id), "%s", PQgetvalue(res, 0, 0));
	struct app *app = cb->app;
	struct err e;
	char *access = vault_encrypt(app->vault, cb->access, cb->agency_id,
				     AGENCY_TOKENS_COL_ACCESS, &e);
	char *refresh = access ? vault_encrypt(app->vault, cb->refresh, cb->agency_id,
					       AGENCY_TOKENS_COL_REFRESH, &e)
			       : NULL;
	secret_free(cb->access);
	secret_free(cb->refresh);
	cb->access = access;
	cb->refresh = refresh;
	if (!refresh) {
		log_error("oauth: cannot encrypt tokens", "error", e.msg, NULL);
		error_page(c, 500, "The tokens could not be encrypted", e.msg, NULL);
		callback_free(cb);
		return;
	}
	char exp[24];
	snprintf(exp, sizeof(exp), "%lld", cb->expires_in);
	const char *p[] = {cb->company, access, refresh, exp, cb->agency_id, cb->user_id};
	if (cb->role == API_ROLE_ADMIN)
		db_pool_query(app->db, sql_upsert, 5, p, on_upserted, cb);
	else
		db_pool_query(app->db, sql_reconnect, 6, p, on_upserted, cb);
}

static int company_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > MAX_COMPANY_ID_LEN)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void on_code_token(void *arg, const struct ghl_response *res,
			  const struct ghl_token_set *tok)
{
	struct callback *cb = arg;
	struct http_ctx *c = cb->c;
	struct app *app = cb->app;
	if (!tok) {
		const char *msg = res->message ? res->message : ghl_outcome_name(res->outcome);
		if (res->outcome == GHL_CANCELLED)
			error_page(c, 503, "The agent is shutting down", msg,
				   "Try again in a moment.");
		else if (res->outcome == GHL_PERMANENT || res->outcome == GHL_AUTH)
			error_page(c, 400, "GoHighLevel refused the connection", msg,
				   "Authorization codes are single-use and expire quickly: start "
				   "again from /oauth/connect.");
		else
			error_page(c, 502, "GoHighLevel could not be reached", msg,
				   "Start again from /oauth/connect in a moment.");
		callback_free(cb);
		return;
	}
	if (tok->user_type && str_eq(tok->user_type, "Location")) {
		error_page(c, 400, "This is a sub-account installation",
			   "GoHighLevel issued a Location token, but the agent needs the agency "
			   "(Company) token.",
			   "Install the app for the whole agency, then connect again.");
		callback_free(cb);
		return;
	}
	if (!company_id_ok(tok->company_id) || !tok->refresh_token) {
		error_page(c, 502, "GoHighLevel answered without the expected fields",
			   "The token reply has no usable companyId or refresh_token.", NULL);
		callback_free(cb);
		return;
	}
	cb->company = xstrdup(tok->company_id);
	cb->access = xstrdup(tok->access_token ? tok->access_token : "");
	cb->refresh = xstrdup(tok->refresh_token);
	cb->expires_in = tok->expires_in > 0 ? tok->expires_in : (long long)DEFAULT_EXPIRES_IN;
	crypto_token_fingerprint(tok->access_token, cb->fp);
	const char *p[] = {cb->company, cb->user_id};
	db_pool_query(app->db, sql_target, 2, p, on_target, cb);
}

/* Spend the state: once, by the browser holding its cookie. Returns the
 * role of the user who started it (NULL when the row was not spent) and,
 * for the reasons, whether it exists, and whether the browser matches. */
static const char sql_state_use[] =
	"WITH used AS (UPDATE oauth_states SET used_at = now()"
	"  WHERE state_hash = $1 AND browser_hash = $2 AND used_at IS NULL"
	"  AND expires_at > now() RETURNING user_id)"
	" SELECT (SELECT u.role::text FROM used JOIN users u ON u.id = used.user_id),"
	"  (SELECT user_id::text FROM used), s.state_hash IS NOT NULL, s.browser_hash = $2"
	" FROM (SELECT 1) one LEFT JOIN oauth_states s ON s.state_hash = $1";

static void other_browser(struct http_ctx *c)
{
	error_page(c, 400, "The connection was started in another browser",
		   "This browser did not start this connection (its " OAUTH_COOKIE
		   " cookie is missing or different), or the cookie expired.",
		   "Start again from /oauth/connect in the browser you are using.");
}

static void on_state_used(void *arg, PGresult *res, const struct err *e)
{
	struct callback *cb = arg;
	struct http_ctx *c = cb->c;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_error("oauth: cannot check the state", "request_id", c->request_id, "error",
			  db_why(res, e), NULL);
		error_page(c, 503, "The connection request cannot be checked",
			   "The database is unavailable.",
			   "Start again from /oauth/connect in a "
			   "moment.");
		callback_free(cb);
		return;
	}
	if (PQgetisnull(res, 0, 1)) {
		if (strcmp(PQgetvalue(res, 0, 2), "t"))
			error_page(c, 400, "The connection request is unknown",
				   "This agent did not start it, or it expired.",
				   "Start again from /oauth/connect.");
		else if (strcmp(PQgetvalue(res, 0, 3), "t"))
			other_browser(c);
		else
			error_page(c, 400, "The connection request has already been used",
				   "Each connection request completes once; this one has already "
				   "been used (a replayed or leaked link).",
				   "Start again from /oauth/connect.");
		callback_free(cb);
		return;
	}
	cb->role = api_role_parse(PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0));
	snprintf(cb->user_id, sizeof(cb->user_id), "%s", PQgetvalue(res, 0, 1));
	browser_cookie(c, "", 0); /* spent: forget it */
	const struct config *cfg = cb->app->cfg;
	struct ghl_oauth_form f = {
		.grant_type = "authorization_code",
		.code = cb->code,
		.redirect_uri = cfg->ghl_redirect_url,
		.user_type = "Company",
	};
	ghl_oauth_token(cb->app->ghl, &f, on_code_token, cb); /* copies the form */
	secret_free(cb->code);
	cb->code = NULL;
}

static void h_callback(struct http_ctx *c)
{
	struct app *app = c->app;
	const struct config *cfg = app->cfg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	if (query && strlen(query) > MAX_QUERY_LEN) {
		error_page(c, 414, "The callback URL is too long", NULL, NULL);
		return;
	}
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) != 0) {
		error_page(c, 400, "The callback URL is malformed", NULL,
			   "Start again from /oauth/connect.");
		return;
	}
	const char *code = evhttp_find_header(&q, "code");
	const char *state = evhttp_find_header(&q, "state");
	const char *gerr = evhttp_find_header(&q, "error");
	struct err e;
	char *secret = NULL, *browser = NULL;
	if (gerr) {
		const char *desc = evhttp_find_header(&q, "error_description");
		char *detail = xasprintf("GoHighLevel answered: %s%s%s", gerr, desc ? ": " : "",
					 desc ? desc : "");
		error_page(c, 400, "The connection was not approved", detail,
			   "Start again from /oauth/connect.");
		free(detail);
		goto out;
	}
	if (!state || !*state || strlen(state) > CRYPTO_STATE_MAX) {
		error_page(c, 400, "The connection request is invalid",
			   "The state parameter is missing.", "Start again from /oauth/connect.");
		goto out;
	}
	secret = oauth_state_secret(cfg, &e);
	if (!secret) {
		error_page(c, 500, "OAuth is not configured", e.msg, NULL);
		goto out;
	}
	if (crypto_state_verify(secret, state, now_wall_ms() / 1000, NULL, &e)) {
		int expired = strstr(e.msg, "expired") != NULL;
		error_page(c, 400,
			   expired ? "The connection request has expired"
				   : "The connection request is invalid",
			   e.msg, "Start again from /oauth/connect.");
		goto out;
	}
	if (!code || !*code || strlen(code) > 2048) {
		error_page(c, 400, "The connection request is invalid",
			   "The code parameter is missing.", "Start again from /oauth/connect.");
		goto out;
	}
	const char *cookies = evhttp_find_header(evhttp_request_get_input_headers(c->req),
						 "Cookie");
	browser = cookies ? api_cookie_value(cookies, OAUTH_COOKIE) : NULL;
	if (!browser || !*browser || strlen(browser) > 256) {
		other_browser(c);
		goto out;
	}
	struct callback *cb = xcalloc(1, sizeof(*cb));
	cb->c = c;
	cb->app = app;
	cb->code = xstrdup(code);
	char state_hash[CRYPTO_SHA256_HEX_LEN], browser_hash[CRYPTO_SHA256_HEX_LEN];
	crypto_sha256_hex(state, strlen(state), state_hash);
	crypto_sha256_hex(browser, strlen(browser), browser_hash);
	const char *p[] = {state_hash, browser_hash};
	db_pool_query(app->db, sql_state_use, 2, p, on_state_used, cb);
out:
	secret_free(secret);
	secret_free(browser);
	evhttp_clear_headers(&q);
}

static const struct http_route oauth_routes[] = {
	{"GET", "/oauth/connect", h_connect},
	{"GET", "/oauth/callback", h_callback},
};

const struct route_table oauth_route_table = {oauth_routes,
					      sizeof(oauth_routes) / sizeof(oauth_routes[0])};
