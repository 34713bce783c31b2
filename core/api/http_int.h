/* http_int.h — private to the HTTP server: http.c (routes, requests, replies)
 * and http_conn.c (connections: the cap, idle eviction, accept errors, each
 * route's body limit set when its request line arrives). */
#ifndef GHL_HTTP_INT_H
#define GHL_HTTP_INT_H

#include <stdint.h>

#include "http.h"

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct event;
struct http_conn;

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	void *app;
	const struct http_route *routes;
	size_t nroutes;
	int inflight;  /* received, not yet answered */
	int unflushed; /* answered, reply not yet written out */
	int port;
	uint64_t seq;
	long long by_class[5];
	void (*idle_cb)(void *);
	void *idle_arg;

	/* connections (http_conn.c) */
	struct http_limits lim;	     /* max_connections already lowered to the fd limit */
	int nconns;		     /* open (accepted, not closed) */
	struct http_conn *lru, *mru; /* every open connection, least recently idle first */
	struct http_conn **by_fd;    /* open connections by socket */
	int nby_fd;
	int paused_full;	   /* accepting paused: at the cap, none idle */
	int paused_brief;	   /* accepting paused for a moment (eviction, accept error) */
	struct event *resume;	   /* ends paused_brief */
	int reserve_fd;		   /* spent to turn a connection away on EMFILE */
	int timeout_s;		   /* keep-alive idle timeout new connections get */
	int64_t error_logged_ms;   /* accept errors: the last line logged */
	long long errors_unlogged; /* and how many were not since */
	struct http_server *next;  /* every server (the listener's error callback) */
};

/* Does "/a/{x}/b" match "/a/42/b"? Fills c's params when c is not NULL. */
int http_route_match(const char *pattern, const char *path, struct http_ctx *c);

/* ---- http_conn.c ---- */

/* After evhttp_new: per-connection set-up and default limits. */
void http_conn_init(struct http_server *s);
/* After binding: accept errors handled, a reserve descriptor opened. */
void http_conn_listening(struct http_server *s);
/* A request's reply went out (evhttp's on-complete): its connection is idle
 * again and the next request line may already be buffered. */
void http_conn_request_done(struct http_server *s, struct evhttp_request *req);
/* Before evhttp_free: forget every connection and timer. */
void http_conn_fini(struct http_server *s);

#endif
