/* config.c — table-driven configuration (see config.h for the precedence). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type { K_STRING, K_ENUM, K_DURATION, K_LISTEN, K_INT };

enum key_flags {
	K_SECRET = 1,  /* masked entirely when printed; may come from *_FILE */
	K_DSN = 2,     /* only the password part is masked */
	K_RESTART = 4, /* read once at start: SIGHUP cannot apply a change */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t off;
	const char *def;
	const char *allowed; /* K_ENUM: "a|b|c" */
	int flags;
	long long min, max; /* K_INT: the accepted range */
};

#define STR(f) offsetof(struct config, f)

/* clang-format off */
static const struct key_def keys[] = {
	{"listen", K_LISTEN, STR(listen), "127.0.0.1:8080", NULL, K_RESTART, 0, 0},
	{"database_url", K_STRING, STR(database_url), "postgresql:///ghl_agent", NULL,
	 K_DSN | K_RESTART, 0, 0},
	{"log_level", K_ENUM, STR(log_level), "info", "debug|info|warn|error", 0, 0, 0},
	{"log_format", K_ENUM, STR(log_format), "json", "json|text", 0, 0, 0},
	{"shutdown_timeout", K_DURATION, STR(shutdown_timeout_ms), "30s", NULL, 0, 0, 0},
	{"db_reconnect_max", K_DURATION, STR(db_reconnect_max_ms), "30s", NULL, K_RESTART, 0, 0},
	{"db_wait_timeout", K_DURATION, STR(db_wait_timeout_ms), "5s", NULL, 0, 0, 0},
	{"db_wait_queue", K_INT, STR(db_wait_queue), "1000", NULL, 0, 0, 1000000},
	{"migrations_dir", K_STRING, STR(migrations_dir), "", NULL, K_RESTART, 0, 0},
	{"ghl_api_base", K_STRING, STR(ghl_api_base), "https://services.leadconnectorhq.com", NULL,
	 K_RESTART, 0, 0},
	{"ghl_oauth_authorize_url", K_STRING, STR(ghl_oauth_authorize_url),
	 "https://marketplace.gohighlevel.com/oauth/chooselocation", NULL, 0, 0, 0},
	{"ghl_client_id", K_STRING, STR(ghl_client_id), "", NULL, K_RESTART, 0, 0},
	{"ghl_client_secret", K_STRING, STR(ghl_client_secret), "", NULL, K_SECRET | K_RESTART, 0,
	 0},
	{"ghl_redirect_url", K_STRING, STR(ghl_redirect_url), "http://127.0.0.1:8080/oauth/callback",
	 NULL, 0, 0, 0},
	{"ghl_scopes", K_STRING, STR(ghl_scopes),
	 "locations.write locations.readonly snapshots.readonly users.write users.readonly "
	 "oauth.write oauth.readonly locations/customValues.write locations/tags.write "
	 "contacts.write", NULL, 0, 0, 0},
	{"ghl_timeout", K_DURATION, STR(ghl_timeout_ms), "30s", NULL, K_RESTART, 0, 0},
	{"ghl_max_connections", K_INT, STR(ghl_max_connections), "512", NULL, K_RESTART, 1, 100000},
	{"ghl_retry_attempts", K_INT, STR(ghl_retry_attempts), "3", NULL, K_RESTART, 1, 10},
	{"ghl_retry_base", K_DURATION, STR(ghl_retry_base_ms), "500ms", NULL, K_RESTART, 0, 0},
	{"token_keys", K_STRING, STR(token_keys), "", NULL, K_SECRET | K_RESTART, 0, 0},
	{"token_keys_file", K_STRING, STR(token_keys_file), "", NULL, K_RESTART, 0, 0},
	{"oauth_state_secret", K_STRING, STR(oauth_state_secret), "", NULL, K_SECRET, 0, 0},
	{"oauth_state_ttl", K_DURATION, STR(oauth_state_ttl_ms), "10m", NULL, 0, 0, 0},
	{"token_refresh_margin", K_DURATION, STR(token_refresh_margin_ms), "1h", NULL, 0, 0, 0},
	{"token_refresh_interval", K_DURATION, STR(token_refresh_interval_ms), "60s", NULL, 0, 0, 0},
	{"webhook_ed25519_public_key", K_STRING, STR(webhook_ed25519_public_key), "", NULL, 0, 0, 0},
	{"webhook_rsa_public_key", K_STRING, STR(webhook_rsa_public_key), "", NULL, 0, 0, 0},
	{"notify_webhook_allow_private", K_ENUM, STR(notify_webhook_allow_private), "off", "off|on",
	 0, 0, 0},
	{"webhook_max_age", K_DURATION, STR(webhook_max_age_ms), "5m", NULL, 0, 0, 0},
	{"demo", K_ENUM, STR(demo), "off", "off|on", K_RESTART, 0, 0},
	{"roles", K_ENUM, STR(roles), "both", "both|api|worker", K_RESTART, 0, 0},
	{"worker_concurrency", K_INT, STR(worker_concurrency), "2000", NULL, 0, 1, 100000},
	{"claim_batch", K_INT, STR(claim_batch), "200", NULL, 0, 1, 10000},
	{"lease_timeout", K_DURATION, STR(lease_timeout_ms), "15s", NULL, 0, 0, 0},
	{"poll_interval", K_DURATION, STR(poll_interval_ms), "1s", NULL, 0, 0, 0},
	{"listen_notify", K_ENUM, STR(listen_notify), "on", "on|off", K_RESTART, 0, 0},
	{"max_retries", K_INT, STR(max_retries), "3", NULL, 0, 0, 100},
	{"max_concurrent_jobs", K_INT, STR(max_concurrent_jobs), "10", NULL, 0, 1, 100000},
	{"max_concurrent_jobs_ceiling", K_INT, STR(max_concurrent_jobs_ceiling), "100", NULL, 0, 1,
	 100000},
	{"retry_base", K_DURATION, STR(retry_base_ms), "2s", NULL, 0, 0, 0},
	{"retry_max", K_DURATION, STR(retry_max_ms), "5m", NULL, 0, 0, 0},
	{"default_pipeline", K_STRING, STR(default_pipeline),
	 "{\"pipeline\":[{\"step\":\"VALIDATE_SNAPSHOT\"},{\"step\":\"CREATE_LOCATION\"},"
	 "{\"step\":\"WAIT_FOR_SNAPSHOT\"},{\"step\":\"CREATE_USER\"},"
	 "{\"step\":\"SET_CUSTOM_VALUES\"},{\"step\":\"CREATE_CONTACT\"}]}", NULL, 0, 0, 0},
	{"plugin_dir", K_STRING, STR(plugin_dir), "", NULL, K_RESTART, 0, 0},
	{"db_pool_size", K_INT, STR(db_pool_size), "4", NULL, K_RESTART, 2, 64},
	{"archive_after", K_DURATION, STR(archive_after_ms), "90d", NULL, 0, 0, 0},
	{"archive_interval", K_DURATION, STR(archive_interval_ms), "1h", NULL, K_RESTART, 0, 0},
	/* reconciliation (core/engine/reconcile.c) */
	{"reconcile_interval", K_DURATION, STR(reconcile_interval_ms), "6h", NULL, K_RESTART, 0, 0},
	{"reconcile_window", K_DURATION, STR(reconcile_window_ms), "30d", NULL, 0, 0, 0},
	{"reconcile_concurrency", K_INT, STR(reconcile_concurrency), "4", NULL, 0, 1, 64},
	{"db_prepared_statements", K_ENUM, STR(db_prepared_statements), "on", "on|off",
	 K_RESTART, 0, 0},
	/* outbound events (core/engine/event_delivery.c) */
	{"events_poll_interval", K_DURATION, STR(events_poll_interval_ms), "1s", NULL, 0, 0, 0},
	{"events_timeout", K_DURATION, STR(events_timeout_ms), "10s", NULL, 0, 0, 0},
	{"events_retry_base", K_DURATION, STR(events_retry_base_ms), "10s", NULL, 0, 0, 0},
	{"events_retry_max", K_DURATION, STR(events_retry_max_ms), "1h", NULL, 0, 0, 0},
	{"events_max_age", K_DURATION, STR(events_max_age_ms), "24h", NULL, 0, 0, 0},
	/* people in the loop (core/engine/tasks.c) */
	{"task_check_interval", K_DURATION, STR(task_check_interval_ms), "30s", NULL, K_RESTART,
	 0, 0},
	/* Lua steps (core/lua/lua_host.c): per-run limits, overridable per script */
	{"step_dir", K_STRING, STR(step_dir), "", NULL, 0, 0, 0},
	{"lua_max_instructions", K_INT, STR(lua_max_instructions), "10000000", NULL, 0, 1000,
	 1000000000000LL},
	{"lua_max_memory", K_INT, STR(lua_max_memory), "16777216", NULL, 0, 65536,
	 4294967296LL},
	{"lua_max_wall_ms", K_INT, STR(lua_max_wall_ms), "2000", NULL, 0, 1, 3600000},
	/* REST API and access (core/api/api.c, core/api/passwords.c) */
	{"max_body_bytes", K_INT, STR(max_body_bytes), "1048576", NULL, K_RESTART, 1024,
	 1073741824},
	{"max_batch_body_bytes", K_INT, STR(max_batch_body_bytes), "16777216", NULL, K_RESTART,
	 1024, 1073741824},
	{"max_connections", K_INT, STR(max_connections), "1024", NULL, K_RESTART, 8, 1000000},
	{"session_ttl", K_DURATION, STR(session_ttl_ms), "12h", NULL, 0, 0, 0},
	{"session_cookie_secure", K_ENUM, STR(session_cookie_secure), "off", "off|on", 0, 0, 0},
	{"bcrypt_cost", K_INT, STR(bcrypt_cost), "12", NULL, 0, 12, 20},
	{"auth_workers", K_INT, STR(auth_workers), "2", NULL, K_RESTART, 1, 64},
	{"login_throttle_window", K_DURATION, STR(login_throttle_window_ms), "15m", NULL, 0, 0, 0},
	{"login_max_failures_account", K_INT, STR(login_max_failures_account), "5", NULL, 0, 1,
	 1000000},
	{"login_max_failures_address", K_INT, STR(login_max_failures_address), "20", NULL, 0, 1,
	 1000000},
	{"login_max_pending", K_INT, STR(login_max_pending), "16", NULL, 0, 1, 100000},
	/* fair use per API key and per user (core/api/api_ratelimit.c); 0 = no limit */
	{"rate_limit_submissions_per_minute", K_INT, STR(rate_limit_submissions_per_minute),
	 "6000", NULL, 0, 0, 1000000000},
	{"rate_limit_submissions_burst", K_INT, STR(rate_limit_submissions_burst), "10000", NULL,
	 0, 1, 1000000000},
	{"rate_limit_reads_per_minute", K_INT, STR(rate_limit_reads_per_minute), "3000", NULL, 0,
	 0, 1000000000},
	{"rate_limit_reads_burst", K_INT, STR(rate_limit_reads_burst), "1000", NULL, 0, 1,
	 1000000000},
	/* dashboard (core/api/web.c) */
	{"web_dir", K_STRING, STR(web_dir), "", NULL, 0, 0, 0},
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

size_t config_key_count(void)
{
	return NKEYS;
}

const char *config_key_name(size_t i)
{
	return i < NKEYS ? keys[i].name : NULL;
}

static const struct key_def *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int enum_allows(const char *allowed, const char *v)
{
	size_t n = strlen(v);
	const char *p = allowed;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && !strncmp(p, v, n))
			return 1;
		p += len + (bar ? 1 : 0);
	}
	return 0;
}

int config_parse_listen(const char *s, char **host, int *port, struct err *e)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return err_set(e, "expected HOST:PORT, got \"%s\"", s);
	long long p;
	if (str_to_ll(colon + 1, 0, 65535, &p))
		return err_set(e, "port \"%s\" is not a number from 0 to 65535", colon + 1);
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (host)
		*host = xstrndup(h, hl);
	if (port)
		*port = (int)p;
	return 0;
}

static int set_value(struct config *c, const struct key_def *k, const char *v, struct err *e)
{
	char *base = (char *)c;
	switch (k->type) {
	case K_ENUM:
		if (!enum_allows(k->allowed, v))
			return err_set(e, "invalid value \"%s\" (expected one of %s)", v,
				       k->allowed);
		break;
	case K_LISTEN:
		if (config_parse_listen(v, NULL, NULL, e))
			return -1;
		break;
	case K_INT: {
		long long n;
		if (str_to_ll(v, k->min, k->max, &n))
			return err_set(e,
				       "invalid value \"%s\" (expected a whole number from %lld to "
				       "%lld)",
				       v, k->min, k->max);
		*(long long *)(void *)(base + k->off) = n;
		return 0;
	}
	case K_DURATION: {
		long long ms;
		if (str_to_duration_ms(v, &ms))
			return err_set(e, "invalid duration \"%s\" (examples: 30s, 500ms, 5m, 90d)",
				       v);
		*(long long *)(void *)(base + k->off) = ms;
		return 0;
	}
	case K_STRING: break;
	}
	char **slot = (char **)(void *)(base + k->off);
	free(*slot);
	*slot = xstrdup(v);
	return 0;
}

int config_set(struct config *c, const char *key, const char *value, const char *where,
	       struct err *e)
{
	const struct key_def *k = find_key(key);
	if (!k)
		return err_set(e, "%s: unknown key \"%s\" (see config/ghl-agent.conf for the keys)",
			       where, key);
	if (set_value(c, k, value, e))
		return err_prefix(e, "%s: key \"%s\"", where, key);
	size_t i = (size_t)(k - keys);
	free(c->sources[i]);
	c->sources[i] = xstrdup(where);
	return 0;
}

struct config *config_new(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	c->sources = xcalloc(NKEYS, sizeof(char *));
	for (size_t i = 0; i < NKEYS; i++) {
		struct err e;
		if (set_value(c, &keys[i], keys[i].def, &e)) {
			fprintf(stderr, "bug: default of %s: %s\n", keys[i].name, e.msg);
			abort();
		}
		c->sources[i] = xstrdup("default");
	}
	return c;
}

struct config *config_free(struct config *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type != K_DURATION && keys[i].type != K_INT)
			free(*(char **)(void *)((char *)c + keys[i].off));
		free(c->sources[i]);
	}
	free(c->sources);
	free(c->path);
	free(c);
	return NULL;
}

/* Unquote "..." in place (supports \" and \\). Returns NULL on a bad quote. */
static char *unquote(char *v)
{
	size_t n = strlen(v);
	if (n == 0 || v[0] != '"')
		return v;
	if (n < 2 || v[n - 1] != '"')
		return NULL;
	char *out = v, *p = v + 1, *end = v + n - 1;
	while (p < end) {
		if (*p == '\\' && p + 1 < end)
			p++;
		*out++ = *p++;
	}
	*out = '\0';
	return v;
}

int config_load_file(struct config *c, const char *path, struct err *e)
{
	char *text;
	if (file_read_all(path, &text, NULL, e))
		return err_prefix(e, "cannot read config file");
	int rc = 0;
	int lineno = 0;
	char *save = text;
	while (save && *save) {
		char *line = save;
		char *nl = strchr(line, '\n');
		if (nl) {
			*nl = '\0';
			save = nl + 1;
		} else {
			save = NULL;
		}
		lineno++;
		char *hash = NULL;
		/* a '#' outside quotes starts a comment */
		int inq = 0;
		for (char *p = line; *p; p++) {
			if (*p == '"' && (p == line || p[-1] != '\\'))
				inq = !inq;
			else if (*p == '#' && !inq) {
				hash = p;
				break;
			}
		}
		if (hash)
			*hash = '\0';
		char *s = str_trim(line);
		if (!*s)
			continue;
		char where[600];
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = err_set(e, "%s: expected \"key = value\", got \"%.60s\"", where, s);
			break;
		}
		*eq = '\0';
		char *key = str_trim(s);
		char *val = unquote(str_trim(eq + 1));
		if (!val) {
			rc = err_set(e, "%s: key \"%s\": unterminated quoted value", where, key);
			break;
		}
		if (config_set(c, key, val, where, e)) {
			rc = -1;
			break;
		}
	}
	free(text);
	if (rc == 0) {
		free(c->path);
		c->path = xstrdup(path);
	}
	return rc;
}

static char *env_name(const char *key, const char *suffix)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "GHL_AGENT_");
	for (const char *p = key; *p; p++)
		buf_putc(&b, (char)toupper((unsigned char)*p));
	buf_puts(&b, suffix);
	return buf_take(&b);
}

/* token_keys has its own token_keys_file key: GHL_AGENT_TOKEN_KEYS_FILE sets
 * that one (a file of keys), not token_keys read from a file as well. */
static int has_file_key(const char *key)
{
	char name[128];
	snprintf(name, sizeof(name), "%s_file", key);
	return find_key(name) != NULL;
}

int config_apply_env(struct config *c, struct err *e)
{
	const char *dsn = getenv("DATABASE_URL");
	if (dsn && *dsn && config_set(c, "database_url", dsn, "env:DATABASE_URL", e))
		return -1;
	for (size_t i = 0; i < NKEYS; i++) {
		char *name = env_name(keys[i].name, "");
		char *fname = env_name(keys[i].name, "_FILE");
		const char *v = getenv(name);
		const char *fv = getenv(fname);
		int rc = 0;
		if (v) {
			char where[128];
			snprintf(where, sizeof(where), "env:%s", name);
			rc = config_set(c, keys[i].name, v, where, e);
		} else if (fv && (keys[i].flags & (K_SECRET | K_DSN)) &&
			   !has_file_key(keys[i].name)) {
			char *text;
			char where[600];
			snprintf(where, sizeof(where), "env:%s (%s)", fname, fv);
			rc = file_read_all(fv, &text, NULL, e);
			if (rc == 0) {
				rc = config_set(c, keys[i].name, str_trim(text), where, e);
				free(text);
			} else {
				err_prefix(e, "%s", fname);
			}
		}
		free(name);
		free(fname);
		if (rc)
			return -1;
	}
	return 0;
}

struct config *config_load(const char *path, struct err *e)
{
	struct config *c = config_new();
	if ((path && config_load_file(c, path, e)) || config_apply_env(c, e))
		return config_free(c);
	return c;
}

void config_diff(const struct config *a, const struct config *b,
		 void (*fn)(void *arg, const char *key, int restart), void *arg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const void *va = (const char *)a + k->off, *vb = (const char *)b + k->off;
		int same;
		if (k->type == K_INT || k->type == K_DURATION)
			same = *(const long long *)va == *(const long long *)vb;
		else
			same = str_eq(*(char *const *)va, *(char *const *)vb);
		if (!same)
			fn(arg, k->name, (k->flags & K_RESTART) != 0);
	}
}

char *config_mask_dsn(const char *dsn)
{
	struct buf b;
	buf_init(&b);
	const char *scheme = strstr(dsn, "://");
	if (scheme) {
		const char *auth = scheme + 3;
		const char *at = strchr(auth, '@');
		const char *slash = strchr(auth, '/');
		const char *colon = strchr(auth, ':');
		if (at && (!slash || at < slash) && colon && colon < at) {
			buf_append(&b, dsn, (size_t)(colon + 1 - dsn));
			buf_puts(&b, "****");
			buf_puts(&b, at);
		} else {
			buf_puts(&b, dsn);
		}
		/* password=... in the query string */
		char *q = strstr(b.data, "password=");
		if (q) {
			char *end = q + 9;
			while (*end && *end != '&')
				end++;
			struct buf m;
			buf_init(&m);
			buf_append(&m, b.data, (size_t)(q + 9 - b.data));
			buf_puts(&m, "****");
			buf_puts(&m, end);
			buf_clear(&b);
			b = m;
		}
		return buf_take(&b);
	}
	/* key=value conninfo */
	const char *p = dsn;
	while (*p) {
		const char *q = strstr(p, "password");
		if (!q) {
			buf_puts(&b, p);
			break;
		}
		const char *eq = q + 8;
		while (*eq == ' ')
			eq++;
		if (*eq != '=') {
			buf_append(&b, p, (size_t)(eq - p));
			p = eq;
			continue;
		}
		buf_append(&b, p, (size_t)(eq + 1 - p));
		buf_puts(&b, "****");
		p = eq + 1;
		while (*p == ' ')
			p++;
		if (*p == '\'') {
			p++;
			while (*p && *p != '\'')
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (*p)
				p++;
		} else {
			while (*p && *p != ' ')
				p++;
		}
	}
	return buf_take(&b);
}

void config_print(const struct config *c, struct buf *out)
{
	buf_printf(out, "# effective configuration (file: %s)\n", c->path ? c->path : "none");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const char *base = (const char *)c;
		char tmp[64];
		char *masked = NULL;
		const char *v;
		if (k->type == K_INT) {
			snprintf(tmp, sizeof(tmp), "%lld",
				 *(const long long *)(const void *)(base + k->off));
			v = tmp;
		} else if (k->type == K_DURATION) {
			long long ms = *(const long long *)(const void *)(base + k->off);
			if (ms && ms % 86400000 == 0)
				snprintf(tmp, sizeof(tmp), "%lldd", ms / 86400000);
			else if (ms && ms % 3600000 == 0)
				snprintf(tmp, sizeof(tmp), "%lldh", ms / 3600000);
			else if (ms && ms % 60000 == 0)
				snprintf(tmp, sizeof(tmp), "%lldm", ms / 60000);
			else if (ms % 1000 == 0)
				snprintf(tmp, sizeof(tmp), "%llds", ms / 1000);
			else
				snprintf(tmp, sizeof(tmp), "%lldms", ms);
			v = tmp;
		} else {
			v = *(char *const *)(const void *)(base + k->off);
			if (!v)
				v = "";
			if ((k->flags & K_SECRET) && *v)
				v = "********";
			else if (k->flags & K_DSN)
				v = masked = config_mask_dsn(v);
		}
		buf_printf(out, "%s = %s  # %s\n", k->name, v, c->sources[i]);
		free(masked);
	}
}
