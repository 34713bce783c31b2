/* sim_http.c — the evhttp server: routing, auth, rate limits, fault injection
 * and the reply path (immediate, delayed by an evtimer, held or dropped).
 *
 * Order of checks for an API request, like a gateway in front of GHL:
 * route (404) → Version header (400) → bearer token and class (401) →
 * rate limit (429) → injected failure (5xx) → handler → timeout/drop/latency.
 * A request chosen for a timeout or a drop is processed first and then never
 * answered: the client cannot tell whether the write happened, as with GHL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "sim.h"

#define SIM_MAX_BODY (1024 * 1024)

static const struct sim_route routes[] = {
	{EVHTTP_REQ_GET, "/oauth/chooselocation", AUTH_NONE, VER_NONE, sim_h_chooselocation,
	 "GET /oauth/chooselocation"},
	{EVHTTP_REQ_GET, "/v2/oauth/chooselocation", AUTH_NONE, VER_NONE, sim_h_chooselocation,
	 "GET /v2/oauth/chooselocation"},
	{EVHTTP_REQ_POST, "/oauth/token", AUTH_NONE, VER_NONE, sim_h_oauth_token,
	 "POST /oauth/token"},
	{EVHTTP_REQ_POST, "/oauth/locationToken", AUTH_COMPANY, VER_ANY, sim_h_location_token,
	 "POST /oauth/locationToken"},
	{EVHTTP_REQ_POST, "/locations/", AUTH_COMPANY, VER_ANY, sim_h_location_create,
	 "POST /locations/"},
	{EVHTTP_REQ_GET, "/locations/search", AUTH_ANY, VER_ANY, sim_h_location_search,
	 "GET /locations/search"},
	{EVHTTP_REQ_GET, "/locations/{locationId}", AUTH_ANY, VER_ANY, sim_h_location_get,
	 "GET /locations/{locationId}"},
	{EVHTTP_REQ_PUT, "/locations/{locationId}", AUTH_COMPANY, VER_ANY, sim_h_location_update,
	 "PUT /locations/{locationId}"},
	{EVHTTP_REQ_DELETE, "/locations/{locationId}", AUTH_COMPANY, VER_ANY, sim_h_location_delete,
	 "DELETE /locations/{locationId}"},
	{EVHTTP_REQ_GET, "/locations/{locationId}/customValues", AUTH_LOCATION, VER_ANY,
	 sim_h_cv_list, "GET /locations/{locationId}/customValues"},
	{EVHTTP_REQ_POST, "/locations/{locationId}/customValues", AUTH_LOCATION, VER_ANY,
	 sim_h_cv_create, "POST /locations/{locationId}/customValues"},
	{EVHTTP_REQ_GET, "/locations/{locationId}/customValues/{id}", AUTH_LOCATION, VER_ANY,
	 sim_h_cv_get, "GET /locations/{locationId}/customValues/{id}"},
	{EVHTTP_REQ_PUT, "/locations/{locationId}/customValues/{id}", AUTH_LOCATION, VER_ANY,
	 sim_h_cv_update, "PUT /locations/{locationId}/customValues/{id}"},
	{EVHTTP_REQ_DELETE, "/locations/{locationId}/customValues/{id}", AUTH_LOCATION, VER_ANY,
	 sim_h_cv_delete, "DELETE /locations/{locationId}/customValues/{id}"},
	{EVHTTP_REQ_GET, "/locations/{locationId}/customFields", AUTH_LOCATION, VER_ANY,
	 sim_h_cf_list, "GET /locations/{locationId}/customFields"},
	{EVHTTP_REQ_POST, "/locations/{locationId}/customFields", AUTH_LOCATION, VER_ANY,
	 sim_h_cf_create, "POST /locations/{locationId}/customFields"},
	{EVHTTP_REQ_DELETE, "/locations/{locationId}/customFields/{id}", AUTH_LOCATION, VER_ANY,
	 sim_h_cf_delete, "DELETE /locations/{locationId}/customFields/{id}"},
	{EVHTTP_REQ_POST, "/locations/{locationId}/tags", AUTH_LOCATION, VER_ANY, sim_h_tag_create,
	 "POST /locations/{locationId}/tags"},
	{EVHTTP_REQ_GET, "/locations/{locationId}/tags", AUTH_LOCATION, VER_ANY, sim_h_tag_list,
	 "GET /locations/{locationId}/tags"},
	{EVHTTP_REQ_GET, "/snapshots/", AUTH_COMPANY, VER_ANY, sim_h_snapshots_list,
	 "GET /snapshots/"},
	{EVHTTP_REQ_GET, "/snapshots/snapshot-status/{snapshotId}", AUTH_COMPANY, VER_ANY,
	 sim_h_snapshot_pushes, "GET /snapshots/snapshot-status/{snapshotId}"},
	{EVHTTP_REQ_GET, "/snapshots/snapshot-status/{snapshotId}/location/{locationId}",
	 AUTH_COMPANY, VER_ANY, sim_h_snapshot_status,
	 "GET /snapshots/snapshot-status/{snapshotId}/location/{locationId}"},
	{EVHTTP_REQ_POST, "/snapshots/share/link", AUTH_COMPANY, VER_ANY, sim_h_snapshot_share,
	 "POST /snapshots/share/link"},
	{EVHTTP_REQ_POST, "/users/", AUTH_ANY, VER_ANY, sim_h_user_create, "POST /users/"},
	{EVHTTP_REQ_GET, "/users/search", AUTH_ANY, VER_ANY, sim_h_user_search,
	 "GET /users/search"},
	{EVHTTP_REQ_GET, "/users/{userId}", AUTH_ANY, VER_ANY, sim_h_user_get,
	 "GET /users/{userId}"},
	{EVHTTP_REQ_POST, "/contacts/", AUTH_LOCATION, VER_ANY, sim_h_contact_create,
	 "POST /contacts/"},
	{EVHTTP_REQ_POST, "/contacts/upsert", AUTH_LOCATION, VER_ANY, sim_h_contact_upsert,
	 "POST /contacts/upsert"},
	{EVHTTP_REQ_POST, "/saas/enable-saas/{locationId}", AUTH_COMPANY, VER_SAAS,
	 sim_h_saas_enable, "POST /saas/enable-saas/{locationId}"},
	/* go-live (sim_phone.c, sim_calendars.c, sim_saas.c) */
	{EVHTTP_REQ_GET, "/phone-system/numbers/location/{locationId}/available", AUTH_LOCATION,
	 VER_ANY, sim_h_phone_available,
	 "GET /phone-system/numbers/location/{locationId}/available"},
	{EVHTTP_REQ_POST, "/phone-system/numbers/location/{locationId}/purchase", AUTH_LOCATION,
	 VER_ANY, sim_h_phone_purchase,
	 "POST /phone-system/numbers/location/{locationId}/purchase"},
	{EVHTTP_REQ_GET, "/phone-system/numbers/location/{locationId}", AUTH_LOCATION, VER_ANY,
	 sim_h_phone_list, "GET /phone-system/numbers/location/{locationId}"},
	{EVHTTP_REQ_GET, "/calendars/", AUTH_ANY, VER_SAAS, sim_h_calendar_list, "GET /calendars/"},
	{EVHTTP_REQ_POST, "/calendars/", AUTH_ANY, VER_SAAS, sim_h_calendar_create,
	 "POST /calendars/"},
	{EVHTTP_REQ_DELETE, "/calendars/{calendarId}", AUTH_ANY, VER_SAAS, sim_h_calendar_delete,
	 "DELETE /calendars/{calendarId}"},
	{EVHTTP_REQ_GET, "/saas/get-saas-subscription/{locationId}", AUTH_COMPANY, VER_SAAS,
	 sim_h_saas_subscription, "GET /saas/get-saas-subscription/{locationId}"},
	{EVHTTP_REQ_POST, "/saas/pause/{locationId}", AUTH_COMPANY, VER_SAAS, sim_h_saas_pause,
	 "POST /saas/pause/{locationId}"},
	{EVHTTP_REQ_POST, "/saas/update-rebilling/{companyId}", AUTH_COMPANY, VER_SAAS,
	 sim_h_saas_rebilling, "POST /saas/update-rebilling/{companyId}"},
	{EVHTTP_REQ_GET, "/custom-menus/", AUTH_COMPANY, VER_ANY, sim_h_menu_list,
	 "GET /custom-menus/"},
	{EVHTTP_REQ_POST, "/custom-menus/", AUTH_COMPANY, VER_ANY, sim_h_menu_create,
	 "POST /custom-menus/"},
	{EVHTTP_REQ_DELETE, "/custom-menus/{customMenuId}", AUTH_COMPANY, VER_ANY,
	 sim_h_menu_delete, "DELETE /custom-menus/{customMenuId}"},
	{EVHTTP_REQ_PUT, "/users/{userId}", AUTH_ANY, VER_ANY, sim_h_user_update,
	 "PUT /users/{userId}"},
};

/* ---- pending replies ---- */

struct sim_pending {
	struct sim *s;
	struct evhttp_request *req;
	struct event *ev; /* delay timer; NULL when held forever or gated */
	int gated;	  /* waits at the gate (/_sim/faults gate) */
	int status;
	int drop;
	struct sim_pending *prev, *next;
};

static void pending_link(struct sim *s, struct sim_pending *p)
{
	p->prev = NULL;
	p->next = s->pending;
	if (s->pending)
		s->pending->prev = p;
	s->pending = p;
}

/* A reply that waits (linked; the caller sets a timer or the gate flag). */
static struct sim_pending *pending_add(struct sim_ctx *c, int drop)
{
	struct sim_pending *p = xcalloc(1, sizeof *p);
	p->s = c->s;
	p->req = c->req;
	p->status = c->status;
	p->drop = drop;
	pending_link(c->s, p);
	return p;
}

static void pending_unlink(struct sim *s, struct sim_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		s->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

static const char *reason_for(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return NULL;
	}
}

static int conn_fd(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!evcon)
		return -1;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	return bev ? (int)bufferevent_getfd(bev) : -1;
}

/* Sends the reply already staged on req (headers + output buffer). With
 * drop, the socket is shut down first so the client sees no response. */
static void send_staged(struct evhttp_request *req, int status, int drop)
{
	if (drop) {
		int fd = conn_fd(req);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
	}
	evhttp_send_reply(req, status, reason_for(status), NULL);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sim_pending *p = arg;
	struct sim *s = p->s;
	pending_unlink(s, p);
	send_staged(p->req, p->status, p->drop);
	s->stats.in_flight--;
	event_free(p->ev);
	free(p);
}

/* Held requests are answered (and so freed) once their client has gone. */
static int client_gone(struct evhttp_request *req)
{
	int fd = conn_fd(req);
	if (fd < 0)
		return 1;
	char ch;
	ssize_t n = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 1;
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sim *s = arg;
	struct sim_pending *p = s->pending;
	while (p) {
		struct sim_pending *next = p->next;
		if (!p->ev && client_gone(p->req)) {
			pending_unlink(s, p);
			if (p->gated)
				s->stats.gate_waiting--;
			evhttp_send_reply(p->req, 504, reason_for(504), NULL);
			s->stats.in_flight--;
			free(p);
		}
		p = next;
	}
}

void sim_gate_check(struct sim *s)
{
	if (s->stats.gate_waiting == 0 || (s->cfg.gate > 0 && s->stats.gate_waiting < s->cfg.gate))
		return;
	if (s->cfg.gate > 0)
		s->stats.gates_opened++;
	s->cfg.gate = 0;
	s->stats.gate_waiting = 0;
	struct sim_pending *p = s->pending;
	while (p) {
		struct sim_pending *next = p->next;
		if (p->gated) {
			pending_unlink(s, p);
			send_staged(p->req, p->status, p->drop);
			s->stats.in_flight--;
			free(p);
		}
		p = next;
	}
}

/* ---- response helpers ---- */

void sim_json_begin(struct sim_ctx *c, struct jw *w, int status)
{
	c->status = status;
	buf_reset(&c->out);
	jw_init(w, &c->out);
	jw_object_begin(w);
}

void sim_json_end(struct sim_ctx *c, struct jw *w)
{
	jw_key(w, "traceId");
	jw_string(w, c->trace_id);
	jw_object_end(w);
}

static const char *error_name(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 422: return "Unprocessable Entity";
	default: return NULL;
	}
}

void sim_error(struct sim_ctx *c, int status, const char *message)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, "statusCode");
	jw_int(&w, status);
	jw_key(&w, "message");
	jw_string(&w, message);
	/* GHL's plain 400 has no "error" member; the others do. */
	const char *name = error_name(status);
	if (name && !(status == 400 && str_eq(message, "Bad Request"))) {
		jw_key(&w, "error");
		jw_string(&w, name);
	}
	sim_json_end(c, &w);
}

void sim_error_422(struct sim_ctx *c, struct vec *msgs)
{
	struct jw w;
	sim_json_begin(c, &w, 422);
	jw_key(&w, "statusCode");
	jw_int(&w, 422);
	jw_key(&w, "message");
	jw_array_begin(&w);
	for (size_t i = 0; i < msgs->n; i++)
		jw_string(&w, msgs->v[i]);
	jw_array_end(&w);
	jw_key(&w, "error");
	jw_string(&w, "Unprocessable Entity");
	sim_json_end(c, &w);
}

void sim_oauth_error(struct sim_ctx *c, int status, const char *error, const char *desc)
{
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, "error");
	jw_string(&w, error);
	jw_key(&w, "error_description");
	jw_string(&w, desc);
	sim_json_end(c, &w);
}

static size_t body_len(struct sim_ctx *c)
{
	return evbuffer_get_length(evhttp_request_get_input_buffer(c->req));
}

char *sim_body_string(struct sim_ctx *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t n = evbuffer_get_length(in);
	char *s = xmalloc(n + 1);
	evbuffer_copyout(in, s, n);
	s[n] = '\0';
	return s;
}

int sim_body_json(struct sim_ctx *c)
{
	if (c->body)
		return 0;
	size_t n = body_len(c);
	if (n == 0) {
		c->body = json_new_object();
		return 0;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	const char *p = (const char *)evbuffer_pullup(in, -1);
	struct err e = {0};
	c->body = json_parse(p, n, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!c->body || c->body->type != JSON_OBJECT) {
		c->body = json_free(c->body);
		sim_error(c, 400, "Bad Request");
		return -1;
	}
	return 0;
}

const char *sim_query(struct sim_ctx *c, const char *key)
{
	return evhttp_find_header(&c->query, key);
}

void sim_record_status(struct sim *s, const char *key, int status)
{
	struct route_stats *rs = htab_get(&s->stats.routes, key);
	if (!rs) {
		rs = xcalloc(1, sizeof *rs);
		htab_put(&s->stats.routes, key, rs);
	}
	for (int i = 0; i < rs->n; i++) {
		if (rs->status[i] == status) {
			rs->count[i]++;
			return;
		}
	}
	if (rs->n < SIM_MAX_STATUS) {
		rs->status[rs->n] = status;
		rs->count[rs->n++] = 1;
	}
}

void sim_log_request(struct sim_ctx *c, int status, const char *note)
{
	if (!c->s->cfg.verbose)
		return;
	fprintf(stderr, "ghl-sim: %s %s -> %d%s%s trace=%s\n", c->method_name,
		c->path ? c->path : "?", status, note ? " " : "", note ? note : "", c->trace_id);
}

/* ---- access checks ---- */

static const char forbidden_msg[] = "The token does not have access to this location.";

int sim_check_company(struct sim_ctx *c, const char *company_id)
{
	/* a location token speaks for its own company on the routes that accept
	 * one (AUTH_ANY); the handler narrows what it sees to its location */
	if (c->tok && str_eq(c->tok->company_id, company_id))
		return 0;
	sim_error(c, 403, "The token does not have access to this company.");
	return -1;
}

int sim_check_location(struct sim_ctx *c, struct sim_location *loc)
{
	if (c->tok && c->tok->cls == CLASS_COMPANY && str_eq(c->tok->company_id, loc->company_id))
		return 0;
	if (c->tok && c->tok->cls == CLASS_LOCATION && str_eq(c->tok->location_id, loc->id))
		return 0;
	sim_error(c, 403, forbidden_msg);
	return -1;
}

struct sim_location *sim_location_for(struct sim_ctx *c, const char *id)
{
	if (c->tok && c->tok->cls == CLASS_LOCATION && !str_eq(c->tok->location_id, id)) {
		sim_error(c, 403, forbidden_msg);
		return NULL;
	}
	struct sim_location *loc = sim_location_get(c->s, id);
	if (!loc) {
		sim_error(c, 404, "Location not found");
		return NULL;
	}
	if (sim_check_location(c, loc) != 0)
		return NULL;
	return loc;
}

/* ---- request parsing and routing ---- */

static int ctx_parse(struct sim_ctx *c)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(c->req);
	const char *raw = u ? evhttp_uri_get_path(u) : NULL;
	if (!raw || !*raw)
		raw = "/";
	c->path = evhttp_uridecode(raw, 0, NULL);
	if (!c->path)
		return -1;
	const char *q = u ? evhttp_uri_get_query(u) : NULL;
	if (q && evhttp_parse_query_str(q, &c->query) != 0)
		return -1;
	c->segbuf = xstrdup(c->path);
	char *p = c->segbuf;
	while (*p) {
		while (*p == '/')
			*p++ = '\0';
		if (!*p)
			break;
		if (c->nseg == SIM_MAX_SEGS)
			return -1;
		c->seg[c->nseg++] = p;
		while (*p && *p != '/')
			p++;
	}
	return 0;
}

static int tmpl_match(const char *tmpl, char **seg, int nseg)
{
	int i = 0;
	const char *p = tmpl;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i >= nseg)
			return 0;
		if (p[0] != '{' && (strlen(seg[i]) != len || memcmp(seg[i], p, len) != 0))
			return 0;
		i++;
		p += len;
	}
	return i == nseg;
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

int sim_route_known(const char *key)
{
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (str_eq(routes[i].stats_key, key))
			return 1;
	return 0;
}

/* Takes one injected fault for route r from slots (fail_routes or
 * hold_routes), if any. */
static int take_route_fault(struct sim_fail_route *slots, const struct sim_route *r)
{
	for (int i = 0; r && i < SIM_FAIL_ROUTES; i++) {
		struct sim_fail_route *f = &slots[i];
		if (f->n > 0 && str_eq(f->key, r->stats_key)) {
			f->n--;
			return 1;
		}
	}
	return 0;
}

static const struct sim_route *route_find(struct sim_ctx *c)
{
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (routes[i].method == c->method && tmpl_match(routes[i].tmpl, c->seg, c->nseg))
			return &routes[i];
	return NULL;
}

static int version_ok(struct sim_ctx *c, enum version_need need)
{
	if (need == VER_NONE)
		return 1;
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Version");
	if (!v)
		return 0;
	if (str_eq(v, "2021-04-15") || str_eq(v, "2023-02-21"))
		return 1;
	return need == VER_ANY && str_eq(v, "2021-07-28");
}

static int authenticate(struct sim_ctx *c, enum auth_need need)
{
	if (need == AUTH_NONE)
		return 0;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
					   "Authorization");
	struct sim_token *t = NULL;
	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		t = sim_token_find(c->s, h);
	}
	int ok = t && t->kind == TOK_ACCESS && !t->revoked && t->expires_ms > now_wall_ms();
	if (ok && need == AUTH_COMPANY && t->cls != CLASS_COMPANY)
		ok = 0;
	if (ok && need == AUTH_LOCATION && t->cls != CLASS_LOCATION)
		ok = 0;
	if (!ok) {
		sim_error(c, 401, "Invalid token: access token is invalid");
		return -1;
	}
	c->tok = t;
	return 0;
}

/* Stage the answer of an injected failure, counted in errors_injected. */
static void answer_injected(struct sim_ctx *c, int status)
{
	c->s->stats.errors_injected++;
	struct jw w;
	sim_json_begin(c, &w, status);
	jw_key(&w, "statusCode");
	jw_int(&w, status);
	jw_key(&w, "message");
	jw_string(&w, reason_for(status) ? reason_for(status) : "Internal Server Error");
	sim_json_end(c, &w);
}

/* Returns 1 when a failure was injected (response staged). */
static int inject_error(struct sim_ctx *c)
{
	struct sim *s = c->s;
	int status = 0;
	if (take_route_fault(s->cfg.fail_routes, c->route)) {
		status = (int)s->cfg.fail_status;
	} else if (s->cfg.fail_next > 0) {
		s->cfg.fail_next--;
		status = (int)s->cfg.fail_status;
	} else if (s->cfg.error_rate > 0 && sim_rng_double(s, RNG_FAULTS) < s->cfg.error_rate) {
		static const int codes[] = {500, 502, 503};
		status = codes[sim_rng_next(s, RNG_FAULTS) % 3];
	}
	if (!status)
		return 0;
	answer_injected(c, status);
	return 1;
}

/* During a timed outage (/_sim/faults outage_ms) every API request fails;
 * returns 1 when this one did (response staged). */
static int outage(struct sim_ctx *c)
{
	if (c->s->cfg.outage_until_ms <= now_monotonic_ms())
		return 0;
	answer_injected(c, (int)c->s->cfg.fail_status);
	return 1;
}

static void add_rl_headers(struct sim_ctx *c, struct evkeyvalq *h)
{
	char v[32];
	if (!c->have_rl)
		sim_rl_nominal(c->s, &c->rl);
	snprintf(v, sizeof v, "%lld", (long long)c->rl.max);
	evhttp_add_header(h, "X-RateLimit-Max", v);
	snprintf(v, sizeof v, "%lld", (long long)c->rl.remaining);
	evhttp_add_header(h, "X-RateLimit-Remaining", v);
	snprintf(v, sizeof v, "%lld", (long long)c->rl.interval_ms);
	evhttp_add_header(h, "X-RateLimit-Interval-Milliseconds", v);
	snprintf(v, sizeof v, "%lld", (long long)c->rl.daily_max);
	evhttp_add_header(h, "X-RateLimit-Limit-Daily", v);
	snprintf(v, sizeof v, "%lld", (long long)c->rl.daily_remaining);
	evhttp_add_header(h, "X-RateLimit-Daily-Remaining", v);
	if (c->rl.limited) {
		snprintf(v, sizeof v, "%lld", (long long)c->rl.retry_after_s);
		evhttp_add_header(h, "Retry-After", v);
	}
}

void sim_finish(struct sim_ctx *c)
{
	struct sim *s = c->s;
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	if (!evhttp_find_header(h, "Content-Type"))
		evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
	evhttp_add_header(h, "X-Trace-Id", c->trace_id);
	if (c->out.len)
		evbuffer_add(evhttp_request_get_output_buffer(c->req), c->out.data, c->out.len);
	if (c->admin) {
		sim_log_request(c, c->status, NULL);
		evhttp_send_reply(c->req, c->status, reason_for(c->status), NULL);
		return;
	}
	add_rl_headers(c, h);
	const char *key = c->route ? c->route->stats_key : "(unmatched)";

	int hold = (c->status < 400 && take_route_fault(s->cfg.hold_routes, c->route)) ||
		   (s->cfg.timeout_rate > 0 && sim_rng_double(s, RNG_FAULTS) < s->cfg.timeout_rate);
	int drop = !hold && s->cfg.drop_rate > 0 &&
		   sim_rng_double(s, RNG_FAULTS) < s->cfg.drop_rate;
	int64_t delay = s->cfg.latency_ms;
	if (s->cfg.jitter_ms > 0)
		delay += (int64_t)(sim_rng_next(s, RNG_FAULTS) % (uint64_t)(s->cfg.jitter_ms + 1));

	if (hold) {
		s->stats.timeouts_injected++;
		sim_calls_record(c, -1);
		sim_record_status(s, key, -1);
		sim_log_request(c, c->status, "(held: timeout injected)");
		pending_add(c, 0);
		return;
	}
	sim_calls_record(c, drop ? 0 : c->status);
	if (drop) {
		s->stats.drops_injected++;
		sim_record_status(s, key, 0);
	} else {
		sim_record_status(s, key, c->status);
	}
	sim_log_request(c, c->status, drop ? "(connection dropped)" : NULL);
	if (s->cfg.gate > 0) { /* wait at the gate (instead of the latency) */
		pending_add(c, drop)->gated = 1;
		s->stats.gate_waiting++;
		sim_gate_check(s);
		return;
	}
	if (delay <= 0) {
		send_staged(c->req, c->status, drop);
		s->stats.in_flight--;
		return;
	}
	struct sim_pending *p = pending_add(c, drop);
	p->ev = evtimer_new(s->base, on_delay, p);
	struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
	evtimer_add(p->ev, &tv);
}

static void api_request(struct sim_ctx *c)
{
	struct sim *s = c->s;
	s->stats.in_flight++;
	s->stats.requests_total++;
	c->route = route_find(c);
	if (!c->route) {
		char *msg = xasprintf("Cannot %s %s", c->method_name, c->path);
		sim_error(c, 404, msg);
		free(msg);
		return;
	}
	if (!version_ok(c, c->route->version)) {
		sim_error(c, 400, "Bad Request");
		return;
	}
	if (authenticate(c, c->route->auth) != 0)
		return;
	if (c->tok) {
		sim_rl_check(s, c->tok, now_wall_ms(), &c->rl);
		c->have_rl = 1;
		if (c->rl.limited) {
			s->stats.rate_limited++;
			struct jw w;
			sim_json_begin(c, &w, 429);
			jw_key(&w, "statusCode");
			jw_int(&w, 429);
			jw_key(&w, "message");
			jw_string(&w, "Too Many Requests");
			sim_json_end(c, &w);
			return;
		}
	}
	if (outage(c) || inject_error(c))
		return;
	c->route->fn(c);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct sim_ctx c;
	memset(&c, 0, sizeof c);
	c.s = arg;
	c.req = req;
	c.method = evhttp_request_get_command(req);
	c.method_name = method_name(c.method);
	c.start_ms = now_monotonic_ms();
	TAILQ_INIT(&c.query);
	buf_init(&c.out);
	sim_new_trace_id(c.s, c.trace_id);

	if (ctx_parse(&c) != 0) {
		c.s->stats.in_flight++;
		sim_error(&c, 400, "Bad Request");
	} else if (c.nseg >= 1 && str_eq(c.seg[0], "_sim")) {
		c.admin = 1;
		sim_admin_dispatch(&c);
	} else {
		api_request(&c);
	}
	if (!c.deferred)
		sim_finish(&c);
	free(c.path);
	free(c.segbuf);
	evhttp_clear_headers(&c.query);
	json_free(c.body);
	buf_clear(&c.out);
}

int sim_http_start(struct sim *s, struct err *e)
{
	char *host = NULL;
	int port = 0;
	if (sim_parse_listen(s->cfg.listen, &host, &port, e) != 0)
		return -1;
	s->http = evhttp_new(s->base);
	if (!s->http) {
		free(host);
		return err_set(e, "evhttp_new failed");
	}
	evhttp_set_max_body_size(s->http, SIM_MAX_BODY);
	evhttp_set_max_headers_size(s->http, 64 * 1024);
	evhttp_set_timeout(s->http, 120);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(s->http, on_request, s);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, host,
									(ev_uint16_t)port);
	if (!bs) {
		err_set(e, "cannot listen on %s: %s", s->cfg.listen, strerror(errno));
		free(host);
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int bound = port;
	if (getsockname((int)evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	printf("ghl-sim listening on http://%s:%d\n", host, bound);
	fflush(stdout);
	free(host);
	s->reaper = event_new(s->base, -1, EV_PERSIST, on_reap, s);
	struct timeval tv = {0, 250000};
	event_add(s->reaper, &tv);
	return 0;
}

void sim_http_stop(struct sim *s)
{
	struct sim_pending *p = s->pending;
	while (p) {
		struct sim_pending *next = p->next;
		if (p->ev)
			event_free(p->ev);
		/* a request whose connection is gone is ours to free; the others
		 * are freed with their connection by evhttp_free */
		if (!evhttp_request_get_connection(p->req))
			evhttp_request_free(p->req);
		free(p);
		p = next;
	}
	s->pending = NULL;
	if (s->reaper)
		event_free(s->reaper);
	s->reaper = NULL;
	if (s->http)
		evhttp_free(s->http);
	s->http = NULL;
}
