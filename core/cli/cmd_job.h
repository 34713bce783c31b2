/* cmd_job.h — `ghl-agent job submit|show|cancel` and `ghl-agent plugins`. */
#ifndef GHL_CMD_JOB_H
#define GHL_CMD_JOB_H

struct config;

/* clang-format off */
#define CMD_JOB_HELP                                                                         \
	"Usage: ghl-agent [--config PATH] job submit --agency ID --client-json FILE\n"        \
	"                 [--snapshot ID] [--idempotency-key KEY]\n"                          \
	"       ghl-agent [--config PATH] job show ID\n"                                      \
	"       ghl-agent [--config PATH] job cancel ID\n\n"                                  \
	"submit  validates the client data (FILE holds client_data_json; - reads stdin)\n"   \
	"        and queues a provisioning job for the agency; prints the job id.\n"         \
	"        With --idempotency-key, a repeat with the same data prints the same\n"      \
	"        job id; a repeat with other data is refused (exit 1).\n"                    \
	"show    prints the job and its step journal.\n"                                     \
	"cancel  a pending or retrying job is CANCELLED at once; a running one\n"           \
	"        finishes its current step, then becomes CANCELLED.\n"                       \
	"Exit status: 0 ok; 1 refused, in the API's words (\"job not found\", \"the job is\n" \
	"already COMPLETED\", invalid client data), or a database error; 2 bad\n"          \
	"arguments (an ID that is not a UUID, a missing option).\n"
/* clang-format on */

/* clang-format off */
#define CMD_PLUGINS_HELP                                                                     \
	"Usage: ghl-agent [--config PATH] plugins\n\n"                                        \
	"Loads the step plugins from plugin_dir (and Lua steps from step_dir) as the\n"       \
	"daemon would and lists every registered step (name, version, kind, source)\n"        \
	"and every refused plugin or script with the reason.\n"                              \
	"Exit status: 0 (also when some were refused).\n"
/* clang-format on */

int cmd_job(struct config *cfg, int argc, char **argv);
int cmd_plugins(struct config *cfg, int argc, char **argv);

#endif
