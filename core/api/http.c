/* http.c — evhttp server with a route table; see http.h. Connections and
 * body limits are in http_conn.c. */
#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"
#include "json.h"
#include "log.h"

const char *http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

int http_route_match(const char *pattern, const char *path, struct http_ctx *c)
{
	const char *p = pattern, *s = path;
	int n = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			const char *send = strchr(s, '/');
			if (!send)
				send = s + strlen(s);
			if (!pend || send == s || n >= HTTP_MAX_PARAMS)
				goto fail;
			if (c)
				c->params[n] = xstrndup(s, (size_t)(send - s));
			n++;
			p = pend + 1;
			s = send;
			continue;
		}
		if (*p != *s)
			goto fail;
		p++;
		s++;
	}
	if (*p || *s)
		goto fail;
	if (c)
		c->nparams = n;
	return 1;
fail:
	for (int i = 0; c && i < n; i++) {
		free(c->params[i]);
		c->params[i] = NULL;
	}
	return 0;
}

static void ctx_free(struct http_ctx *c)
{
	for (int i = 0; i < c->nparams; i++)
		free(c->params[i]);
	free(c->path);
	free(c);
}

void http_reply(struct http_ctx *c, int status, const char *content_type, const char *body,
		size_t len)
{
	struct http_server *s = c->srv;
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	if (content_type)
		evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "X-Request-Id", c->request_id);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	struct evbuffer *out = evbuffer_new();
	if (body && len)
		evbuffer_add(out, body, len);
	evhttp_send_reply(c->req, status, http_status_text(status), out);
	evbuffer_free(out);
	if (status >= 100 && status < 600)
		s->by_class[status / 100 - 1]++;

	char st[8], ms[24];
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ms, sizeof(ms), "%lld", (long long)(now_monotonic_ms() - c->start_ms));
	log_msg(status >= 500 ? LOG_WARN : LOG_INFO, "http request", "request_id", c->request_id,
		"method", c->method, "path", c->path, "status", st, "duration_ms", ms, NULL);
	ctx_free(c);
	s->inflight--;
	s->unflushed++;
}

/* The reply has been written to the socket: only now is the request done. */
static void on_complete(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	http_conn_request_done(s, req);
	s->unflushed--;
	if (s->inflight == 0 && s->unflushed == 0 && s->idle_cb)
		s->idle_cb(s->idle_arg);
}

void http_reply_json(struct http_ctx *c, int status, const char *json)
{
	http_reply(c, status, "application/json", json, strlen(json));
}

void http_reply_error(struct http_ctx *c, int status, const char *code, const char *message,
		      const char *details_json)
{
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "error");
	jw_object_begin(&w);
	jw_key(&w, "code");
	jw_string(&w, code);
	jw_key(&w, "message");
	jw_string(&w, message);
	if (details_json) {
		jw_key(&w, "details");
		jw_raw(&w, details_json);
	}
	jw_object_end(&w);
	jw_object_end(&w);
	http_reply_json(c, status, buf_cstr(&b));
	buf_clear(&b);
}

/* Replies go out in more than one write (headers, body chunks): with Nagle's
 * algorithm on, a keep-alive client's delayed ACK stalls the tail of every
 * larger reply by ~40 ms. */
static void set_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	set_nodelay(req);
	struct http_ctx *c = xcalloc(1, sizeof(*c));
	c->req = req;
	c->srv = s;
	c->app = s->app;
	c->start_ms = now_monotonic_ms();
	c->method = method_name(evhttp_request_get_command(req));
	c->id = (int64_t)++s->seq;
	snprintf(c->request_id, sizeof(c->request_id), "%08x%08llx", (unsigned)getpid(),
		 (unsigned long long)s->seq);
	s->inflight++;
	evhttp_request_set_on_complete_cb(req, on_complete, s);

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char *path = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	c->path = path ? path : xstrdup("/");

	int path_known = 0;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct http_route *r = &s->routes[i];
		if (!http_route_match(r->pattern, c->path, c))
			continue;
		path_known = 1;
		if (!strcmp(r->method, c->method) ||
		    (!strcmp(c->method, "HEAD") && !strcmp(r->method, "GET"))) {
			r->fn(c);
			return;
		}
		for (int k = 0; k < c->nparams; k++) {
			free(c->params[k]);
			c->params[k] = NULL;
		}
		c->nparams = 0;
	}
	if (path_known) {
		http_reply_error(c, 405, "method_not_allowed",
				 "this path does not accept that method", NULL);
		return;
	}
	char msg[300];
	snprintf(msg, sizeof(msg), "no route for %s %.200s", c->method, c->path);
	http_reply_error(c, 404, "not_found", msg, NULL);
}

struct http_server *http_server_new(struct event_base *base, void *app,
				    const struct http_route *routes, size_t nroutes,
				    const struct http_limits *lim)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->app = app;
	s->routes = routes;
	s->nroutes = nroutes;
	s->lim = *lim;
	s->http = evhttp_new(base);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_headers_size(s->http, 64 * 1024);
	evhttp_set_gencb(s->http, dispatch, s);
	http_conn_init(s);
	return s;
}

int http_server_listen(struct http_server *s, const char *host, int port, struct err *e)
{
	s->bound = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
	if (!s->bound)
		return err_set(e,
			       "cannot listen on %s:%d: %m (is another process using the port? "
			       "set `listen` to another HOST:PORT)",
			       host, port);
	http_conn_listening(s);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(s->bound);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	s->port = port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop_accepting(struct http_server *s)
{
	if (s->bound) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
}

int http_server_inflight(const struct http_server *s)
{
	return s->inflight + s->unflushed;
}

void http_server_on_idle(struct http_server *s, void (*cb)(void *), void *arg)
{
	s->idle_cb = cb;
	s->idle_arg = arg;
}

void http_server_counts(const struct http_server *s, long long out[5])
{
	for (int i = 0; i < 5; i++)
		out[i] = s->by_class[i];
}

struct http_server *http_server_free(struct http_server *s)
{
	if (!s)
		return NULL;
	http_conn_fini(s);
	evhttp_free(s->http);
	free(s);
	return NULL;
}
