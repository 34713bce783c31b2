/* api_events.c — outbound events: /api/v1/agencies/{id}/webhooks (an
 * agency's subscriptions: list, create with a secret shown once, get,
 * delete) and their delivery log (…/{webhook_id}/deliveries, redeliver).
 * The outbox itself is written by database triggers and sent by
 * core/engine/event_delivery.c. The secret is stored only encrypted by the
 * vault, and no answer after the creation carries it. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "ssrf_guard.h"
#include "vault.h"

#define EVENTS_MAX_SUBSCRIPTIONS 20 /* per agency */
#define EVENTS_URL_MAX 2000
#define EVENTS_SECRET_COLUMN "event_subscriptions.secret_enc" /* as event_delivery.c */

#define SUB_JSON                                                                \
	"json_build_object('id', s.id, 'agency_id', s.agency_id, 'url', s.url," \
	" 'events', to_json(s.event_types), 'description', s.description,"      \
	" 'created_by', s.created_by, 'created_at', " API_SQL_ISO("s.created_at") ")::text"

#define DELIVERY_JSON                                                                                                                                        \
	"json_build_object('id', d.id, 'webhook_id', d.subscription_id, 'event_id', d.event_id,"                                                             \
	" 'event_type', d.event_type, 'job_id', d.job_id, 'status', d.status,"                                                                               \
	" 'attempts', d.attempts, 'last_status_code', d.last_status_code,"                                                                                   \
	" 'last_error', d.last_error,"                                                                                                                       \
	" 'next_attempt_at', CASE WHEN d.status = 'pending' THEN " API_SQL_ISO(                                                                              \
		"d.next_attempt_at") " END,"                                                                                                                 \
				     " 'last_attempt_at', " API_SQL_ISO(                                                                                     \
					     "d.last_attempt_at") ","                                                                                        \
								  " 'delivered_at', " API_SQL_ISO(                                                           \
									  "d.delivered_at") ","                                                              \
											    " 'redelivery_of', d.redelivery_of, 'payload', d.payload::json," \
											    " 'created_at', " API_SQL_ISO(                                   \
												    "d.created_at") ")::text"

/* Every event a subscription may ask for. task.* and batch.completed are
 * accepted ahead of their sources (README "Integrate with the API"). */
/* clang-format off */
static const char *const event_types[] = {
	"job.completed",	  "job.failed",	     "job.cancelled",
	"job.retrying",		  "task.created",    "task.overdue",
	"agency.needs_reconnect", "batch.completed", "job.drift",
	"task.cancelled",
	NULL};
/* clang-format on */

static const struct api_field event_item = {
	.name = "events[]", .type = API_T_STRING, .one_of = event_types};

static const struct api_field create_fields[] = {
	{.name = "url",
	 .type = API_T_STRING,
	 .flags = API_F_REQUIRED,
	 .min_len = 8,
	 .max_len = EVENTS_URL_MAX},
	{.name = "events",
	 .type = API_T_ARRAY,
	 .flags = API_F_REQUIRED,
	 .min_len = 1,
	 .max_len = 8,
	 .items = &event_item},
	{.name = "description", .type = API_T_STRING, .max_len = 200},
	{0},
};

static const char *const deliveries_query[] = {"status", "limit", "cursor", NULL};
static const char *const delivery_statuses[] = {"pending", "delivered", "failed", NULL};

/* ---- the URL -------------------------------------------------------------- */

/* Problems with a subscription URL: http(s), a host, no credentials, no
 * spaces; an address literal must be public unless private ones are
 * allowed. Names are checked where they cannot lie: on the address each
 * delivery connects to (ssrf_guard.h). */
static void check_url(const char *url, int allow_private, struct api_problems *p)
{
	const char *rest = str_has_prefix(url, "https://")  ? url + 8
			   : str_has_prefix(url, "http://") ? url + 7
							    : NULL;
	if (!rest) {
		api_problem(p, "url", "must be an absolute http:// or https:// URL");
		return;
	}
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			api_problem(p, "url", "must not contain spaces or control characters");
			return;
		}
	size_t alen = strcspn(rest, "/?#");
	if (memchr(rest, '@', alen)) {
		api_problem(p, "url", "must not carry credentials (user:password@)");
		return;
	}
	char host[300];
	const char *h = rest;
	size_t hl;
	if (*h == '[') {
		const char *end = memchr(h, ']', alen);
		hl = end ? (size_t)(end - h - 1) : 0;
		h++;
	} else {
		const char *colon = memchr(h, ':', alen);
		hl = colon ? (size_t)(colon - h) : alen;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		api_problem(p, "url", "has no host");
		return;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1)
		v6->sin6_family = AF_INET6;
	else
		return; /* a name */
	struct err why;
	if (!allow_private && !ssrf_addr_is_public((struct sockaddr *)&ss, &why))
		api_problem(p, "url", "%s is a %s address; events go to public addresses only",
			    host, why.msg);
}

/* ---- list / get / delete ------------------------------------------------- */

static void subs_listed(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	api_reply_json(r, 200, PQgetvalue(res, 0, 0));
}

static void subs_list(struct api_req *r)
{
	const char *params[] = {api_param(r, 0)};
	api_query(r,
		  "SELECT json_build_object('items', COALESCE((SELECT json_agg(x.j ORDER BY"
		  "   x.created_at DESC, x.id DESC) FROM (SELECT " SUB_JSON "::json AS j,"
		  "   s.created_at, s.id FROM event_subscriptions s WHERE s.agency_id = a.id) x),"
		  "  '[]'::json))::text"
		  " FROM agencies a WHERE a.id = $1 AND a.deleted_at IS NULL",
		  1, params, subs_listed);
}

static void sub_found(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "webhook");
		return;
	}
	api_reply_json(r, 200, PQgetvalue(res, 0, 0));
}

static void subs_get(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_param(r, 1)};
	api_query(r,
		  "SELECT " SUB_JSON " FROM event_subscriptions s"
		  " WHERE s.id = $2 AND s.agency_id = $1",
		  2, params, sub_found);
}

static void sub_deleted(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "webhook");
		return;
	}
	log_info("webhook subscription deleted", "request_id", r->c->request_id, "agency_id",
		 api_param(r, 0), "webhook_id", api_param(r, 1), NULL);
	api_reply_empty(r, 204);
}

/* Its deliveries go with it (ON DELETE CASCADE): nothing more is sent. */
static void subs_delete(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_param(r, 1)};
	api_query(r,
		  "DELETE FROM event_subscriptions WHERE id = $2 AND agency_id = $1 RETURNING id",
		  2, params, sub_deleted);
}

/* ---- create ---------------------------------------------------------------- */

/* r->data: the new secret, wiped with the request */
static void secret_data_free(void *secret)
{
	secret_free(secret);
}

static void sub_created(struct api_req *r, PGresult *res)
{
	const char *secret = r->data;
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "agency");
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		char msg[120];
		snprintf(msg, sizeof(msg), "an agency has at most %d webhook subscriptions",
			 EVENTS_MAX_SUBSCRIPTIONS);
		api_reply_error(r, 409, "limit_reached", msg, NULL);
		return;
	}
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "id");
	jw_string(&w, PQgetvalue(res, 0, 0));
	jw_key(&w, "secret");
	jw_string(&w, secret);
	jw_key(&w, "webhook");
	jw_raw(&w, PQgetvalue(res, 0, 1));
	jw_object_end(&w);
	log_info("webhook subscription created", "request_id", r->c->request_id, "agency_id",
		 api_param(r, 0), "webhook_id", PQgetvalue(res, 0, 0), NULL);
	api_add_header(r, "Cache-Control", "no-store");
	api_reply_json(r, 201, buf_cstr(&b));
	crypto_wipe(b.data, b.len);
	buf_clear(&b);
}

static void subs_create(struct api_req *r)
{
	const char *url = json_get_str(r->body, "url");
	struct api_problems p;
	api_problems_init(&p);
	check_url(url, str_eq(r->app->cfg->notify_webhook_allow_private, "on"), &p);
	if (p.n) {
		api_reply_problems(r, &p);
		return;
	}
	api_problems_clear(&p);
	/* the events as a text[] literal: names from the closed list, no quoting needed */
	struct json *ev = json_get(r->body, "events");
	struct buf arr;
	buf_init(&arr);
	buf_putc(&arr, '{');
	for (size_t i = 0; i < ev->u.arr.n; i++) {
		const char *name = ev->u.arr.items[i]->u.str.s;
		int dup = 0;
		for (size_t k = 0; k < i; k++)
			dup |= str_eq(ev->u.arr.items[k]->u.str.s, name);
		if (!dup)
			buf_printf(&arr, "%s%s", arr.len > 1 ? "," : "", name);
	}
	buf_putc(&arr, '}');
	char *token = crypto_random_token(32);
	if (!token) {
		buf_clear(&arr);
		api_reply_internal(r, "the random number generator failed");
		return;
	}
	char *secret = xasprintf("whsec_%s", token);
	secret_free(token);
	r->data = secret;
	r->data_free = secret_data_free;
	struct err e;
	char *enc = r->app->vault ? vault_encrypt(r->app->vault, secret, api_param(r, 0),
						  EVENTS_SECRET_COLUMN, &e)
				  : NULL;
	if (!enc) {
		buf_clear(&arr);
		api_reply_internal(r, r->app->vault ? e.msg : "no vault");
		return;
	}
	char max[16];
	snprintf(max, sizeof(max), "%d", EVENTS_MAX_SUBSCRIPTIONS);
	const char *params[] = {api_param(r, 0),
				url,
				buf_cstr(&arr),
				enc,
				json_get_str(r->body, "description"),
				r->who.user_id[0] ? r->who.user_id : NULL,
				max};
	api_query(r,
		  "WITH a AS (SELECT a.id, (SELECT count(*) FROM event_subscriptions e"
		  "   WHERE e.agency_id = a.id) AS n"
		  "  FROM agencies a WHERE a.id = $1 AND a.deleted_at IS NULL),"
		  " s AS (INSERT INTO event_subscriptions"
		  "  (agency_id, url, event_types, secret_enc, description, created_by)"
		  "  SELECT a.id, $2, $3::text[], $4, $5, $6::uuid FROM a WHERE a.n < $7::int"
		  "  RETURNING *)"
		  " SELECT (SELECT s.id FROM s), (SELECT " SUB_JSON " FROM s) FROM a",
		  7, params, sub_created);
	free(enc);
	buf_clear(&arr);
}

/* ---- the delivery log -------------------------------------------------------- */

static void deliveries_page(struct api_req *r, PGresult *res)
{
	api_reply_page(r, res, 0, 1, 2, *(int *)r->data);
}

struct log_query {
	int limit;
	char *status, *after_ts, *after_id;
};

static void log_query_free(void *arg)
{
	struct log_query *q = arg;
	free(q->status);
	free(q->after_ts);
	free(q->after_id);
	free(q);
}

static void deliveries_sub_checked(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "webhook");
		return;
	}
	struct log_query *q = r->data;
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", q->limit + 1);
	const char *params[] = {api_param(r, 1), q->status, q->after_ts, q->after_id, limit};
	api_query(r,
		  "SELECT " DELIVERY_JSON ", " API_SQL_CURSOR_TS(
			  "d.created_at") ", d.id"
					  " FROM event_deliveries d WHERE d.subscription_id = $1"
					  "  AND ($2::text IS NULL OR d.status = $2)"
					  "  AND ($3::timestamp IS NULL OR (d.created_at, d.id) <"
					  "       ($3::timestamp::timestamptz, $4::uuid))"
					  " ORDER BY d.created_at DESC, d.id DESC LIMIT $5::int",
		  5, params, deliveries_page);
}

static void deliveries_list(struct api_req *r)
{
	const char *status = api_query_param(r, "status");
	if (status) {
		const char *const *s = delivery_statuses;
		while (*s && strcmp(*s, status))
			s++;
		if (!*s)
			api_query_problem(r, "status", "must be pending, delivered or failed");
	}
	struct api_page pg;
	if (api_page_parse(r, &pg))
		return;
	struct log_query *q = xcalloc(1, sizeof(*q));
	q->limit = pg.limit;
	q->status = status ? xstrdup(status) : NULL;
	q->after_ts = pg.after_ts;
	q->after_id = pg.after_id;
	pg.after_ts = pg.after_id = NULL;
	api_page_clear(&pg);
	r->data = q;
	r->data_free = log_query_free;
	const char *params[] = {api_param(r, 0), api_param(r, 1)};
	api_query(r, "SELECT 1 FROM event_subscriptions WHERE id = $2 AND agency_id = $1", 2,
		  params, deliveries_sub_checked);
}

static void redelivered(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_reply_not_found(r, "delivery");
		return;
	}
	log_info("event redelivery queued", "request_id", r->c->request_id, "agency_id",
		 api_param(r, 0), "delivery_id", api_param(r, 2), NULL);
	api_reply_json(r, 202, PQgetvalue(res, 0, 0));
}

/* A new delivery of the same event (same event id and body), sent as soon
 * as the worker sees it; the original row stays in the log. */
static void deliveries_redeliver(struct api_req *r)
{
	const char *params[] = {api_param(r, 0), api_param(r, 1), api_param(r, 2)};
	api_query(r,
		  "WITH d AS (INSERT INTO event_deliveries (subscription_id, agency_id, event_id,"
		  "   event_type, job_id, payload, redelivery_of)"
		  "  SELECT o.subscription_id, o.agency_id, o.event_id, o.event_type, o.job_id,"
		  "   o.payload, o.id FROM event_deliveries o"
		  "  JOIN event_subscriptions s ON s.id = o.subscription_id"
		  "  WHERE o.id = $3 AND o.subscription_id = $2 AND s.agency_id = $1 RETURNING *)"
		  " SELECT " DELIVERY_JSON " FROM d",
		  3, params, redelivered);
}

/* ---- routes ------------------------------------------------------------------ */

#define MANAGERS (API_ALLOW_ADMIN | API_ALLOW_AGENCY_ADMIN | API_ALLOW_API_KEY)
#define READERS (API_ALLOW_STAFF | API_ALLOW_API_KEY)

static const struct api_endpoint ep_list = {.allow = READERS, .agency_scoped = 1};
static const struct api_endpoint ep_create = {
	.allow = MANAGERS, .agency_scoped = 1, .body = create_fields};
static const struct api_endpoint ep_get = {.allow = READERS, .agency_scoped = 1};
static const struct api_endpoint ep_delete = {.allow = MANAGERS, .agency_scoped = 1};
static const struct api_endpoint ep_deliveries = {
	.allow = READERS, .agency_scoped = 1, .query = deliveries_query};
/* like a job retry: SUPPORT may */
static const struct api_endpoint ep_redeliver = {.allow = READERS, .agency_scoped = 1};

static void h_list(struct http_ctx *c)
{
	api_handle(c, &ep_list, subs_list);
}

static void h_create(struct http_ctx *c)
{
	api_handle(c, &ep_create, subs_create);
}

static void h_get(struct http_ctx *c)
{
	api_handle(c, &ep_get, subs_get);
}

static void h_delete(struct http_ctx *c)
{
	api_handle(c, &ep_delete, subs_delete);
}

static void h_deliveries(struct http_ctx *c)
{
	api_handle(c, &ep_deliveries, deliveries_list);
}

static void h_redeliver(struct http_ctx *c)
{
	api_handle(c, &ep_redeliver, deliveries_redeliver);
}

static const struct http_route event_routes[] = {
	{"GET", "/api/v1/agencies/{id}/webhooks", h_list},
	{"POST", "/api/v1/agencies/{id}/webhooks", h_create},
	{"GET", "/api/v1/agencies/{id}/webhooks/{webhook_id}", h_get},
	{"DELETE", "/api/v1/agencies/{id}/webhooks/{webhook_id}", h_delete},
	{"GET", "/api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries", h_deliveries},
	{"POST", "/api/v1/agencies/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
	 h_redeliver},
};

const struct route_table api_events_route_table = {event_routes,
						   sizeof(event_routes) / sizeof(event_routes[0])};
