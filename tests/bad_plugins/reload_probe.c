/* RELOAD_PROBE, built as three versions of one plugin for the SIGHUP reload
 * test (installed as reload_probe.so, so its entry is found by that name):
 * each run waits client.sleep_ms, then outputs the version it ran with.
 * PROBE_VERSION names the version; PROBE_REFUSE makes init() refuse. */
#include <stdint.h>
#include <stdio.h>

#include "ghl_step.h"

GHL_STEP_HOST;

static int probe_run(ghl_step_ctx *ctx)
{
	if (host->phase(ctx) == 0) {
		int64_t ms = 0;
		host->get_int(ctx, GHL_SRC_CLIENT, GHL_PATH("sleep_ms"), &ms);
		host->set_phase(ctx, 1);
		host->sleep_ms(ctx, (int)ms);
		return GHL_STEP_WAIT;
	}
	host->set_output(ctx, "version", host->quote(ctx, PROBE_VERSION));
	return GHL_STEP_DONE;
}

#ifdef PROBE_REFUSE
static int probe_init(char *err, size_t errlen)
{
	snprintf(err, errlen, "refused on purpose");
	return -1;
}
#define PROBE_INIT probe_init
#else
#define PROBE_INIT NULL
#endif

static const struct ghl_step_def steps[] = {
	{"RELOAD_PROBE", PROBE_VERSION, NULL, "outputs its version", probe_run, NULL, NULL}};

GHL_STEP_PLUGIN(reload_probe, PROBE_VERSION, PROBE_INIT, steps)
