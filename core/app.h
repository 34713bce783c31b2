/* app.h — the daemon's shared state, handed to every HTTP handler (c->app)
 * and background module. One per process; lives on the loop's thread. */
#ifndef GHL_APP_H
#define GHL_APP_H

#include "config.h"
#include "migrate.h"

struct event_base;
struct db_pool;
struct http_server;
struct ghl_client;
struct vault;

struct app {
	struct event_base *base;
	struct config *cfg;
	struct db_pool *db;
	struct http_server *http;
	struct migration_set migrations;
	struct ghl_client *ghl;
	struct vault *vault;
	void *tokens;	 /* struct agency_tokens * (core/agency_tokens.h) */
	void *steps;	 /* struct step_registry * (core/registry.h) */
	void *sched;	 /* struct scheduler * (core/scheduler.h) */
	void *api;	 /* REST API state (core/api.h) */
	int stopping;
};

/* A module's HTTP routes, collected by core/routes.c. */
struct http_route;
struct route_table {
	const struct http_route *routes;
	size_t n;
};

/* Every route of the daemon (core/routes.c): a malloc'd array, *n set. */
struct http_route *routes_all(size_t *n);

#endif
