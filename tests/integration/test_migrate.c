/* test_migrate.c — `ghl-agent migrate` against a real PostgreSQL. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

static char *path_in_source(const char *rel)
{
	return xasprintf("%s/%s", tl_env("GHL_SOURCE_DIR"), rel);
}

/* Run `ghl-agent migrate [status]` with DATABASE_URL=dsn (and an optional
 * migrations_dir); returns the exit code and the output. */
static int migrate(const char *dsn, const char *dir, const char *arg, char **out)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env_dir = xasprintf("GHL_AGENT_MIGRATIONS_DIR=%s", dir ? dir : "");
	char *env[] = {env_dsn, env_dir, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", (char *)arg, NULL};
	int rc = tl_run(argv, env, out);
	free(env_dsn);
	free(env_dir);
	return rc;
}

static char *catalog(PGconn *c)
{
	char *path = path_in_source("tests/fixtures/catalog.sql");
	char *sql = tl_read_file(path);
	free(path);
	PGresult *r = tl_sql(c, sql);
	free(sql);
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < PQntuples(r); i++) {
		buf_puts(&b, PQgetvalue(r, i, 0));
		buf_putc(&b, '\n');
	}
	PQclear(r);
	return buf_take(&b);
}

static int count_migration_files(void)
{
	char *dir = path_in_source("migrations");
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".sql"))
			n++;
	}
	closedir(d);
	free(dir);
	return n;
}

START_TEST(seed_schema_to_the_letter)
{
	char *dsn = tl_create_db("mig_seed");
	char *out;
	int rc = migrate(dsn, NULL, NULL, &out);
	ck_assert_msg(rc == 0, "migrate failed (%d): %s", rc, out);
	ck_assert_msg(strstr(out, "20261126_000001_initial_schema"), "%s", out);
	free(out);

	PGconn *c = tl_connect(dsn);
	char *have = catalog(c);
	char *fixture_path = path_in_source("tests/fixtures/seed_catalog.txt");
	char *want = tl_read_file(fixture_path);
	free(fixture_path);
	int lines = 0;
	/* Walk the fixture line by line: every seed object must exist as written. */
	char *p = want;
	while (*p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (*p && *p != '#') {
			char *needle = xasprintf("%s\n", p);
			/* an enum keeps the seed's labels in order; later migrations may
			 * only append (CANCELLED, 20261207_000901) */
			size_t len = strlen(p);
			char *appended = !strncmp(p, "enum ", 5) && len && p[len - 1] == ')'
						 ? xasprintf("%.*s, ", (int)(len - 1), p)
						 : NULL;
			ck_assert_msg(strstr(have, needle) || (appended && strstr(have, appended)),
				      "seed object missing or different: %s", p);
			free(appended);
			free(needle);
			lines++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	ck_assert_int_ge(lines, 80);
	/* the second migration: soft delete */
	ck_assert_msg(strstr(have, "column agencies.deleted_at timestamp without time zone NULL\n"),
		      "%s", have);
	ck_assert_msg(strstr(have, "index CREATE INDEX idx_agencies_deleted_at ON public.agencies "
				   "USING btree (deleted_at) WHERE (deleted_at IS NULL)\n"),
		      "%s", have);
	/* CANCELLED comes after the seed's job states */
	ck_assert_msg(strstr(have, "enum provisioning_job_status (PENDING, IN_PROGRESS, COMPLETED,"
				   " FAILED, RETRYING, CANCELLED)\n"),
		      "%s", have);

	/* a second run changes nothing */
	rc = migrate(dsn, NULL, NULL, &out);
	ck_assert_msg(rc == 0 && strstr(out, "database is up to date"), "%s", out);
	free(out);
	char *again = catalog(c);
	ck_assert_str_eq(have, again);
	char *n = tl_sql_value(c, "SELECT count(*) FROM schema_migrations");
	ck_assert_int_eq(atoi(n), count_migration_files());
	free(n);
	char *sums = tl_sql_value(
		c, "SELECT count(*) FROM schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$'");
	ck_assert_int_eq(atoi(sums), count_migration_files());
	free(sums);
	free(again);
	free(have);
	free(want);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

static char *copy_migrations(void)
{
	char tmpl[] = "/tmp/ghl-mig-XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl));
	char *src = path_in_source("migrations");
	char *cmd = xasprintf("cp %s/*.sql %s/", src, dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(src);
	return dir;
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

START_TEST(edited_migration_refused)
{
	char *dsn = tl_create_db("mig_edit");
	char *dir = copy_migrations();
	char *out;
	ck_assert_int_eq(migrate(dsn, dir, NULL, &out), 0);
	free(out);
	char *file = xasprintf("%s/20261126_000001_initial_schema.sql", dir);
	FILE *f = fopen(file, "a");
	fputs("\n-- an innocent-looking edit\n", f);
	fclose(f);
	int rc = migrate(dsn, dir, NULL, &out);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, file) && strstr(out, "was edited after it was applied"), "%s",
		      out);
	free(out);
	rc = migrate(dsn, dir, "status", &out);
	ck_assert_msg(rc == 0 && strstr(out, "EDITED"), "%s", out);
	free(out);
	free(file);
	rm_rf(dir);
	free(dir);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(failing_migration_rolls_back)
{
	char *dsn = tl_create_db("mig_fail");
	char *dir = copy_migrations();
	char *file = xasprintf("%s/20991231_235959_broken.sql", dir);
	FILE *f = fopen(file, "w");
	fputs("CREATE TABLE half_done (x int);\n\nSELEC 1;\n", f);
	fclose(f);
	char *out;
	int rc = migrate(dsn, dir, NULL, &out);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, file) && strstr(out, "syntax error") && strstr(out, "line 3"),
		      "%s", out);
	free(out);
	PGconn *c = tl_connect(dsn);
	char *t = tl_sql_value(c, "SELECT to_regclass('half_done') IS NULL");
	ck_assert_str_eq(t, "t");
	free(t);
	t = tl_sql_value(c, "SELECT count(*) FROM schema_migrations WHERE version LIKE '2099%'");
	ck_assert_str_eq(t, "0");
	free(t);
	/* the earlier ones were applied and kept */
	t = tl_sql_value(c, "SELECT to_regclass('agencies') IS NOT NULL");
	ck_assert_str_eq(t, "t");
	free(t);
	PQfinish(c);

	/* a badly named file is refused by name */
	unlink(file);
	free(file);
	file = xasprintf("%s/add_things.sql", dir);
	f = fopen(file, "w");
	fputs("SELECT 1;\n", f);
	fclose(f);
	rc = migrate(dsn, dir, NULL, &out);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "add_things.sql") && strstr(out, "YYYYMMDD_HHMMSS"), "%s", out);
	free(out);
	free(file);
	rm_rf(dir);
	free(dir);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(concurrent_runs_both_succeed)
{
	for (int round = 0; round < 3; round++) {
		char *dsn = tl_create_db("mig_conc");
		char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
		char *env[] = {env_dsn, (char *)"GHL_AGENT_MIGRATIONS_DIR=", NULL};
		char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
		char log1[] = "/tmp/ghl-mig-a-XXXXXX", log2[] = "/tmp/ghl-mig-b-XXXXXX";
		close(mkstemp(log1));
		close(mkstemp(log2));
		pid_t a = tl_spawn(argv, env, log1);
		pid_t b = tl_spawn(argv, env, log2);
		int sa, sb;
		ck_assert_int_eq(tl_wait_exit(a, 60000, &sa), 0);
		ck_assert_int_eq(tl_wait_exit(b, 60000, &sb), 0);
		char *o1 = tl_read_file(log1), *o2 = tl_read_file(log2);
		ck_assert_msg(WIFEXITED(sa) && WEXITSTATUS(sa) == 0, "first run failed: %s", o1);
		ck_assert_msg(WIFEXITED(sb) && WEXITSTATUS(sb) == 0, "second run failed: %s", o2);
		/* exactly one of them applied the files */
		int applied1 = strstr(o1, "applied\n") && !strstr(o1, "up to date");
		int applied2 = strstr(o2, "applied\n") && !strstr(o2, "up to date");
		ck_assert_msg(applied1 + applied2 == 1, "run 1: %s\nrun 2: %s", o1, o2);
		free(o1);
		free(o2);
		unlink(log1);
		unlink(log2);
		PGconn *c = tl_connect(dsn);
		char *n = tl_sql_value(c, "SELECT count(*) FROM schema_migrations");
		ck_assert_int_eq(atoi(n), count_migration_files());
		free(n);
		PQfinish(c);
		tl_drop_db(dsn);
		free(env_dsn);
		free(dsn);
	}
}
END_TEST

static int psql_file(const char *dsn, const char *rel, char **out)
{
	char *file = path_in_source(rel);
	char *argv[] = {(char *)"/usr/bin/psql",
			(char *)"-X",
			(char *)"-q",
			(char *)"-v",
			(char *)"ON_ERROR_STOP=1",
			(char *)"-d",
			(char *)dsn,
			(char *)"-f",
			file,
			NULL};
	int rc = tl_run(argv, NULL, out);
	free(file);
	return rc;
}

START_TEST(seeds_apply_twice)
{
	char *dsn = tl_create_db("mig_seeds");
	char *out;
	ck_assert_int_eq(migrate(dsn, NULL, NULL, &out), 0);
	free(out);
	for (int round = 0; round < 2; round++) {
		int rc = psql_file(dsn, "seeds/001_demo_agencies.sql", &out);
		ck_assert_msg(rc == 0, "round %d: %s", round, out);
		free(out);
		rc = psql_file(dsn, "seeds/002_demo_snapshots.sql", &out);
		ck_assert_msg(rc == 0, "round %d: %s", round, out);
		free(out);
	}
	PGconn *c = tl_connect(dsn);
	char *v = tl_sql_value(c, "SELECT name || '/' || ghl_agency_id FROM agencies "
				  "WHERE id = 'f47ac10b-58cc-4372-a567-0e02b2c3d479'");
	ck_assert_str_eq(v, "Test Agency/test-ghl-agency-001");
	free(v);
	v = tl_sql_value(c, "SELECT name || '/' || niche || '/' || ghl_snapshot_id FROM snapshots "
			    "WHERE id = '550e8400-e29b-41d4-a716-446655440000'");
	ck_assert_str_eq(v, "Real Estate Startup/Real Estate/snapshot-001");
	free(v);
	v = tl_sql_value(c, "SELECT count(DISTINCT niche) FROM snapshots");
	ck_assert_int_ge(atoi(v), 4);
	free(v);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(status_lists_applied_and_pending)
{
	char *dsn = tl_create_db("mig_status");
	char *out;
	int rc = migrate(dsn, NULL, "status", &out);
	ck_assert_msg(rc == 0 && strstr(out, "pending") &&
			      strstr(out, "20261126_000002_add_audit_columns") &&
			      !strstr(out, "applied "),
		      "%s", out);
	free(out);
	ck_assert_int_eq(migrate(dsn, NULL, NULL, &out), 0);
	free(out);
	rc = migrate(dsn, NULL, "status", &out);
	ck_assert_msg(rc == 0 && strstr(out, "applied ") && !strstr(out, "pending"), "%s", out);
	free(out);
	rc = migrate(dsn, NULL, "sideways", &out);
	ck_assert_int_eq(rc, 2);
	free(out);
	/* unreachable database: clear message, exit 1 */
	rc = migrate("host=127.0.0.1 port=1 user=nobody password=pw-do-not-print connect_timeout=2",
		     NULL, NULL, &out);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "cannot connect to the database") &&
			      !strstr(out, "pw-do-not-print"),
		      "%s", out);
	free(out);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("migrate");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, seed_schema_to_the_letter);
	tcase_add_test(tc, edited_migration_refused);
	tcase_add_test(tc, failing_migration_rolls_back);
	tcase_add_test(tc, concurrent_runs_both_succeed);
	tcase_add_test(tc, seeds_apply_twice);
	tcase_add_test(tc, status_lists_applied_and_pending);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
