/* bench_cost.h — what a measured run cost (issue 15), for bench_jobs:
 *   the agent's CPU from getrusage(RUSAGE_CHILDREN) around its life (it is
 *   the only child reaped between cost_begin and cost_end), and the WAL the
 *   cluster wrote meanwhile (scripts/bench's PostgreSQL is private to it). */
#ifndef GHL_BENCH_COST_H
#define GHL_BENCH_COST_H

#include <sys/resource.h>
#include <unistd.h>

#include "ghl_harness.h"

struct cost {
	double cpu_us; /* children's user + system CPU */
	long long wal; /* WAL position, bytes */
	char lsn[32];  /* the same, as an LSN */
};

static double children_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

static long long wal_bytes(PGconn *c)
{
	char *v = tl_sql_value(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
	long long n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

/* A running process's user + system CPU so far, µs: the counters
 * getrusage(RUSAGE_SELF) reads, from /proc (the bench is not the agent). */
static double proc_cpu_us(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *t = tl_read_file(path);
	const char *p = t ? strrchr(t, ')') : NULL; /* the name may hold spaces */
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		ut = st = 0;
	free(t);
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* Before the agent starts. */
static void cost_begin(struct cost *c, PGconn *db)
{
	c->cpu_us = children_cpu_us();
	c->wal = wal_bytes(db);
	char *v = tl_sql_value(db, "SELECT pg_current_wal_lsn()::text");
	snprintf(c->lsn, sizeof(c->lsn), "%s", v);
	free(v);
}

/* BENCH_WAL_STATS=1: the WAL written since cost_begin by record type, per
 * job (pg_walinspect) — where a job's database work goes. */
static void cost_wal_stats(const struct cost *c, PGconn *db, long long jobs)
{
	if (!getenv("BENCH_WAL_STATS") || !atoi(getenv("BENCH_WAL_STATS")))
		return;
	PQclear(tl_sql(db, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"));
	char *sql = xasprintf(
		"SELECT string_agg(format('  %%-30s %%8s records/job %%6s bytes/job',"
		" \"resource_manager/record_type\", round(count::numeric / %lld, 2),"
		" round(combined_size::numeric / %lld)), E'\\n' ORDER BY combined_size DESC)"
		" FROM pg_get_wal_stats('%s', pg_current_wal_lsn(), true) WHERE count > 0",
		jobs, jobs, c->lsn);
	char *v = tl_sql_value(db, sql);
	printf("WAL by record type since the agent started:\n%s\n", v);
	free(v);
	free(sql);
}

/* WAL written since cost_begin (call when the work is done). */
static long long cost_wal(const struct cost *c, PGconn *db)
{
	return wal_bytes(db) - c->wal;
}

/* The agent's CPU over its life, µs (call after hagent_stop reaped it). */
static double cost_cpu_us(const struct cost *c)
{
	return children_cpu_us() - c->cpu_us;
}

#endif
