/* bench_cost.h — what a measured run cost (issue 15), for bench_jobs:
 *   the agent's CPU from getrusage(RUSAGE_CHILDREN) around its life (it is
 *   the only child reaped between cost_begin and cost_end), and the CPU and
 *   the WAL the cluster spent meanwhile (scripts/bench's PostgreSQL is
 *   private to it; the bench driver's own queries are counted too, a few
 *   per run). Unlike jobs/s, these hardly move with the machine's load. */
#ifndef GHL_BENCH_COST_H
#define GHL_BENCH_COST_H

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ghl_harness.h"

struct cost {
	double cpu_us; /* children's user + system CPU */
	double pg_us;  /* the PostgreSQL cluster's CPU (pg_cpu_us) */
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

/* /proc/PID/stat: user + system CPU, µs; with the reaped children's too
 * when reaped; ppid set to the parent's pid. -1 when gone. */
static double stat_cpu_us(pid_t pid, int reaped, pid_t *ppid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[1024];
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = 0;
	const char *p = strrchr(line, ')');
	int pp = 0;
	unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
	if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &pp, &ut, &st, &cut, &cst) != 5)
		return -1;
	if (ppid)
		*ppid = pp;
	return (double)(ut + st + (reaped ? cut + cst : 0)) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* The cluster's CPU so far, µs: its postmaster with its reaped children,
 * plus its live children (backends, WAL writer, checkpointer…). The
 * cluster is scripts/bench's own, so this is what our runs cost it. */
static double pg_cpu_us(PGconn *db)
{
	pid_t backend = PQbackendPID(db), pm = 0;
	if (stat_cpu_us(backend, 0, &pm) < 0 || pm <= 1)
		return 0;
	double total = stat_cpu_us(pm, 1, NULL);
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name), pp = 0;
		if (pid <= 0)
			continue;
		double us = stat_cpu_us(pid, 0, &pp);
		if (pp == pm && us > 0)
			total += us;
	}
	if (d)
		closedir(d);
	return total;
}

/* A running process's user + system CPU so far, µs: the counters
 * getrusage(RUSAGE_SELF) reads, from /proc (the bench is not the agent). */
static double proc_cpu_us(pid_t pid)
{
	double us = stat_cpu_us(pid, 0, NULL);
	return us < 0 ? 0 : us;
}

/* Before the agent starts. */
static void cost_begin(struct cost *c, PGconn *db)
{
	c->cpu_us = children_cpu_us();
	c->pg_us = pg_cpu_us(db);
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

/* The cluster's CPU since cost_begin, µs (call when the work is done). */
static double cost_pg_us(const struct cost *c, PGconn *db)
{
	return pg_cpu_us(db) - c->pg_us;
}

/* The agent's CPU over its life, µs (call after hagent_stop reaped it). */
static double cost_cpu_us(const struct cost *c)
{
	return children_cpu_us() - c->cpu_us;
}

#endif
