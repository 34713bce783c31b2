/* bench_lua_step.c — cost of one trivial step invocation through the runner
 * (runner_run_once: context set-up, the step, teardown), for
 *   - the NOOP C plugin,
 *   - a trivial Lua step (run = function(ctx) end): per run a fresh
 *     coroutine and environment, the script's chunk executed again, the
 *     call, and teardown,
 *   - a Lua step that reads ctx.client and sets an output.
 * Prints µs per invocation (best of 5 rounds) and the Lua − C difference.
 * Usage: bench_lua_step [N]   (default 200000 invocations per round)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "json.h"
#include "lua_host.h"
#include "paths.h"
#include "plugin_loader.h"
#include "registry.h"
#include "runner.h"
#include "step_host.h"

static int completed;

static void on_done(void *arg, const char *status, const char *outputs, const char *log,
		    const char *error)
{
	(void)arg;
	(void)outputs;
	(void)log;
	if (strcmp(status, "COMPLETED")) {
		fprintf(stderr, "bench: a run failed: %s\n", error ? error : "?");
		exit(1);
	}
	completed++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* µs per invocation, best of 5 rounds of n. */
static double measure(struct app *app, struct step_impl *impl, const struct json *client, long n)
{
	double best = 1e9;
	for (int round = 0; round < 5; round++) {
		completed = 0;
		double t0 = now_s();
		for (long i = 0; i < n; i++)
			runner_run_once(app, impl, "agency", "company", NULL, client, NULL, NULL,
					on_done, NULL);
		double us = (now_s() - t0) * 1e6 / (double)n;
		if (completed != n) {
			fprintf(stderr, "bench: %d of %ld runs completed\n", completed, n);
			exit(1);
		}
		if (us < best)
			best = us;
	}
	return best;
}

static struct step_impl *load_script(const char *dir, const char *file, const char *src)
{
	char *path = xasprintf("%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	if (!f || fputs(src, f) < 0 || fclose(f)) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		exit(1);
	}
	struct lua_host_limits lim = {10000000, 16 << 20, 2000};
	struct err e;
	struct step_impl *impl = lua_host_load(path, &lim, &e);
	if (!impl) {
		fprintf(stderr, "bench: %s\n", e.msg);
		exit(1);
	}
	unlink(path);
	free(path);
	return impl;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	if (n <= 0)
		n = 200000;
	struct app app;
	memset(&app, 0, sizeof(app));
	struct step_registry *r = step_registry_new();
	char *pdir = paths_plugin_dir();
	plugin_loader_load_dir(r, pdir, step_host_api());
	free(pdir);
	struct step_impl *noop = step_registry_find(r, "NOOP");
	if (!noop) {
		fprintf(stderr, "bench: the NOOP plugin is not built (plugins/noop)\n");
		return 1;
	}
	char dir[] = "/tmp/bench-lua-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	struct step_impl *trivial = load_script(
		dir, "bench_trivial.lua",
		"return {name = 'bench_trivial', version = '1', run = function(ctx) end}\n");
	struct step_impl *reads = load_script(
		dir, "bench_reads.lua",
		"return {name = 'bench_reads', version = '1',\n"
		"  config_schema = {type = 'object'},\n"
		"  run = function(ctx) ctx:set('greeting', 'hi ' .. ctx.client.name) end}\n");
	rmdir(dir);
	const char *ct = "{\"name\":\"Acme Dental\",\"email\":\"owner@acme.example\"}";
	struct json *client = json_parse(ct, strlen(ct), JSON_DEFAULT_MAX_DEPTH, NULL);

	measure(&app, trivial, client, n / 10); /* warm-up */
	double c_us = measure(&app, noop, client, n);
	double lua_us = measure(&app, trivial, client, n);
	double reads_us = measure(&app, reads, client, n);
	printf("step invocation through runner_run_once, best of 5 rounds of %ld:\n", n);
	printf("  %-44s %7.2f us\n", "C step (NOOP plugin)", c_us);
	printf("  %-44s %7.2f us   (Lua - C: %.2f us)\n",
	       "Lua step, trivial (run = function(ctx) end)", lua_us, lua_us - c_us);
	printf("  %-44s %7.2f us\n", "Lua step reading ctx.client + ctx:set", reads_us);
	printf("target: <= 20 us per trivial Lua invocation: %s\n",
	       lua_us <= 20.0 ? "met" : "NOT met");
	json_free(client);
	step_impl_unref(trivial);
	step_impl_unref(reads);
	step_registry_free(r);
	return 0;
}
