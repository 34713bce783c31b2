/* migrate.h — schema migrations: migrations/YYYYMMDD_HHMMSS_description.sql
 * applied in name order, each in its own transaction, recorded with a SHA-256
 * checksum in schema_migrations, under an advisory lock. */
#ifndef GHL_MIGRATE_H
#define GHL_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>

#include "util.h"

struct migration {
	char *version; /* file name without ".sql" */
	char *path;
	char *checksum; /* lowercase hex SHA-256 of the file */
	char *sql;
};

struct migration_set {
	struct migration *items;
	size_t n;
};

/* Read every *.sql in dir, sorted by name. A .sql file whose name does not
 * follow YYYYMMDD_HHMMSS_description.sql is an error naming it. */
int migrate_load_dir(const char *dir, struct migration_set *out, struct err *e);
void migrate_set_clear(struct migration_set *s);
/* Load from cfg->migrations_dir, or the shipped migrations/ when it is empty. */
struct config;
int migrate_load(const struct config *cfg, struct migration_set *out, struct err *e);

/* Apply pending migrations; progress lines go to `progress` (may be NULL).
 * Refuses (before applying anything) when an applied file was edited.
 * *applied receives how many were applied. */
int migrate_run(PGconn *conn, const struct migration_set *s, FILE *progress, int *applied,
		struct err *e);

/* Print applied and pending migrations; *pending receives the count. */
int migrate_status(PGconn *conn, const struct migration_set *s, FILE *out, int *pending,
		   struct err *e);

/* The query that lists applied versions (for /readyz) and a helper that
 * counts files not in its result (column 0 = version). */
extern const char migrate_applied_sql[];
size_t migrate_count_pending(const struct migration_set *s, PGresult *applied);

#endif
