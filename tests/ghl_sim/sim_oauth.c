/* sim_oauth.c — authorize (chooselocation), token exchange and refresh, and
 * location tokens minted from an agency token.
 *
 * Codes and refresh tokens are single-use: a second use answers 400
 * invalid_grant and counts in /_sim/stats "invalid_grant". The access token a
 * refresh replaces stays valid until it expires (GHL does not revoke it).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "sim.h"

#define SIM_PLAN_ID "sim-plan-001"

static void html_error(struct sim_ctx *c, int status, const char *msg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	c->status = status;
	buf_reset(&c->out);
	buf_puts(&c->out, "<!doctype html><html><head><title>GoHighLevel</title></head><body><h1>");
	buf_puts(&c->out, msg); /* fixed texts only, no user input */
	buf_puts(&c->out, "</h1></body></html>\n");
}

void sim_h_chooselocation(struct sim_ctx *c)
{
	struct sim *s = c->s;
	const char *client_id = sim_query(c, "client_id");
	const char *redirect = sim_query(c, "redirect_uri");
	const char *rtype = sim_query(c, "response_type");
	const char *state = sim_query(c, "state");
	const char *scope = sim_query(c, "scope");
	const char *company = sim_query(c, "company_id");
	const char *location = sim_query(c, "location_id");

	if (!client_id || !str_eq(client_id, s->cfg.client_id)) {
		html_error(c, 400, "Invalid client_id: no app with this client id is installed.");
		return;
	}
	if (!redirect || !*redirect ||
	    (!str_has_prefix(redirect, "http://") && !str_has_prefix(redirect, "https://"))) {
		html_error(c, 400, "Invalid redirect_uri.");
		return;
	}
	if (rtype && !str_eq(rtype, "code")) {
		html_error(c, 400, "Unsupported response_type (only \"code\").");
		return;
	}
	if (!company || !*company)
		company = s->cfg.company_id;
	sim_company_get_or_create(s, company, NULL);
	if (location) {
		struct sim_location *loc = sim_location_get(s, location);
		if (!loc || !str_eq(loc->company_id, company)) {
			html_error(c, 400, "Unknown location_id for this company.");
			return;
		}
	}
	struct sim_code *k = sim_code_issue(s, company, location, redirect, scope);
	struct buf url;
	buf_init(&url);
	buf_puts(&url, redirect);
	buf_putc(&url, strchr(redirect, '?') ? '&' : '?');
	char *enc = evhttp_uriencode(k->code, -1, 0);
	buf_printf(&url, "code=%s", enc);
	free(enc);
	if (state) {
		enc = evhttp_uriencode(state, -1, 0);
		buf_printf(&url, "&state=%s", enc);
		free(enc);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Location", buf_cstr(&url));
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	buf_clear(&url);
	c->status = 302;
	buf_reset(&c->out);
}

void sim_write_token_response(struct sim_ctx *c, struct sim_token *at, struct sim_token *rt,
			      int status)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, "access_token");
	jw_string(&w, at->token);
	jw_key(&w, "token_type");
	jw_string(&w, "Bearer");
	jw_key(&w, "expires_in");
	jw_int(&w, (at->expires_ms - at->issued_ms) / 1000);
	jw_key(&w, "refresh_token");
	jw_string(&w, rt->token);
	jw_key(&w, "scope");
	jw_string(&w, at->scope);
	jw_key(&w, "userType");
	jw_string(&w, at->cls == CLASS_LOCATION ? "Location" : "Company");
	jw_key(&w, "companyId");
	jw_string(&w, at->company_id);
	if (at->cls == CLASS_LOCATION) {
		jw_key(&w, "locationId");
		jw_string(&w, at->location_id);
	}
	jw_key(&w, "userId");
	jw_string(&w, at->user_id);
	jw_key(&w, "approvedLocations");
	jw_array_begin(&w);
	if (at->cls == CLASS_LOCATION)
		jw_string(&w, at->location_id);
	jw_array_end(&w);
	jw_key(&w, "planId");
	jw_string(&w, SIM_PLAN_ID);
	jw_key(&w, "isBulkInstallation");
	jw_bool(&w, 0);
	sim_json_end(c, &w);
}

static void issue_pair(struct sim_ctx *c, enum tok_class cls, const char *company,
		       const char *location, const char *user, const char *scope, int status)
{
	struct sim_token *at = sim_token_issue(c->s, TOK_ACCESS, cls, company, location, user,
					       scope);
	struct sim_token *rt = sim_token_issue(c->s, TOK_REFRESH, cls, company, location, user,
					       scope);
	sim_write_token_response(c, at, rt, status);
}

static int secret_ok(const char *given, const char *want)
{
	size_t n = strlen(want);
	return given && strlen(given) == n && mem_eq_ct(given, want, n);
}

static void invalid_grant(struct sim_ctx *c, const char *desc)
{
	c->s->stats.invalid_grant++;
	sim_oauth_error(c, 400, "invalid_grant", desc);
}

void sim_h_oauth_token(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct evkeyvalq form;
	TAILQ_INIT(&form);
	char *body = sim_body_string(c);
	if (evhttp_parse_query_str(body, &form) != 0) {
		sim_oauth_error(c, 400, "invalid_request",
				"The body must be application/x-www-form-urlencoded.");
		goto out;
	}
	const char *client_id = evhttp_find_header(&form, "client_id");
	const char *secret = evhttp_find_header(&form, "client_secret");
	const char *grant = evhttp_find_header(&form, "grant_type");
	if (!secret_ok(client_id, s->cfg.client_id) || !secret_ok(secret, s->cfg.client_secret)) {
		sim_oauth_error(c, 401, "invalid_client",
				"Client authentication failed: bad client_id or client_secret.");
		goto out;
	}
	if (str_eq(grant, "authorization_code")) {
		const char *code = evhttp_find_header(&form, "code");
		const char *redirect = evhttp_find_header(&form, "redirect_uri");
		struct sim_code *k = code ? htab_get(&s->store.codes, code) : NULL;
		if (!k || k->used) {
			invalid_grant(c, k ? "The authorization code has already been used."
					   : "Invalid authorization code.");
			goto out;
		}
		if (redirect && *redirect && !str_eq(redirect, k->redirect_uri)) {
			invalid_grant(c, "redirect_uri does not match the one used to authorize.");
			goto out;
		}
		k->used = 1;
		issue_pair(c, k->location_id ? CLASS_LOCATION : CLASS_COMPANY, k->company_id,
			   k->location_id, k->user_id, k->scope, 200);
	} else if (str_eq(grant, "refresh_token")) {
		const char *rts = evhttp_find_header(&form, "refresh_token");
		struct sim_token *rt = rts ? sim_token_find(s, rts) : NULL;
		if (!rt || rt->kind != TOK_REFRESH || rt->used || rt->revoked) {
			invalid_grant(c, rt && rt->kind == TOK_REFRESH
						 ? "The refresh token has already been used."
						 : "Invalid refresh token.");
			goto out;
		}
		rt->used = 1;
		s->stats.refreshes++;
		issue_pair(c, rt->cls, rt->company_id, rt->location_id, rt->user_id, rt->scope,
			   200);
	} else if (!grant || !*grant) {
		sim_oauth_error(c, 400, "invalid_request", "grant_type is required.");
	} else {
		sim_oauth_error(c, 400, "unsupported_grant_type",
				"grant_type must be authorization_code or refresh_token.");
	}
out:
	evhttp_clear_headers(&form);
	free(body);
}

void sim_h_location_token(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct evkeyvalq form;
	TAILQ_INIT(&form);
	char *body = sim_body_string(c);
	if (evhttp_parse_query_str(body, &form) != 0) {
		sim_error(c, 400, "Bad Request");
		goto out;
	}
	const char *company = evhttp_find_header(&form, "companyId");
	const char *location = evhttp_find_header(&form, "locationId");
	struct vec msgs = {0};
	if (!company || !*company)
		vec_push(&msgs, xstrdup("companyId should not be empty"));
	if (!location || !*location)
		vec_push(&msgs, xstrdup("locationId should not be empty"));
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		goto out;
	}
	if (sim_check_company(c, company) != 0)
		goto out;
	struct sim_location *loc = sim_location_for(c, location);
	if (!loc)
		goto out;
	issue_pair(c, CLASS_LOCATION, loc->company_id, loc->id, c->tok->user_id, c->tok->scope,
		   200);
	(void)s;
out:
	evhttp_clear_headers(&form);
	free(body);
}
