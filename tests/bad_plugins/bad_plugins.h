/* Shared bits of the deliberately broken plugins the loader must refuse. */
#include "ghl_step.h"

static int bp_run(ghl_step_ctx *ctx)
{
	(void)ctx;
	return GHL_STEP_DONE;
}

#define BP_EXPORT __attribute__((visibility("default")))
