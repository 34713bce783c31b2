/* sim_config.c — table-driven flags; each flag also reads GHL_SIM_<NAME>.
 *
 * Environment first, then argv (the flag wins). Values are validated while
 * parsed; the first bad one stops with a message naming the flag.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

enum opt_type { OPT_STR, OPT_INT, OPT_RATE, OPT_FLAG };

struct opt {
	const char *name; /* flag without "--" */
	const char *env;
	enum opt_type type;
	size_t off;
	long long min, max;
};

#define O(f) offsetof(struct sim_config, f)

static const struct opt opts[] = {
	{"listen", "GHL_SIM_LISTEN", OPT_STR, O(listen), 0, 0},
	{"client-id", "GHL_SIM_CLIENT_ID", OPT_STR, O(client_id), 0, 0},
	{"client-secret", "GHL_SIM_CLIENT_SECRET", OPT_STR, O(client_secret), 0, 0},
	{"company-id", "GHL_SIM_COMPANY_ID", OPT_STR, O(company_id), 0, 0},
	{"access-ttl", "GHL_SIM_ACCESS_TTL", OPT_INT, O(access_ttl), 1, 315360000},
	{"latency-ms", "GHL_SIM_LATENCY_MS", OPT_INT, O(latency_ms), 0, 600000},
	{"jitter-ms", "GHL_SIM_JITTER_MS", OPT_INT, O(jitter_ms), 0, 600000},
	{"error-rate", "GHL_SIM_ERROR_RATE", OPT_RATE, O(error_rate), 0, 0},
	{"timeout-rate", "GHL_SIM_TIMEOUT_RATE", OPT_RATE, O(timeout_rate), 0, 0},
	{"drop-rate", "GHL_SIM_DROP_RATE", OPT_RATE, O(drop_rate), 0, 0},
	{"rate-limit", "GHL_SIM_RATE_LIMIT", OPT_INT, O(rate_limit), 0, 1000000000},
	{"rate-window-ms", "GHL_SIM_RATE_WINDOW_MS", OPT_INT, O(rate_window_ms), 1, 86400000},
	{"daily-limit", "GHL_SIM_DAILY_LIMIT", OPT_INT, O(daily_limit), 0, 1000000000},
	{"snapshot-delay-ms", "GHL_SIM_SNAPSHOT_DELAY_MS", OPT_INT, O(snapshot_delay_ms), 0,
	 86400000},
	{"seed", "GHL_SIM_SEED", OPT_INT, O(seed), 0, INT64_MAX},
	{"webhook-key-file", "GHL_SIM_WEBHOOK_KEY_FILE", OPT_STR, O(webhook_key_file), 0, 0},
	{"print-webhook-key", "GHL_SIM_PRINT_WEBHOOK_KEY", OPT_FLAG, O(print_webhook_key), 0, 0},
	{"verbose", "GHL_SIM_VERBOSE", OPT_FLAG, O(verbose), 0, 0},
	{"help", NULL, OPT_FLAG, O(help), 0, 0},
};

static int opt_set(struct sim_config *cfg, const struct opt *o, const char *val, struct err *e)
{
	char *base = (char *)cfg + o->off;
	long long ll;
	switch (o->type) {
	case OPT_STR: {
		char **dst = (char **)(void *)base;
		free(*dst);
		*dst = xstrdup(val);
		return 0;
	}
	case OPT_INT:
		if (str_to_ll(val, o->min, o->max, &ll) != 0)
			return err_set(e, "--%s: \"%s\" is not an integer in [%lld, %lld]", o->name,
				       val, o->min, o->max);
		*(int64_t *)(void *)base = ll;
		if (o->off == O(seed))
			cfg->seeded = 1;
		return 0;
	case OPT_RATE: {
		char *end = NULL;
		errno = 0;
		double d = strtod(val, &end);
		if (errno || end == val || *end || !(d >= 0.0 && d <= 1.0))
			return err_set(e, "--%s: \"%s\" is not a number in [0, 1]", o->name, val);
		*(double *)(void *)base = d;
		return 0;
	}
	case OPT_FLAG:
		if (val && (str_eq(val, "0") || str_eq(val, "false") || str_eq(val, "no")))
			*(int *)(void *)base = 0;
		else
			*(int *)(void *)base = 1;
		return 0;
	}
	return 0;
}

static const struct opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static void config_defaults(struct sim_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->listen = xstrdup("127.0.0.1:8090");
	cfg->client_id = xstrdup("demo-client-id");
	cfg->client_secret = xstrdup("demo-client-secret");
	cfg->company_id = xstrdup("demo-company-0001");
	cfg->access_ttl = 86399;
	cfg->rate_limit = 100;
	cfg->rate_window_ms = 10000;
	cfg->daily_limit = 200000;
	cfg->snapshot_delay_ms = 2000;
	cfg->fail_status = 503;
}

int sim_config_load(struct sim_config *cfg, int argc, char **argv, struct err *e)
{
	config_defaults(cfg);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
		if (v && *v && opt_set(cfg, &opts[i], v, e) != 0)
			return err_prefix(e, "environment %s", opts[i].env);
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!str_has_prefix(a, "--"))
			return err_set(e, "unexpected argument \"%s\"; try --help", a);
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = opt_find(name, len);
		if (!o)
			return err_set(e, "unknown flag \"%s\"; try --help", a);
		const char *val = eq ? eq + 1 : NULL;
		if (!val && o->type != OPT_FLAG) {
			if (i + 1 >= argc)
				return err_set(e, "--%s needs a value", o->name);
			val = argv[++i];
		}
		if (opt_set(cfg, o, val, e) != 0)
			return -1;
	}
	char *host = NULL;
	int port = 0;
	if (sim_parse_listen(cfg->listen, &host, &port, e) != 0)
		return -1;
	free(host);
	return 0;
}

void sim_config_free(struct sim_config *cfg)
{
	free(cfg->listen);
	free(cfg->client_id);
	free(cfg->client_secret);
	free(cfg->company_id);
	free(cfg->webhook_key_file);
	memset(cfg, 0, sizeof *cfg);
}

int sim_parse_listen(const char *s, char **host, int *port, struct err *e)
{
	const char *colon = strrchr(s, ':');
	long long p;
	if (!colon || colon == s || str_to_ll(colon + 1, 0, 65535, &p) != 0)
		return err_set(e, "--listen: \"%s\" is not HOST:PORT", s);
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	*host = xstrndup(h, hl);
	*port = (int)p;
	return 0;
}
