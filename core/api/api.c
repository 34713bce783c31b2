/* api.c — the request pipeline of /api/v1: after authentication
 * (api_authn.c), the scope and role checks, the query string and the JSON
 * body read with its limits and validated, then the handler; and the module's
 * start and stop. See api.h; the parts: api_roles.c, api_validate.c,
 * api_params.c, api_cursor.c, api_reply.c, api_db.c, api_authn.c,
 * api_key_cache.c. */
#include "api_int.h"

#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "passwords.h"
#include "http.h"
#include "json.h"

static int is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1))
		return 0;
	char next = ct[sizeof(want) - 1];
	return next == '\0' || next == ';' || next == ' ';
}

/* "line L, column C: …" → numbers (0 when absent). */
static void json_err_pos(const char *msg, long *line, long *col)
{
	*line = *col = 0;
	const char *l = strstr(msg, "line ");
	const char *c = strstr(msg, "column ");
	if (l)
		*line = strtol(l + 5, NULL, 10);
	if (c)
		*col = strtol(c + 7, NULL, 10);
}

struct json *api_parse_json(struct api_req *r, const char *text, size_t len)
{
	static const struct json_limits lim = {.max_depth = JSON_DEFAULT_MAX_DEPTH,
					       .max_members = API_JSON_MAX_MEMBERS,
					       .max_items = API_JSON_MAX_ITEMS};
	struct err e;
	int over = 0;
	struct json *doc = json_parse_limited(text, len, &lim, &over, &e);
	if (doc)
		return doc;
	long line, col;
	json_err_pos(e.msg, &line, &col);
	char *msg = over ? xasprintf("request body is over a limit: %s (limits: %d members per "
				     "object, %d items per array, nesting %d deep)",
				     e.msg, API_JSON_MAX_MEMBERS, API_JSON_MAX_ITEMS,
				     JSON_DEFAULT_MAX_DEPTH)
			 : xasprintf("request body is not valid JSON: %s", e.msg);
	struct buf d;
	buf_init(&d);
	buf_printf(&d, "[{\"field\":\"body\",\"message\":");
	json_write_string(&d, e.msg);
	buf_printf(&d, ",\"line\":%ld,\"column\":%ld}]", line, col);
	api_reply_error(r, over ? 413 : 400, over ? "json_limit_exceeded" : "malformed_json", msg,
			buf_cstr(&d));
	buf_clear(&d);
	free(msg);
	return NULL;
}

static int read_body(struct api_req *r)
{
	struct evhttp_request *req = r->c->req;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	size_t max = r->ep->max_body ? r->ep->max_body : (size_t)r->app->cfg->max_body_bytes;
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (n > max) {
		char *msg = xasprintf("request body is larger than %zu bytes", max);
		api_reply_error(r, 413, "body_too_large", msg, NULL);
		free(msg);
		return -1;
	}
	if ((ct || n) && !is_json_type(ct)) {
		api_reply_error(r, 415, "unsupported_media_type",
				"the request body must be JSON (Content-Type: application/json)",
				NULL);
		return -1;
	}
	if (n == 0) {
		api_reply_error(r, 400, "empty_body", "a JSON object is required as the body",
				NULL);
		return -1;
	}
	const char *text = (const char *)evbuffer_pullup(in, -1);
	struct json *doc = api_parse_json(r, text, n); /* NULL: replied, r is gone */
	if (!doc)
		return -1;
	r->body = doc;
	struct api_problems p;
	api_problems_init(&p);
	if (api_validate(r->body, r->ep->body, NULL, &p)) {
		api_reply_problems(r, &p);
		return -1;
	}
	api_problems_clear(&p);
	return 0;
}

static int check_query(struct api_req *r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->c->req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	r->query = xcalloc(1, sizeof(*r->query));
	TAILQ_INIT(r->query);
	if (q && evhttp_parse_query_str(q, r->query)) {
		api_reply_error(r, 400, "invalid_query", "the query string is malformed", NULL);
		return -1;
	}
	struct api_problems p;
	api_problems_init(&p);
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, r->query, next)
	{
		const char *const *ok = r->ep->query;
		while (ok && *ok && strcmp(*ok, kv->key))
			ok++;
		if (!ok || !*ok)
			api_problem(&p, kv->key, "unknown query parameter");
	}
	if (p.n) {
		char *details = api_problems_json(&p);
		api_reply_error(r, 400, "unknown_parameter",
				"the query string has parameters this endpoint does not accept",
				details);
		free(details);
		api_problems_clear(&p);
		return -1;
	}
	api_problems_clear(&p);
	return 0;
}

static unsigned principal_bit(const struct principal *p)
{
	if (p->kind == PRINCIPAL_API_KEY)
		return API_ALLOW_API_KEY;
	switch (p->role) {
	case API_ROLE_ADMIN: return API_ALLOW_ADMIN;
	case API_ROLE_AGENCY_ADMIN: return API_ALLOW_AGENCY_ADMIN;
	case API_ROLE_SUPPORT: return API_ALLOW_SUPPORT;
	default: return 0;
	}
}

/* Everything after authentication. */
void api_proceed(struct api_req *r)
{
	const struct api_endpoint *ep = r->ep;
	if (!(ep->allow & API_ALLOW_PUBLIC)) {
		if (ep->agency_scoped && (!api_is_uuid(api_param(r, 0)) ||
					  !api_agency_in_scope(&r->who, api_param(r, 0)))) {
			api_reply_not_found(r, "agency");
			return;
		}
		if (!(ep->allow & principal_bit(&r->who))) {
			api_reply_error(r, 403, "forbidden",
					"your role may not do this (see the access table in "
					"docs/openapi.yaml)",
					NULL);
			return;
		}
	}
	if (!ep->raw_params)
		for (int i = 0; i < r->c->nparams; i++)
			if (!api_is_uuid(r->c->params[i])) {
				api_reply_error(r, 404, "not_found",
						"no such object (ids are UUIDs)", NULL);
				return;
			}
	if (api_is_safe_method(r->c->method) && api_rate_take(r, API_RATE_READ, 1))
		return;
	if (check_query(r))
		return;
	if (ep->body && read_body(r))
		return;
	r->fn(r);
}

/* ---- module state ------------------------------------------------------ */

int api_settings_accept_objects(void *arg, const struct json *settings, struct api_problems *out)
{
	(void)arg;
	if (!settings || settings->type != JSON_OBJECT) {
		api_problem(out, "settings", "expected an object, got %s",
			    settings ? json_type_name(settings->type) : "nothing");
		return -1;
	}
	return 0;
}

#define THROTTLE_MAX_KEYS 100000

int api_start(struct app *app, struct err *e)
{
	struct api_state *s = xcalloc(1, sizeof(*s));
	s->pool = auth_pool_new(app->base, (int)app->cfg->auth_workers, e);
	if (!s->pool) {
		free(s);
		return -1;
	}
	s->throttle_account = throttle_new(THROTTLE_MAX_KEYS);
	s->throttle_address = throttle_new(THROTTLE_MAX_KEYS);
	s->validate_settings = api_settings_accept_objects;
	s->key_cache = api_key_cache_new();
	s->rate = api_rate_new();
	app->api = s;
	return 0;
}

void api_stop(struct app *app)
{
	struct api_state *s = app->api;
	if (!s)
		return;
	auth_pool_free(s->pool);
	throttle_free(s->throttle_account);
	throttle_free(s->throttle_address);
	api_key_cache_free(s->key_cache);
	api_rate_free(s->rate);
	free(s);
	app->api = NULL;
}
