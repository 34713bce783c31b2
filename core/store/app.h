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
	void *tokens; /* struct agency_tokens * (core/ghl/agency_tokens.h) */
	void *steps;  /* struct step_registry * (core/engine/registry.h) */
	void *sched;  /* struct scheduler * (core/engine/scheduler.h) */
	void *api;    /* REST API state (core/api/api.h) */
	/* shared by step runs, made on first use (core/engine/step_host.c) */
	void *loc_tokens;  /* struct loc_tokens * (core/engine/loc_tokens.h) */
	void *get_cache;   /* struct get_cache * (core/engine/get_cache.h) */
	void *push_poller; /* struct push_poller * (core/engine/push_poller.h) */
	int stopping;
};

#endif
