/* test_db_prepared.c — the asynchronous connection's prepared statements
 * (core/store/db.c) against a real PostgreSQL: a parameterised statement is
 * prepared once and then run by name; past DB_PREPARED_MAX distinct texts the
 * least recently used one is DEALLOCATEd for the new one, so a statement in
 * steady use stays prepared however many others the daemon has seen, and the
 * server never holds more than the limit for one connection. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "testlib.h"
#include "util.h"

#define PREPARED_MAX 64 /* DB_PREPARED_MAX in db.c */

static struct event_base *base;
static struct db_async *db;
static char *dsn;

struct answer {
	int done;
	char *value; /* first column of the first row, or the error */
	int ok;
};

static void answered(void *arg, PGresult *res, const struct err *e)
{
	struct answer *a = arg;
	a->done = 1;
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	a->ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
	if (a->ok && st == PGRES_TUPLES_OK && PQntuples(res) > 0)
		a->value = xstrdup(PQgetvalue(res, 0, 0));
	else if (!a->ok)
		a->value = xstrdup(db_why(res, e));
}

/* Run sql on the connection and wait for its answer (the first value). */
static char *run(const char *sql, int nparams, const char *const *params)
{
	struct answer a = {0};
	db_async_query(db, sql, nparams, params, answered, &a);
	long long deadline = now_monotonic_ms() + 30000;
	while (!a.done && now_monotonic_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_msg(a.done, "no answer to %s", sql);
	ck_assert_msg(a.ok, "%s: %s", sql, a.value ? a.value : "?");
	return a.value ? a.value : xstrdup("");
}

/* SELECT $1::int + n: a distinct text for each n. */
static void run_distinct(int n, int arg, int want)
{
	char *sql = xasprintf("SELECT $1::int + %d", n);
	char a[16];
	snprintf(a, sizeof(a), "%d", arg);
	const char *params[] = {a};
	char *v = run(sql, 1, params);
	ck_assert_int_eq(atoi(v), want);
	free(v);
	free(sql);
}

/* How many statements this connection has prepared on the server, and how
 * many of them have this text (no parameters: the simple protocol, nothing
 * prepared by asking). */
static int server_prepared(const char *text)
{
	char *sql;
	if (text) {
		char *lit = xasprintf("'%s'", text); /* test texts have no quotes */
		sql = xasprintf("SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
				lit);
		free(lit);
	} else {
		sql = xstrdup("SELECT count(*) FROM pg_prepared_statements");
	}
	char *v = run(sql, 0, NULL);
	int n = atoi(v);
	free(v);
	free(sql);
	return n;
}

static void setup(void)
{
	dsn = tl_create_db("db_prepared");
	base = event_base_new();
	db = db_async_new(base, dsn, 1000);
	long long deadline = now_monotonic_ms() + 30000;
	while (!db_async_is_up(db) && now_monotonic_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
	ck_assert_msg(db_async_is_up(db), "not connected: %s", db_async_reason(db));
}

static void teardown(void)
{
	db = db_async_free(db);
	event_base_free(base);
	tl_drop_db(dsn);
	free(dsn);
}

START_TEST(prepared_once_then_by_name)
{
	for (int i = 0; i < 5; i++)
		run_distinct(1, i, i + 1);
	ck_assert_int_eq(server_prepared("SELECT $1::int + 1"), 1);
	ck_assert_int_eq(server_prepared(NULL), 1);
}
END_TEST

START_TEST(least_recently_used_gives_way)
{
	const char *hot = "SELECT $1::int * 2";
	const char *two[] = {"21"};
	/* three times the limit of distinct texts, the hot one between each */
	for (int n = 0; n < 3 * PREPARED_MAX; n++) {
		run_distinct(n, n, 2 * n);
		char *v = run(hot, 1, two);
		ck_assert_str_eq(v, "42");
		free(v);
		ck_assert_int_le(server_prepared(NULL), PREPARED_MAX);
	}
	ck_assert_int_eq(server_prepared(NULL), PREPARED_MAX);
	/* the statement in steady use was never evicted (one Parse of it) */
	ck_assert_int_eq(server_prepared(hot), 1);
	/* the newest are there, the oldest gave way */
	char *newest = xasprintf("SELECT $1::int + %d", 3 * PREPARED_MAX - 1);
	ck_assert_int_eq(server_prepared(newest), 1);
	ck_assert_int_eq(server_prepared("SELECT $1::int + 0"), 0);
	/* an evicted text runs again, and is prepared again */
	run_distinct(0, 7, 7);
	ck_assert_int_eq(server_prepared("SELECT $1::int + 0"), 1);
	ck_assert_int_eq(server_prepared(NULL), PREPARED_MAX);
	free(newest);
}
END_TEST

START_TEST(a_failed_parse_is_the_answer_and_takes_no_slot)
{
	const char *params[] = {"1"};
	struct answer a = {0};
	db_async_query(db, "SELECT $1::int + nosuchcolumn", 1, params, answered, &a);
	while (!a.done)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert(!a.ok);
	ck_assert_msg(strstr(a.value, "nosuchcolumn"), "%s", a.value);
	free(a.value);
	ck_assert_int_eq(server_prepared(NULL), 0);
	run_distinct(3, 1, 4);
	ck_assert_int_eq(server_prepared(NULL), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db_prepared");
	TCase *tc = tcase_create("prepared");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, prepared_once_then_by_name);
	tcase_add_test(tc, least_recently_used_gives_way);
	tcase_add_test(tc, a_failed_parse_is_the_answer_and_takes_no_slot);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
