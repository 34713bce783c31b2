/* http.h — the daemon's HTTP server: evhttp on the shared loop, a route table,
 * per-request context, JSON replies in the DESIGN error shape, access logs and
 * an in-flight count for graceful shutdown. Each route's body limit applies
 * as soon as its request line arrives (before any of the body is read), and
 * open connections are capped (http_conn.c). */
#ifndef GHL_HTTP_H
#define GHL_HTTP_H

#include <stdint.h>

#include "util.h"

struct event_base;
struct evhttp_request;
struct http_server;

#define HTTP_MAX_PARAMS 4

struct http_ctx {
	struct evhttp_request *req;
	struct http_server *srv;
	void *app; /* the owner's state, given to http_server_new */
	const char *method;
	char *path;		       /* decoded path without the query string */
	char *params[HTTP_MAX_PARAMS]; /* {name} segments of the matched route */
	int nparams;
	char request_id[20];
	int64_t start_ms;
	int64_t id; /* sequence number (used by the in-flight list) */
};

typedef void (*http_handler_fn)(struct http_ctx *c);

struct http_route {
	const char *method;  /* "GET", "POST", … */
	const char *pattern; /* "/api/v1/jobs/{id}" */
	http_handler_fn fn;
};

/* A route whose body limit is not the default: max_body bytes, or
 * HTTP_BODY_LARGE for the server's max_large_body. */
#define HTTP_BODY_LARGE ((size_t)-1)
struct http_body_rule {
	const char *method, *pattern;
	size_t max_body;
};

/* Bodies: a route's rule, else max_body (none at all for GET routes; for a
 * path or method no route takes, max_body). A Content-Length over the limit
 * gets 413 before any of the body is read; a chunked body past it, 413 then. */
struct http_limits {
	size_t max_body;
	size_t max_large_body;
	const struct http_body_rule *rules;
	size_t nrules;
	int max_connections; /* open connections; at most half of RLIMIT_NOFILE */
};

struct http_server *http_server_new(struct event_base *base, void *app,
				    const struct http_route *routes, size_t nroutes,
				    const struct http_limits *lim);
int http_server_listen(struct http_server *s, const char *host, int port, struct err *e);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stop accepting new connections; requests in flight go on. */
void http_server_stop_accepting(struct http_server *s);
/* Requests received whose reply is not yet written out. */
int http_server_inflight(const struct http_server *s);
/* Called (once per transition) when in-flight drops to zero. */
void http_server_on_idle(struct http_server *s, void (*cb)(void *), void *arg);
struct http_server *http_server_free(struct http_server *s);
/* Requests answered since start, by status class: [0] 1xx … [4] 5xx. */
void http_server_counts(const struct http_server *s, long long out[5]);

/* Replies end the request: the ctx is freed and must not be used after. */
void http_reply(struct http_ctx *c, int status, const char *content_type, const char *body,
		size_t len);
void http_reply_json(struct http_ctx *c, int status, const char *json);
/* {"error":{"code","message"[,"details"]}}; details_json may be NULL. */
void http_reply_error(struct http_ctx *c, int status, const char *code, const char *message,
		      const char *details_json);

const char *http_status_text(int status);

/* A module's HTTP routes, collected by core/api/routes.c. */
struct route_table {
	const struct http_route *routes;
	size_t n;
};

/* Every route of the daemon (core/api/routes.c): a malloc'd array, *n set. */
struct http_route *routes_all(size_t *n);
/* The routes whose body limit is not the default (core/api/routes.c). */
const struct http_body_rule *routes_body_rules(size_t *n);

#endif
