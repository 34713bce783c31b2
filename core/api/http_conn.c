/* http_conn.c — the HTTP server's connections: each route's body limit set
 * when its request line arrives, a cap on open connections with idle
 * eviction, and accept errors (EMFILE) that pause instead of spinning.
 *
 * Body limits: evhttp checks Content-Length (and chunked bodies as they
 * come) against its connection's max_body_size before reading the body, so
 * setting that size per request is enough. The request line is read from
 * the connection's input buffer by a buffer callback, which runs for new
 * data before evhttp parses it; a pipelined request already buffered is read
 * when the previous reply went out, before evhttp looks at it.
 *
 * The cap: evhttp takes every connection the listener accepts. When one more
 * would pass the cap, the connection idle the longest (waiting for its next
 * request) is closed; when none is idle, the listener pauses until one is, or
 * one closes. Above half the cap, new and reused connections get a 5 s idle
 * timeout instead of 60 s. When accept() fails (EMFILE, ENFILE, ...) the
 * listener pauses for 100 ms; a reserve descriptor is spent to take the
 * waiting connection and close it, so its client hears at once; the line is
 * logged at most every 10 s. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"
#include "log.h"

#define IDLE_TIMEOUT_S 60
#define BUSY_IDLE_TIMEOUT_S 5 /* above half the cap */
#define PAUSE_AFTER_ERROR_MS 100
#define ERROR_LOG_EVERY_MS 10000
#define REQUEST_LINE_MAX 2048 /* longer targets match no route */
#define MIN_CONNECTIONS 8

struct http_conn {
	struct http_server *s;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until evhttp has set it up */
	struct evbuffer_cb_entry *input_cb;
	struct event *ready; /* runs once evhttp has set the connection up */
	int fd;
	int awaiting;		       /* the next request line has not been seen */
	struct http_conn *prev, *next; /* s->lru … s->mru */
};

static struct http_server *servers; /* for the listener's error callback */

/* ---- the list of connections, least recently idle first ------------------ */

static void list_remove(struct http_server *s, struct http_conn *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else if (s->lru == k)
		s->lru = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else if (s->mru == k)
		s->mru = k->prev;
	k->prev = k->next = NULL;
}

static void list_append(struct http_server *s, struct http_conn *k)
{
	k->prev = s->mru;
	k->next = NULL;
	if (s->mru)
		s->mru->next = k;
	else
		s->lru = k;
	s->mru = k;
}

static void by_fd_set(struct http_server *s, int fd, struct http_conn *k)
{
	if (fd < 0)
		return;
	if (fd >= s->nby_fd) {
		int n = s->nby_fd ? s->nby_fd : 64;
		while (n <= fd)
			n *= 2;
		s->by_fd = xrealloc(s->by_fd, (size_t)n * sizeof(*s->by_fd));
		memset(s->by_fd + s->nby_fd, 0, (size_t)(n - s->nby_fd) * sizeof(*s->by_fd));
		s->nby_fd = n;
	}
	s->by_fd[fd] = k;
}

static struct http_conn *by_bev(struct http_server *s, struct bufferevent *bev)
{
	int fd = bev ? (int)bufferevent_getfd(bev) : -1;
	struct http_conn *k = fd >= 0 && fd < s->nby_fd ? s->by_fd[fd] : NULL;
	return k && k->bev == bev ? k : NULL;
}

/* ---- pausing and resuming the listener ------------------------------------ */

static void listener_set(struct http_server *s)
{
	struct evconnlistener *lev = s->bound ? evhttp_bound_socket_get_listener(s->bound) : NULL;
	if (!lev)
		return;
	if (s->paused_full || s->paused_brief)
		evconnlistener_disable(lev);
	else
		evconnlistener_enable(lev);
}

/* The idle timeout new connections get: shorter above half the cap. */
static int idle_timeout(const struct http_server *s)
{
	return s->nconns * 2 > s->lim.max_connections ? BUSY_IDLE_TIMEOUT_S : IDLE_TIMEOUT_S;
}

static void update_pressure(struct http_server *s)
{
	int t = idle_timeout(s);
	if (t != s->timeout_s) {
		s->timeout_s = t;
		evhttp_set_timeout(s->http, t);
	}
}

static struct http_conn *oldest_idle(struct http_server *s, const struct http_conn *except)
{
	for (struct http_conn *k = s->lru; k; k = k->next)
		if (k != except && k->awaiting && k->evcon)
			return k;
	return NULL;
}

/* Close the connection idle the longest; 0 when there was none. */
static int evict_one(struct http_server *s, const struct http_conn *except)
{
	struct http_conn *k = oldest_idle(s, except);
	if (!k)
		return 0;
	evhttp_connection_free(k->evcon); /* its close callback forgets k */
	return 1;
}

/* A connection went away, or became idle: accept again when there is room. */
static void maybe_resume(struct http_server *s)
{
	if (s->paused_full && (s->nconns < s->lim.max_connections || oldest_idle(s, NULL))) {
		s->paused_full = 0;
		listener_set(s);
	}
}

/* ---- one connection ------------------------------------------------------- */

static void conn_forget(struct http_conn *k)
{
	struct http_server *s = k->s;
	if (k->ready)
		event_free(k->ready);
	if (s) {
		list_remove(s, k);
		if (k->fd >= 0 && k->fd < s->nby_fd && s->by_fd[k->fd] == k)
			s->by_fd[k->fd] = NULL;
		s->nconns--;
		update_pressure(s);
		maybe_resume(s);
	}
	free(k);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct http_conn *k = arg;
	if (k->input_cb)
		evbuffer_remove_cb_entry(bufferevent_get_input(k->bev), k->input_cb);
	conn_forget(k);
}

/* The request path of a request-target (origin or absolute form), decoded
 * as dispatch() decodes it; malloc'd. */
static char *target_path(const char *target)
{
	const char *p = target;
	if (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) {
		p = strchr(p + (p[4] == ':' ? 7 : 8), '/');
		if (!p)
			p = "/";
	}
	char *raw = xstrndup(p, strcspn(p, "?#"));
	char *path = evhttp_uridecode(raw, 0, NULL);
	free(raw);
	return path ? path : xstrdup("/");
}

static int method_matches(const char *route_method, const char *method)
{
	return !strcmp(route_method, method) ||
	       (!strcmp(method, "HEAD") && !strcmp(route_method, "GET"));
}

/* The body limit of `method path`: its route's rule, else none for a GET
 * route and max_body for others, and for a path or method no route takes
 * (the answer is 404 or 405 anyway). */
static size_t body_limit(const struct http_server *s, const char *method, const char *path)
{
	for (size_t i = 0; i < s->lim.nrules; i++) {
		const struct http_body_rule *r = &s->lim.rules[i];
		if (method_matches(r->method, method) && http_route_match(r->pattern, path, NULL))
			return r->max_body == HTTP_BODY_LARGE ? s->lim.max_large_body : r->max_body;
	}
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct http_route *r = &s->routes[i];
		if (method_matches(r->method, method) && http_route_match(r->pattern, path, NULL))
			return strcmp(r->method, "GET") ? s->lim.max_body : 0;
	}
	return s->lim.max_body;
}

/* When the buffer holds the whole request line: the route's body limit for
 * the request it starts. */
static void read_request_line(struct http_conn *k, struct evbuffer *in)
{
	size_t eol_len = 0;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (eol.pos < 0)
		return; /* not yet; evhttp refuses over-long lines itself */
	k->awaiting = 0;
	if (!k->evcon)
		return;
	char line[REQUEST_LINE_MAX + 1];
	size_t n = (size_t)eol.pos < REQUEST_LINE_MAX ? (size_t)eol.pos : REQUEST_LINE_MAX;
	ev_ssize_t got = evbuffer_copyout(in, line, n);
	line[got > 0 ? got : 0] = '\0';
	size_t limit = k->s->lim.max_body;
	char *sp = strchr(line, ' ');
	if (sp) {
		*sp = '\0';
		char *target = sp + 1;
		target[strcspn(target, " ")] = '\0';
		char *path = target_path(target);
		limit = body_limit(k->s, line, path);
		free(path);
	}
	evhttp_connection_set_max_body_size(k->evcon, (ev_ssize_t)limit);
}

static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *k = arg;
	if (k->awaiting && info->n_added)
		read_request_line(k, in);
}

/* evhttp has made the connection: learn it, or that it is gone already. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_conn *k = arg;
	void *evcon = NULL;
	bufferevent_event_cb eventcb = NULL;
	bufferevent_getcb(k->bev, NULL, NULL, &eventcb, &evcon);
	struct bufferevent *bev = k->bev;
	event_free(k->ready);
	k->ready = NULL;
	if (!eventcb || !evcon) { /* freed by evhttp already (held by our reference) */
		conn_forget(k);
		bufferevent_decref(bev);
		return;
	}
	k->evcon = evcon;
	k->fd = (int)bufferevent_getfd(bev);
	by_fd_set(k->s, k->fd, k);
	evhttp_connection_set_closecb(k->evcon, on_conn_close, k);
	bufferevent_decref(bev);
	if (k->awaiting && evbuffer_get_length(bufferevent_get_input(bev)))
		read_request_line(k, bufferevent_get_input(bev));
	maybe_resume(k->s); /* k can be evicted now */
}

/* Stop accepting for a moment: until the loop's next turn (0 ms, so that
 * descriptors of evicted connections are closed first), or after an error. */
static void pause_accepting(struct http_server *s, int ms)
{
	if (s->paused_brief)
		return;
	s->paused_brief = 1;
	listener_set(s);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(s->resume, &tv);
}

/* evhttp's bufferevent callback: one per accepted connection. */
static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	struct http_conn *k = xcalloc(1, sizeof(*k));
	k->s = s;
	k->bev = bev;
	k->fd = -1;
	k->awaiting = 1;
	k->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, k);
	/* evhttp sets the connection up after this returns: learn it from the
	 * loop, holding the bufferevent so that it outlives an early free */
	bufferevent_incref(bev);
	k->ready = event_new(base, -1, 0, on_ready, k);
	event_active(k->ready, EV_TIMEOUT, 1);
	list_append(s, k);
	s->nconns++;
	int evicted = 0;
	while (s->nconns > s->lim.max_connections && evict_one(s, k))
		evicted++;
	if (evicted) /* their descriptors close on the loop's next turn */
		pause_accepting(s, 0);
	if (s->nconns >= s->lim.max_connections && !oldest_idle(s, k)) {
		s->paused_full = 1;
		listener_set(s);
	}
	update_pressure(s); /* the timeout evhttp gives this connection next */
	return bev;
}

void http_conn_request_done(struct http_server *s, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct http_conn *k = evcon ? by_bev(s, evhttp_connection_get_bufferevent(evcon)) : NULL;
	if (!k)
		return;
	k->awaiting = 1;
	list_remove(s, k);
	list_append(s, k);
	evhttp_connection_set_timeout(evcon, idle_timeout(s));
	/* a pipelined request may be buffered: evhttp reads it next */
	struct evbuffer *in = bufferevent_get_input(k->bev);
	if (evbuffer_get_length(in))
		read_request_line(k, in);
	maybe_resume(s);
}

/* ---- accept errors --------------------------------------------------------- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_server *s = arg;
	s->paused_brief = 0;
	listener_set(s);
}

static void log_accept_error(struct http_server *s, int err)
{
	int64_t now = now_monotonic_ms();
	if (s->error_logged_ms && now - s->error_logged_ms < ERROR_LOG_EVERY_MS) {
		s->errors_unlogged++;
		return;
	}
	char open_s[24], cap_s[24], quiet_s[24];
	snprintf(open_s, sizeof open_s, "%d", s->nconns);
	snprintf(cap_s, sizeof cap_s, "%d", s->lim.max_connections);
	snprintf(quiet_s, sizeof quiet_s, "%lld", s->errors_unlogged);
	log_warn("accepting connections failed; paused briefly", "error", strerror(err),
		 "connections", open_s, "max_connections", cap_s, "not_logged_since", quiet_s,
		 NULL);
	s->error_logged_ms = now;
	s->errors_unlogged = 0;
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	int err = errno;
	struct http_server *s = servers;
	while (s && s->http != arg)
		s = s->next;
	if (!s)
		return;
	if (err == EMFILE || err == ENFILE) {
		/* the descriptors allow no more connections than are open: that is
		 * the cap from now on, so that the next ones evict idle ones first */
		if (s->nconns > MIN_CONNECTIONS && s->nconns - 1 < s->lim.max_connections)
			s->lim.max_connections = s->nconns - 1;
		log_accept_error(s, err);
		if (evict_one(s, NULL)) { /* its descriptor is free on the loop's next turn */
			pause_accepting(s, 0);
			return;
		}
		/* none idle: turn the waiting connection away instead of leaving it
		 * hanging, with the descriptor kept in reserve for this */
		if (s->reserve_fd >= 0) {
			close(s->reserve_fd);
			s->reserve_fd = -1;
		}
		int fd = accept4(evconnlistener_get_fd(lev), NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	} else {
		log_accept_error(s, err);
	}
	pause_accepting(s, PAUSE_AFTER_ERROR_MS);
}

/* ---- the server's side ------------------------------------------------------ */

void http_conn_init(struct http_server *s)
{
	struct rlimit rl;
	int cap = s->lim.max_connections > 0 ? s->lim.max_connections : 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cap > rl.rlim_cur / 2) {
		int lowered = rl.rlim_cur / 2 > MIN_CONNECTIONS ? (int)(rl.rlim_cur / 2)
								: MIN_CONNECTIONS;
		char want[24], got[24], fds[24];
		snprintf(want, sizeof want, "%d", cap);
		snprintf(got, sizeof got, "%d", lowered);
		snprintf(fds, sizeof fds, "%llu", (unsigned long long)rl.rlim_cur);
		log_info("max_connections lowered to half the file descriptor limit",
			 "max_connections", want, "now", got, "RLIMIT_NOFILE", fds, NULL);
		cap = lowered;
	}
	s->lim.max_connections = cap;
	s->reserve_fd = -1;
	s->timeout_s = IDLE_TIMEOUT_S;
	evhttp_set_timeout(s->http, IDLE_TIMEOUT_S);
	/* for a request line that could not be read: the general limit */
	evhttp_set_max_body_size(s->http, (ev_ssize_t)s->lim.max_body);
	evhttp_set_bevcb(s->http, new_conn, s);
	s->resume = evtimer_new(s->base, on_resume, s);
	s->next = servers;
	servers = s;
}

void http_conn_listening(struct http_server *s)
{
	struct evconnlistener *lev = evhttp_bound_socket_get_listener(s->bound);
	if (lev)
		evconnlistener_set_error_cb(lev, on_accept_error);
	if (s->reserve_fd < 0)
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void http_conn_fini(struct http_server *s)
{
	for (struct http_server **p = &servers; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	/* evhttp_free closes the connections next: their callbacks must not
	 * reach s, and those not set up yet must not be leaked */
	while (s->lru) {
		struct http_conn *k = s->lru;
		list_remove(s, k);
		k->s = NULL;
		evbuffer_remove_cb_entry(bufferevent_get_input(k->bev), k->input_cb);
		if (k->evcon)
			evhttp_connection_set_closecb(k->evcon, NULL, NULL);
		else
			bufferevent_decref(k->bev); /* the hold taken until on_ready */
		conn_forget(k);
	}
	if (s->resume)
		event_free(s->resume);
	s->resume = NULL;
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	s->reserve_fd = -1;
	free(s->by_fd);
	s->by_fd = NULL;
	s->nby_fd = 0;
}
