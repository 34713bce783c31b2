/* cmd_step.h — `ghl-agent step run`: run one step (Lua script or C plugin) by hand. */
#ifndef GHL_CMD_STEP_H
#define GHL_CMD_STEP_H

struct config;

/* clang-format off */
#define CMD_STEP_HELP                                                                        \
	"Usage: ghl-agent [--config PATH] step run FILE --client-json F [--config JSON]\n" \
	"                 [--outputs JSON] [--agency ID] [--step NAME]\n\n"                   \
	"Loads FILE — a Lua step script (with the sandbox and limits the daemon uses)\n"    \
	"or a C step plugin (.so; --step NAME picks one of several steps) — and runs\n"     \
	"the step once against the configured GHL (ghl_api_base; ghl-sim in the\n"         \
	"demo) with the client data in F (- reads stdin), the step config JSON\n"            \
	"(--config after `run` is the step's config; also --config-json) and the\n"          \
	"outputs of earlier steps JSON (e.g. '{\"location_id\":\"...\"}'). Requests carry\n"  \
	"the tokens of agency ID (agencies.id; default: the oldest connected agency),\n"     \
	"so the database and token keys must be configured as for `serve`.\n"               \
	"The config is checked against the step's config_schema exactly as in a\n"        \
	"pipeline; every problem is named (--config.name: …) and nothing runs.\n"            \
	"With the demo: `. .run/demo.env` first (database, token key, ghl-sim URL).\n"      \
	"Prints the status, the outputs and the step's log; nothing is journaled.\n"        \
	"Exit status: 0 completed, 1 failed or refused, 2 bad arguments (also a\n"          \
	"config that does not fit the schema).\n"
/* clang-format on */

int cmd_step(struct config *cfg, int argc, char **argv);

#endif
