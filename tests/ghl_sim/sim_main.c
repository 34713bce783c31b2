/* sim_main.c — ghl-sim entry point: flags, the event loop, signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const char sim_usage_text[] =
	"usage: ghl-sim [flags]   (each flag also reads GHL_SIM_<FLAG> from the environment; the flag wins)\n"
	"  --listen HOST:PORT        address to serve (default 127.0.0.1:8090; port 0 = any free port,\n"
	"                            the chosen one is printed on stdout)\n"
	"  --client-id ID            OAuth client id (default demo-client-id)\n"
	"  --client-secret SECRET    OAuth client secret (default demo-client-secret)\n"
	"  --company-id ID           id of the demo company (default demo-company-0001)\n"
	"  --access-ttl SECONDS      access token lifetime (default 86399)\n"
	"  --latency-ms N            delay every API response by N ms (default 0)\n"
	"  --jitter-ms N             plus a random 0..N ms (default 0)\n"
	"  --error-rate F            fraction of API requests answered 500/502/503 (0..1)\n"
	"  --timeout-rate F          fraction of API requests processed but never answered\n"
	"  --drop-rate F             fraction of API requests processed, then the connection is closed\n"
	"  --rate-limit N            requests per window per app per resource (default 100; 0 = off)\n"
	"  --rate-window-ms N        rate window (default 10000; fixed window)\n"
	"  --daily-limit N           requests per UTC day per app per resource (default 200000; 0 = off)\n"
	"  --snapshot-delay-ms N     snapshot push stays 'processing' this long (default 2000)\n"
	"  --seed N                  deterministic ids, tokens and fault dice\n"
	"  --webhook-key-file PATH   Ed25519 private key PEM (created when missing)\n"
	"  --print-webhook-key       print the webhook public key (PEM) and exit\n"
	"  --verbose                 one line per request on stderr (never tokens)\n"
	"  --help                    this text\n"
	"admin endpoints: GET /_sim/state, GET /_sim/stats, GET|POST /_sim/faults, POST /_sim/reset,\n"
	"  POST /_sim/expire-tokens, POST /_sim/webhooks/send, POST /_sim/snapshots\n";

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sim *s = arg;
	event_base_loopbreak(s->base);
}

int main(int argc, char **argv)
{
	static struct sim sim;
	struct sim *s = &sim;
	struct err e = {0};
	int rc = 1;

	if (sim_config_load(&s->cfg, argc, argv, &e) != 0) {
		fprintf(stderr, "ghl-sim: %s\n", e.msg);
		return 2;
	}
	if (s->cfg.help) {
		fputs(sim_usage_text, stdout);
		rc = 0;
		goto out_config;
	}
	signal(SIGPIPE, SIG_IGN);
	sim_rng_init(s);
	if (sim_webhook_key_load(s, &e) != 0) {
		fprintf(stderr, "ghl-sim: webhook key: %s\n", e.msg);
		goto out_config;
	}
	if (s->cfg.print_webhook_key) {
		if (sim_webhook_print_key(s, &e) != 0)
			fprintf(stderr, "ghl-sim: %s\n", e.msg);
		else
			rc = 0;
		goto out_key;
	}
	s->started_ms = now_wall_ms();
	s->base = event_base_new();
	if (!s->base) {
		fprintf(stderr, "ghl-sim: event_base_new failed\n");
		goto out_key;
	}
	sim_store_init(s);
	htab_init(&s->stats.routes);
	htab_init(&s->buckets);
	if (sim_http_start(s, &e) != 0) {
		fprintf(stderr, "ghl-sim: %s\n", e.msg);
		goto out_stop;
	}
	s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
	evsignal_add(s->sigterm, NULL);
	evsignal_add(s->sigint, NULL);
	event_base_dispatch(s->base);
	rc = 0;
	event_free(s->sigterm);
	event_free(s->sigint);
out_stop:
	sim_webhooks_stop(s);
	sim_http_stop(s);
	sim_store_free(s);
	htab_clear(&s->stats.routes, free);
	sim_rl_free(s);
	sim_calls_clear(s);
	event_base_free(s->base);
out_key:
	EVP_PKEY_free(s->webhook_key);
out_config:
	sim_config_free(&s->cfg);
	return rc;
}
