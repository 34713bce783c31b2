/* api_reply.c — how an /api/v1 request ends: JSON answers, the DESIGN error
 * shape (422 problems, 404, 500, 503 with Retry-After), cursor pages, and the
 * request freed. See api.h. */
#include "api_int.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "log.h"

struct api_req *api_req_free(struct api_req *r)
{
	api_qproblems_free(r->qp);
	json_free(r->body);
	if (r->query) {
		evhttp_clear_headers(r->query);
		free(r->query);
	}
	api_principal_clear(&r->who);
	if (r->data_free)
		r->data_free(r->data);
	free(r);
	return NULL;
}

void api_req_done(struct api_req *r)
{
	api_req_free(r);
}

void api_add_header(struct api_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->c->req), name, value);
}

void api_reply_json(struct api_req *r, int status, const char *json)
{
	struct buf b; /* one spacing for every answer, whoever wrote the JSON */
	buf_init(&b);
	json_text_compact(&b, json);
	http_reply_json(r->c, status, buf_cstr(&b));
	buf_clear(&b);
	api_req_free(r);
}

void api_reply_empty(struct api_req *r, int status)
{
	http_reply(r->c, status, NULL, NULL, 0);
	api_req_free(r);
}

void api_reply_error(struct api_req *r, int status, const char *code, const char *message,
		     const char *details_json)
{
	http_reply_error(r->c, status, code, message, details_json);
	api_req_free(r);
}

/* "a (why); b (why)": the first API_PROBLEMS_NAMED problems, long reasons cut. */
static void name_problems(struct buf *b, const struct json *list)
{
	for (size_t i = 0; i < json_len(list) && i < API_PROBLEMS_NAMED; i++) {
		const char *why = json_get_str(json_at(list, i), "message");
		size_t len = strlen(why), keep = len > 80 ? 77 : len;
		while (keep < len && keep > 0 && ((unsigned char)why[keep] & 0xC0) == 0x80)
			keep--; /* not inside a UTF-8 sequence */
		buf_printf(b, "%s%s (%.*s%s)", i ? "; " : "",
			   json_get_str(json_at(list, i), "field"), (int)keep, why,
			   keep < len ? "…" : "");
	}
}

void api_reply_problems(struct api_req *r, struct api_problems *p)
{
	char *details = api_problems_json(p);
	char *msg;
	struct buf named;
	buf_init(&named);
	name_problems(&named, p->list);
	if (p->nunknown)
		msg = xasprintf("unknown field%s: %s", p->nunknown > 1 ? "s" : "",
				buf_cstr(&p->unknown));
	else
		msg = p->n > API_PROBLEMS_NAMED
			      ? xasprintf(
					"fix these %zu fields and send the request again: %s; and "
					"%zu more (each in details)",
					p->n, buf_cstr(&named), p->n - API_PROBLEMS_NAMED)
			      : xasprintf("fix %s and send the request again: %s",
					  p->n == 1 ? "this field" : "these fields",
					  buf_cstr(&named));
	api_reply_error(r, 422, p->nunknown ? "unknown_fields" : "validation_failed", msg, details);
	buf_clear(&named);
	free(msg);
	free(details);
	api_problems_clear(p);
}

/* Where to look for the thing not found: the listing that shows what the
 * caller may see (something outside the caller's agencies is "not found"
 * too, never "forbidden", so that its existence does not leak). */
static const char *const not_found_hints[][2] = {
	{"agency", "GET /api/v1/agencies (the dashboard's Agencies page)"},
	{"job", "GET /api/v1/jobs (the dashboard's Jobs page; old finished jobs are archived)"},
	{"snapshot", "GET /api/v1/agencies/{id}/snapshots (sync from GHL when it is new)"},
	{"webhook", "GET /api/v1/agencies/{id}/webhooks"},
	{"delivery", "GET /api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries"},
	{"user", "GET /api/v1/users"},
	{"API key", "GET /api/v1/agencies/{id}/api-keys"},
};

void api_reply_not_found(struct api_req *r, const char *what)
{
	const char *where = NULL;
	for (size_t i = 0; i < sizeof(not_found_hints) / sizeof(not_found_hints[0]); i++)
		if (!strcmp(not_found_hints[i][0], what))
			where = not_found_hints[i][1];
	char *msg = where ? xasprintf("%s not found: check the id; %s lists the ones you may see",
				      what, where)
			  : xasprintf("%s not found", what);
	api_reply_error(r, 404, "not_found", msg, NULL);
	free(msg);
}

void api_reply_one(struct api_req *r, PGresult *res, const char *what)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, what);
		return;
	}
	api_reply_json(r, 200, PQgetvalue(res, 0, 0));
}

void api_reply_internal(struct api_req *r, const char *why)
{
	log_error("api request failed", "request_id", r->c->request_id, "path", r->c->path, "error",
		  why, NULL);
	api_reply_error(r, 500, "internal_error",
			"the request failed on the server; the log has the details (request id "
			"in X-Request-Id)",
			NULL);
}

void api_reply_page(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
		    int limit)
{
	api_reply_page_map(r, res, json_col, ts_col, id_col, limit, NULL);
}

void api_reply_page_map(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
			int limit, api_row_map_fn map)
{
	api_reply_page_extra(r, res, json_col, ts_col, id_col, limit, map, NULL);
}

void api_reply_page_extra(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
			  int limit, api_row_map_fn map, const char *extra)
{
	int n = PQntuples(res);
	while (n > 0 && PQgetisnull(res, n - 1, json_col)) /* a LEFT JOIN's row of NULLs */
		n--;
	int shown = n > limit ? limit : n;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"items\":[");
	for (int i = 0; i < shown; i++) {
		if (i)
			buf_putc(&b, ',');
		if (map) {
			char *item = map(PQgetvalue(res, i, json_col));
			buf_puts(&b, item);
			free(item);
		} else {
			buf_puts(&b, PQgetvalue(res, i, json_col));
		}
	}
	buf_puts(&b, "],\"next_cursor\":");
	if (n > limit && shown > 0) {
		char *cur = api_cursor_encode(PQgetvalue(res, shown - 1, ts_col),
					      PQgetvalue(res, shown - 1, id_col));
		json_write_string(&b, cur);
		free(cur);
	} else {
		buf_puts(&b, "null");
	}
	if (extra)
		buf_puts(&b, extra);
	buf_putc(&b, '}');
	api_reply_json(r, 200, buf_cstr(&b));
	buf_clear(&b);
}

/* No connection came within db_wait_timeout (or the wait queue was full). */
void api_reply_db_unavailable(struct api_req *r, const char *message)
{
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", db_pool_retry_after_s(r->app->db));
	api_add_header(r, "Retry-After", secs);
	api_reply_error(r, 503, "database_unavailable", message, NULL);
}
