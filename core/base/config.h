/* config.h — the agent's configuration: one table of keys (config.c), loaded as
 * built-in default < file (--config PATH) < environment (GHL_AGENT_<KEY>,
 * DATABASE_URL for database_url, GHL_AGENT_<KEY>_FILE for secrets).
 *
 * A config is immutable once loaded; SIGHUP loads a new one and swaps it in
 * only when it is valid (pgbouncer's habit).
 */
#ifndef GHL_CONFIG_H
#define GHL_CONFIG_H

#include "util.h"

struct config {
	char *path; /* the file loaded, or NULL */

	char *listen;
	char *database_url;
	char *log_level;
	char *log_format;
	long long shutdown_timeout_ms;
	long long db_reconnect_max_ms;
	long long db_wait_timeout_ms;
	long long db_wait_queue;
	char *migrations_dir;

	/* GHL side (GHL_API.md) */
	char *ghl_api_base;
	char *ghl_oauth_authorize_url;
	char *ghl_client_id;
	char *ghl_client_secret;
	char *ghl_redirect_url;
	char *ghl_scopes;
	long long ghl_timeout_ms;
	long long ghl_max_connections;
	long long ghl_retry_attempts;
	long long ghl_retry_base_ms;
	char *token_keys;
	char *token_keys_file;
	char *oauth_state_secret;
	long long oauth_state_ttl_ms;
	long long token_refresh_margin_ms;
	long long token_refresh_interval_ms;
	char *webhook_ed25519_public_key;
	char *webhook_rsa_public_key;
	long long webhook_max_age_ms;
	char *notify_webhook_allow_private; /* on: http_post may reach private addresses */
	char *demo;

	/* job engine */
	char *roles;
	long long worker_concurrency;
	long long claim_batch;
	long long lease_timeout_ms;
	long long poll_interval_ms;
	char *listen_notify;
	long long max_retries;
	long long max_concurrent_jobs;
	long long max_concurrent_jobs_ceiling;
	long long retry_base_ms;
	long long retry_max_ms;
	char *default_pipeline;
	char *plugin_dir;
	long long db_pool_size;
	char *db_prepared_statements;
	long long archive_after_ms;
	long long archive_interval_ms;

	/* reconciliation (core/engine/reconcile.c) */
	long long reconcile_interval_ms;
	long long reconcile_window_ms;
	long long reconcile_concurrency;

	/* outbound events (core/engine/event_delivery.c) */
	long long events_poll_interval_ms;
	long long events_timeout_ms;
	long long events_retry_base_ms;
	long long events_retry_max_ms;
	long long events_max_age_ms;

	/* people in the loop (core/engine/tasks.c) */
	long long task_check_interval_ms;

	/* Lua steps (core/lua/lua_host.c) */
	char *step_dir;
	long long lua_max_instructions;
	long long lua_max_memory;
	long long lua_max_wall_ms;

	/* REST API and access (core/api/api.c, core/api/passwords.c) */
	long long max_body_bytes;
	long long max_batch_body_bytes; /* POST /agencies/{id}/jobs/batch (JSON or CSV) */
	long long max_connections;	/* open HTTP connections (core/api/http.c) */
	long long session_ttl_ms;
	char *session_cookie_secure;
	long long bcrypt_cost;
	long long auth_workers;
	long long login_throttle_window_ms;
	long long login_max_failures_account;
	long long login_max_failures_address;
	long long login_max_pending;
	/* fair use per API key and per user (core/api/api_ratelimit.c) */
	long long rate_limit_submissions_per_minute; /* 0 = no limit */
	long long rate_limit_submissions_burst;
	long long rate_limit_reads_per_minute; /* 0 = no limit */
	long long rate_limit_reads_burst;

	/* dashboard (core/api/web.c) */
	char *web_dir;

	/* Where each key's value came from ("default", "file:LINE", "env:NAME"). */
	char **sources;
};

/* A fresh config holding the built-in defaults. */
struct config *config_new(void);
struct config *config_free(struct config *c);

/* Set one key from text, validating it. `where` names the origin for errors
 * and for `ghl-agent config` (e.g. "/etc/x.conf:12"). */
int config_set(struct config *c, const char *key, const char *value, const char *where,
	       struct err *e);

/* Read `key = value` lines; '#' starts a comment; values may be "quoted". */
int config_load_file(struct config *c, const char *path, struct err *e);

/* Apply GHL_AGENT_* / DATABASE_URL / *_FILE variables from the environment. */
int config_apply_env(struct config *c, struct err *e);

/* Defaults, then path (may be NULL), then environment. NULL on error. */
struct config *config_load(const char *path, struct err *e);

/* The effective config as `key = value  # source` lines, secrets masked. */
void config_print(const struct config *c, struct buf *out);

/* SIGHUP: calls fn for every key whose value differs between a and b, with
 * restart = 1 when a running daemon cannot apply the new value (it takes
 * effect after a restart: `listen`, `database_url`, `db_pool_size` …). */
void config_diff(const struct config *a, const struct config *b,
		 void (*fn)(void *arg, const char *key, int restart), void *arg);

/* The key table, for docs and tests: names in table order. */
size_t config_key_count(void);
const char *config_key_name(size_t i);

/* Split "host:port" (listen); 0 on success. host is malloc'd. */
int config_parse_listen(const char *s, char **host, int *port, struct err *e);

/* Mask the password of a libpq URL or key=value conninfo for display. */
char *config_mask_dsn(const char *dsn);

#endif
