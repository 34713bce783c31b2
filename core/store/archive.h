/* archive.h — moving finished jobs and their step logs older than
 * archive_after into the archive tables (DESIGN "Operations"), in batches,
 * each batch one statement: a crash never leaves a job half moved. Several
 * processes may archive at once (the batch skips rows another one holds). */
#ifndef GHL_ARCHIVE_H
#define GHL_ARCHIVE_H

#include <libpq-fe.h>

#include "util.h"

struct app;
struct archiver;

/* $1 age in ms, $2 batch size → one row: (jobs moved, log rows moved). */
extern const char archive_batch_sql[];
/* $1 age in ms → one row: (jobs due, log rows due). */
extern const char archive_count_sql[];

/* Blocking (the CLI): move everything due, batch by batch; with dry_run only
 * count. 0 on success; *jobs and *logs receive the totals. */
int archive_run_blocking(PGconn *conn, long long older_than_ms, int batch, int dry_run,
			 long long *jobs, long long *logs, struct err *e);

/* The daemon's periodic maintenance, every archive_interval (0: off): archive
 * what is due (unless archive_after is 0). */
struct archiver *archiver_start(struct app *app);
/* After the database pool is freed (a batch in flight calls back into it). */
struct archiver *archiver_free(struct archiver *a);

#endif
