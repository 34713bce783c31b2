/* chaos.h — the chaos suite (test_chaos.c): a private PostgreSQL the suite may
 * stop in immediate mode, ghl-sim, two `ghl-agent serve` processes on one
 * database (roles=both serving the API, roles=worker), an agency connected
 * through OAuth, jobs submitted over REST with an API key, and the checks run
 * after the drain.
 *
 * Every process is started in the test's process group (Check kills the group
 * when a test ends) with a parent-death signal, so a failed or timed-out test
 * leaves nothing running.
 *
 *   chaos_env.c    the processes: PostgreSQL, ghl-sim, the agents; set-up
 *   chaos_jobs.c   submitting, waiting for the drain with progress, the checks
 */
#ifndef GHL_CHAOS_H
#define GHL_CHAOS_H

#include "ghl_harness.h"

/* The agency's ghl-sim company, and the six steps of the default pipeline
 * (each must have a COMPLETED journal entry in every completed job). */
#define CHAOS_COMPANY "chaos-co"
/* clang-format off */
#define CHAOS_STEPS                                                                         \
	"'VALIDATE_SNAPSHOT', 'CREATE_LOCATION', 'WAIT_FOR_SNAPSHOT', 'CREATE_USER', "     \
	"'SET_CUSTOM_VALUES', 'CREATE_CONTACT'"
/* clang-format on */
#define CHAOS_NSTEPS 6

struct chaos_pg {
	char data[200];
	char log[200];
	int port;
	pid_t pid; /* the postmaster, our child; 0 while stopped */
};

struct chaos_agent {
	const char *role; /* "both" or "worker" */
	int port;
	pid_t pid; /* 0 while not running */
	char base[64];
	char log[200];
};

struct chaos {
	const char *dir;  /* the run's folder: cluster, logs */
	const char *name; /* scenario tag: database name, Idempotency-Key prefix */
	struct chaos_pg pg;
	char *dsn;
	struct hsim sim;
	struct chaos_agent api, worker;
	struct hagent h;	/* the API process, for the harness helpers */
	const char *const *env; /* extra KEY=VALUE for both agents, NULL-terminated */
	char agency[64], snapshot[64], key[128];
	PGconn *db; /* the suite's connection; NULL after a failure, reopened on use */
	int submitted;
	long submit_503;      /* submissions answered 503 (sent again) */
	long submit_lost;     /* … cut off without an answer, or another 5xx (sent again) */
	long submit_replayed; /* resent and answered 200: the first attempt had been stored */
	int64_t t0;	      /* first submission (monotonic ms) */
	int64_t deadline;     /* the drain must end before this */
	int64_t last_event;   /* when the last process was killed or restarted */
	char events[16][176]; /* what was done to the processes, and when */
	int nevents;
};

/* ---- chaos_env.c ---- */

/* initdb into dir/clusters/name unless it exists (as the postgres OS user
 * when root): each scenario has its own cluster. */
void chaos_pg_init(struct chaos_pg *pg, const char *dir, const char *name);
/* Start the postmaster (port chosen on first start, kept after) and wait
 * until it accepts connections (crash recovery included), at most 60 s. */
void chaos_pg_start(struct chaos_pg *pg);
/* SIGQUIT to the postmaster — what `pg_ctl -m immediate stop` sends — and
 * wait for it: no checkpoint, the next start runs crash recovery. */
void chaos_pg_crash(struct chaos_pg *pg);
/* Fast shutdown (SIGINT), waited for. */
void chaos_pg_stop(struct chaos_pg *pg);

/* Everything up for scenario `name`: PostgreSQL started, a fresh database
 * migrated, ghl-sim (no faults yet, rate limit off), both agents ready, the
 * agency connected through OAuth with settings_json (a JSON object) set over
 * the API, its snapshots synced and an API key made. */
void chaos_up(struct chaos *c, const char *name, const char *settings_json);
/* Stop the agents (SIGTERM), ghl-sim and PostgreSQL. */
void chaos_down(struct chaos *c);

void chaos_agent_start(struct chaos *c, struct chaos_agent *a);
/* kill -9 and reap. */
void chaos_agent_kill(struct chaos_agent *a);

/* Record and print an event ("+12.3s  worker kill -9 …"). */
void chaos_event(struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fail the test with msg, after printing the tail of both agents' logs. */
void chaos_fail(struct chaos *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- chaos_jobs.c ---- */

/* Submit jobs [from, to) over REST with the API key, one request each, with
 * Idempotency-Key "<name>-<i>"; a 5xx or a lost connection is sent again with
 * the same key (bounded: 120 s per job). */
void chaos_submit(struct chaos *c, int from, int to);
/* A number from the database; -1 while it cannot be reached. */
long long chaos_count(struct chaos *c, const char *sql);
/* Wait until at least n submitted jobs are COMPLETED or FAILED, printing
 * progress every 5 s; fails the test at c->deadline. */
void chaos_wait_finished(struct chaos *c, long long n);
/* Wait until no job is waiting or running any more. */
void chaos_wait_drained(struct chaos *c);
/* Print progress until the monotonic clock reaches `until` (ms). */
void chaos_watch(struct chaos *c, int64_t until);
/* Print the figures of the run and assert: `expect` jobs, all COMPLETED,
 * distinct location ids that ghl-sim holds under the client's name, a full
 * journal, zero duplicate locations in ghl-sim. */
void chaos_verify(struct chaos *c, const char *title, int expect);

#endif
