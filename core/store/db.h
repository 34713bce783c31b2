/* db.h — PostgreSQL access.
 *
 * Two faces: blocking helpers for command-line tools (migrate, user add …), and
 * `struct db_async`, one libpq connection driven by the daemon's libevent loop
 * through libpq's non-blocking API (PQconnectStart/PQconnectPoll,
 * PQsendQueryParams, PQconsumeInput). A lost connection is re-established with
 * exponential backoff; queries issued on it meanwhile fail at once with the
 * reason. A pool (below) instead lets them wait, bounded, for a connection.
 */
#ifndef GHL_DB_H
#define GHL_DB_H

#include <libpq-fe.h>

#include "util.h"

struct event_base;

/* Blocking: connect or fail with libpq's message (password masked). */
PGconn *db_connect(const char *dsn, struct err *e);
/* Blocking: run SQL (may hold several statements); 0 on success. */
int db_exec(PGconn *conn, const char *sql, struct err *e);
/* Blocking: parameterised query; returns a result with TUPLES_OK or
 * COMMAND_OK, else NULL with the server's message in e. Caller PQclear()s. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct err *e);
/* Formats a failed result's message: "ERROR: ... (SQLSTATE x) at line N". */
void db_result_error(const PGresult *res, const char *sql, struct err *e);

/* Called with res == NULL and e set when the query could not run (e is NULL
 * whenever res is set, even when res holds the server's error): e->code is
 * ERR_RETRY when the connection was lost, is not up yet or none came free in
 * time, ERR_FAIL when the connection or pool is being closed. The result and
 * e are owned by the caller only for the duration of the call. */
typedef void (*db_result_cb)(void *arg, PGresult *res, const struct err *e);
/* The text for a callback's failure: the server's message when res is set
 * (empty for a success), else e's. */
const char *db_why(const PGresult *res, const struct err *e);

struct db_async;

struct db_async *db_async_new(struct event_base *base, const char *dsn, long long reconnect_max_ms);
struct db_async *db_async_free(struct db_async *db);
/* Queue a query; cb runs later on the loop (never from inside this call).
 * With nparams == 0 the text may hold several statements; cb then gets the
 * first error, else the last result with rows, else the last result. */
void db_async_query(struct db_async *db, const char *sql, int nparams, const char *const *params,
		    db_result_cb cb, void *arg);
/* 1 when connected and usable. */
int db_async_is_up(const struct db_async *db);
/* Why the connection is not up (static storage of db), or "" when up. */
const char *db_async_reason(const struct db_async *db);

/* Whether parameterised queries are prepared once per connection and then
 * executed by name (default on). Off for PgBouncer < 1.21 in transaction
 * pooling mode, which cannot carry prepared statements. */
void db_set_prepared_statements(int on);

/* LISTEN/NOTIFY: called for every notification received on this connection. */
void db_async_on_notify(struct db_async *db,
			void (*cb)(void *arg, const char *channel, const char *payload), void *arg);
/* Called each time the connection becomes usable (first connect and every
 * reconnect) — the place to re-issue LISTEN. */
void db_async_on_connect(struct db_async *db, void (*cb)(void *arg), void *arg);
/* Queries queued or running on this connection. */
int db_async_pending(const struct db_async *db);

/* ---- a pool of asynchronous connections --------------------------------
 * Plain queries go to the least busy connection that is up. A connection
 * can be acquired exclusively (for a transaction spanning several queries,
 * e.g. BEGIN … SELECT … FOR UPDATE … COMMIT around a GHL call); at most
 * size-1 are ever lent out, so plain queries always have one.
 *
 * Waiting: a query (or acquire) that finds no connection up — the pool is
 * still connecting, or reconnecting after PostgreSQL restarted — waits in a
 * FIFO queue until one is, at most the wait timeout (all its waits
 * together) and at most `max` of them at once (db_pool_set_wait); past the
 * timeout, or when the queue is full, its callback gets res == NULL and the
 * reason. Queries queued on a connection that drops, and not yet sent (or
 * only being prepared), go back to that queue. A query that was running
 * when its connection dropped fails (it may or may not have been applied)
 * unless it was issued with DB_REPLAY: then it is re-sent — at most twice
 * on connections made after it was cut off (those open at the time fall
 * with the same outage and do not count). */
struct db_pool;

/* Flags of db_pool_query_flags. */
enum {
	DB_NOWAIT = 1, /* fail at once when no connection is up (readiness probes) */
	DB_REPLAY = 2, /* safe to run twice (reads, idempotent writes): re-sent on
			* another connection when its own drops while it runs */
};

struct db_pool *db_pool_new(struct event_base *base, const char *dsn, int size,
			    long long reconnect_max_ms);
struct db_pool *db_pool_free(struct db_pool *p);
void db_pool_query(struct db_pool *p, const char *sql, int nparams, const char *const *params,
		   db_result_cb cb, void *arg);
void db_pool_query_flags(struct db_pool *p, int flags, const char *sql, int nparams,
			 const char *const *params, db_result_cb cb, void *arg);
/* cb gets an exclusive connection (or NULL and why, as for db_result_cb,
 * when none came up within the wait timeout); always called from the loop.
 * Give it back with db_pool_release. */
void db_pool_acquire(struct db_pool *p,
		     void (*cb)(void *arg, struct db_async *conn, const struct err *e), void *arg);
void db_pool_release(struct db_pool *p, struct db_async *conn);
/* How long a query or acquire may wait for a connection, and how many may
 * wait at once (config: db_wait_timeout, db_wait_queue). timeout_ms <= 0 or
 * max <= 0: fail at once, as a new pool does until this is called. */
void db_pool_set_wait(struct db_pool *p, long long timeout_ms, int max);
int db_pool_is_up(const struct db_pool *p);
const char *db_pool_reason(const struct db_pool *p);
int db_pool_size(const struct db_pool *p);
/* Seconds a client should wait before trying again (Retry-After): until the
 * pool's next connection attempt, at least 1. */
int db_pool_retry_after_s(const struct db_pool *p);

struct db_pool_stats {
	int waiting;	    /* queries and acquires waiting for a connection now */
	long long waited;   /* ever had to wait */
	long long gave_up;  /* failed: waited the whole timeout, or the queue was full */
	long long replayed; /* DB_REPLAY queries re-sent after their connection dropped */
};
void db_pool_get_stats(const struct db_pool *p, struct db_pool_stats *out);

#endif
