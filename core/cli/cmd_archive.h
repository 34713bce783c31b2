/* cmd_archive.h — `ghl-agent archive`: move old finished jobs to the archive. */
#ifndef GHL_CMD_ARCHIVE_H
#define GHL_CMD_ARCHIVE_H

struct config;

/* clang-format off */
#define CMD_ARCHIVE_HELP                                                                     \
	"Usage: ghl-agent [--config PATH] archive [--older-than DURATION] [--dry-run]\n\n"  \
	"Moves COMPLETED, FAILED and CANCELLED jobs that finished longer ago than\n"        \
	"DURATION (default: archive_after, 90d) into provisioning_jobs_archive, and\n"      \
	"their step logs into provisioning_logs_archive, 1,000 jobs per transaction.\n"     \
	"The daemon does the same every archive_interval. --dry-run only counts.\n"          \
	"Exit status: 0 ok, 1 database error, 2 bad arguments.\n"
/* clang-format on */

int cmd_archive(struct config *cfg, int argc, char **argv);

#endif
