/* cmd_reconcile.h — `ghl-agent reconcile`: one reconciliation sweep now
 * (core/engine/reconcile.h), then the open drift. */
#ifndef GHL_CMD_RECONCILE_H
#define GHL_CMD_RECONCILE_H

struct config;

/* clang-format off */
#define CMD_RECONCILE_HELP                                                                   \
	"Usage: ghl-agent [--config PATH] reconcile [--agency ID] [--json]\n\n"               \
	"Checks the COMPLETED jobs that finished within reconcile_window (30d) against\n"    \
	"GHL, as the daemon does every reconcile_interval: the location still there,\n"      \
	"the snapshot push not failed, the user present. Drift found is recorded on\n"       \
	"the job (GET /api/v1/reports/drift); drift found fixed is resolved. Then\n"         \
	"prints the open drift (--json: one JSON object).\n\n"                                \
	"  --agency ID   only this agency's jobs (agencies.id)\n"                            \
	"  --json        {\"jobs\",\"unchecked\",\"opened\",\"resolved\",\"open\":[...]}\n\n" \
	"Exit status: 0 no open drift, 3 open drift, 1 database or GHL set-up error,\n"     \
	"2 bad arguments.\n"
/* clang-format on */

int cmd_reconcile(struct config *cfg, int argc, char **argv);

#endif
