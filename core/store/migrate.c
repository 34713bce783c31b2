/* migrate.c — apply migrations/ in order; see migrate.h. */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "paths.h"

/* Any constant works; it only has to be the same for every ghl-agent. */
#define MIGRATE_LOCK_KEY "7483920611"

const char migrate_applied_sql[] =
	"SELECT version, checksum FROM schema_migrations ORDER BY version";

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
				       " version text PRIMARY KEY,"
				       " checksum text NOT NULL,"
				       " applied_at timestamptz NOT NULL DEFAULT now())";

static int valid_name(const char *n)
{
	/* YYYYMMDD_HHMMSS_x.sql */
	size_t len = strlen(n);
	if (len < 8 + 1 + 6 + 1 + 1 + 4 || strcmp(n + len - 4, ".sql"))
		return 0;
	for (int i = 0; i < 15; i++) {
		if (i == 8) {
			if (n[i] != '_')
				return 0;
		} else if (!isdigit((unsigned char)n[i])) {
			return 0;
		}
	}
	return n[15] == '_' && n[16] != '.';
}

static int cmp_migration(const void *a, const void *b)
{
	return strcmp(((const struct migration *)a)->version,
		      ((const struct migration *)b)->version);
}

int migrate_load_dir(const char *dir, struct migration_set *out, struct err *e)
{
	out->items = NULL;
	out->n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return err_set(e, "cannot open migrations folder %s: %m", dir);
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		if (len < 4 || strcmp(n + len - 4, ".sql"))
			continue;
		if (!valid_name(n)) {
			rc = err_set(e,
				     "%s/%s: migration file names must look like "
				     "YYYYMMDD_HHMMSS_description.sql",
				     dir, n);
			break;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 8;
			out->items = xrealloc(out->items, cap * sizeof(*out->items));
		}
		struct migration *m = &out->items[out->n];
		memset(m, 0, sizeof(*m));
		m->path = xasprintf("%s/%s", dir, n);
		m->version = xstrndup(n, len - 4);
		size_t sz;
		out->n++;
		if (file_read_all(m->path, &m->sql, &sz, e)) {
			rc = -1;
			break;
		}
		m->checksum = xmalloc(CRYPTO_SHA256_HEX_LEN);
		if (crypto_sha256_hex(m->sql, sz, m->checksum)) {
			rc = err_set(e, "%s: cannot compute its checksum", m->path);
			break;
		}
	}
	closedir(d);
	if (rc) {
		migrate_set_clear(out);
		return rc;
	}
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), cmp_migration);
	return 0;
}

int migrate_load(const struct config *cfg, struct migration_set *out, struct err *e)
{
	char *dir = cfg->migrations_dir[0] ? xstrdup(cfg->migrations_dir)
					   : paths_data_dir("migrations");
	int rc = migrate_load_dir(dir, out, e);
	free(dir);
	return rc;
}

void migrate_set_clear(struct migration_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->items[i].version);
		free(s->items[i].path);
		free(s->items[i].checksum);
		free(s->items[i].sql);
	}
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

static const struct migration *find(const struct migration_set *s, const char *version)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->items[i].version, version))
			return &s->items[i];
	return NULL;
}

static int is_applied(PGresult *applied, const char *version)
{
	for (int r = 0; r < PQntuples(applied); r++)
		if (!strcmp(PQgetvalue(applied, r, 0), version))
			return 1;
	return 0;
}

size_t migrate_count_pending(const struct migration_set *s, PGresult *applied)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!is_applied(applied, s->items[i].version))
			n++;
	return n;
}

/* Refuse when an applied migration's file changed. */
static int check_edited(const struct migration_set *s, PGresult *applied, struct err *e)
{
	for (int r = 0; r < PQntuples(applied); r++) {
		const struct migration *m = find(s, PQgetvalue(applied, r, 0));
		if (m && strcmp(m->checksum, PQgetvalue(applied, r, 1)))
			return err_set(e,
				       "%s was edited after it was applied (checksum %.12s…, "
				       "recorded %.12s…); restore the file and put the change "
				       "in a new migration",
				       m->path, m->checksum, PQgetvalue(applied, r, 1));
	}
	return 0;
}

static int apply_one(PGconn *conn, const struct migration *m, struct err *e)
{
	if (db_exec(conn, "BEGIN", e))
		return -1;
	if (db_exec(conn, m->sql, e)) {
		struct err ignore;
		db_exec(conn, "ROLLBACK", &ignore);
		return err_prefix(e, "%s", m->path);
	}
	const char *params[2] = {m->version, m->checksum};
	PGresult *r = db_query(conn,
			       "INSERT INTO schema_migrations (version, checksum) "
			       "VALUES ($1, $2)",
			       2, params, e);
	if (!r) {
		struct err ignore;
		db_exec(conn, "ROLLBACK", &ignore);
		return err_prefix(e, "%s: recording the migration", m->path);
	}
	PQclear(r);
	if (db_exec(conn, "COMMIT", e))
		return err_prefix(e, "%s: commit", m->path);
	return 0;
}

int migrate_run(PGconn *conn, const struct migration_set *s, FILE *progress, int *applied,
		struct err *e)
{
	*applied = 0;
	/* Session-level lock: a second migrate waits here until the first is done. */
	if (db_exec(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", e))
		return err_prefix(e, "taking the migration lock");
	int rc = -1;
	PGresult *done = NULL;
	if (db_exec(conn, "SET client_min_messages = warning", e) ||
	    db_exec(conn, create_table_sql, e))
		goto out_unlock;
	done = db_query(conn, migrate_applied_sql, 0, NULL, e);
	if (!done || check_edited(s, done, e))
		goto out_unlock;
	for (size_t i = 0; i < s->n; i++) {
		const struct migration *m = &s->items[i];
		if (is_applied(done, m->version))
			continue;
		if (progress)
			fprintf(progress, "applying %s\n", m->version);
		if (apply_one(conn, m, e))
			goto out_unlock;
		(*applied)++;
	}
	rc = 0;
out_unlock:
	PQclear(done);
	struct err ignore;
	db_exec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", &ignore);
	return rc;
}

int migrate_status(PGconn *conn, const struct migration_set *s, FILE *out, int *pending,
		   struct err *e)
{
	*pending = 0;
	PGresult *done = NULL;
	PGresult *exists = db_query(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0,
				    NULL, e);
	if (!exists)
		return -1;
	int have = !strcmp(PQgetvalue(exists, 0, 0), "t");
	PQclear(exists);
	if (have) {
		done = db_query(conn,
				"SELECT version, checksum, to_char(applied_at, "
				"'YYYY-MM-DD HH24:MI:SS') FROM schema_migrations ORDER BY version",
				0, NULL, e);
		if (!done)
			return -1;
	}
	int rows = done ? PQntuples(done) : 0;
	for (int r = 0; r < rows; r++) {
		const char *v = PQgetvalue(done, r, 0);
		const struct migration *m = find(s, v);
		const char *note = !m ? "  (file missing)"
				   : strcmp(m->checksum, PQgetvalue(done, r, 1))
					   ? "  (EDITED since applied)"
					   : "";
		fprintf(out, "applied  %s  %s%s\n", PQgetvalue(done, r, 2), v, note);
	}
	for (size_t i = 0; i < s->n; i++) {
		if (done && is_applied(done, s->items[i].version))
			continue;
		fprintf(out, "pending  %-19s  %s\n", "", s->items[i].version);
		(*pending)++;
	}
	if (!rows && !*pending)
		fprintf(out, "no migrations found\n");
	PQclear(done);
	return 0;
}
