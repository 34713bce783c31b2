/* cmd_archive.c — see cmd_archive.h. */
#include "cmd_archive.h"

#include <stdio.h>
#include <string.h>

#include "archive.h"
#include "config.h"
#include "db.h"

int cmd_archive(struct config *cfg, int argc, char **argv)
{
	long long age = cfg->archive_after_ms;
	int dry = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run")) {
			dry = 1;
		} else if (!strcmp(argv[i], "--older-than") && i + 1 < argc) {
			if (str_to_duration_ms(argv[++i], &age) || age <= 0) {
				fprintf(stderr,
					"ghl-agent archive: --older-than: invalid duration \"%s\" "
					"(examples: 90d, 2160h)\n",
					argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "ghl-agent archive: %s \"%s\"\n",
				strcmp(argv[i], "--older-than") ? "unknown argument"
								: "a duration must follow",
				argv[i]);
			return 2;
		}
	}
	if (age <= 0) {
		fprintf(stderr, "ghl-agent archive: archive_after is 0 (off); pass --older-than\n");
		return 2;
	}
	struct err e;
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent archive: %s\n", e.msg);
		return 1;
	}
	long long jobs, logs;
	int rc = archive_run_blocking(conn, age, 0, dry, &jobs, &logs, &e);
	PQfinish(conn);
	if (rc) {
		fprintf(stderr, "ghl-agent archive: %s\n", e.msg);
		return 1;
	}
	printf(dry ? "%lld job(s) and %lld log row(s) are due for the archive\n"
		   : "archived %lld job(s) and %lld log row(s)\n",
	       jobs, logs);
	return 0;
}
