/* db.c — blocking libpq helpers and the loop-driven asynchronous connection. */
#include "db.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

/* ---- blocking helpers -------------------------------------------------- */

PGconn *db_connect(const char *dsn, struct err *e)
{
	PGconn *c = PQconnectdb(dsn);
	if (!c) {
		err_set(e, "cannot connect to the database: out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		char *masked = config_mask_dsn(dsn);
		char msg[400];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		str_trim(msg);
		err_set(e, "cannot connect to the database (%s): %s", masked, str_trim(msg));
		free(masked);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, NULL, NULL);
	return c;
}

static int line_of_offset(const char *sql, long pos)
{
	int line = 1;
	for (long i = 0; sql && i < pos - 1 && sql[i]; i++)
		if (sql[i] == '\n')
			line++;
	return line;
}

void db_result_error(const PGresult *res, const char *sql, struct err *e)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	if (!msg)
		msg = res ? PQresultErrorMessage(res) : "no result";
	if (pos && sql) {
		long long p = 0;
		str_to_ll(pos, 0, 1LL << 40, &p);
		err_set(e, "%s (SQLSTATE %s) at line %d", msg, state ? state : "?",
			line_of_offset(sql, (long)p));
	} else {
		err_set(e, "%s (SQLSTATE %s)", msg, state ? state : "?");
	}
}

int db_exec(PGconn *conn, const char *sql, struct err *e)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		if (r)
			db_result_error(r, sql, e);
		else
			err_set(e, "%s", PQerrorMessage(conn));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct err *e)
{
	PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (r)
			db_result_error(r, sql, e);
		else
			err_set(e, "%s", PQerrorMessage(conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

const char *db_why(const PGresult *res, const struct err *e)
{
	if (res)
		return PQresultErrorMessage(res);
	return e ? e->msg : "database unavailable";
}

/* ---- asynchronous connection ------------------------------------------- */

struct pending {
	struct pending *next;
	char *sql;
	int nparams;
	char **params;
	db_result_cb cb;
	void *arg;
	struct err *err;     /* set when failed before sending */
	int preparing;	     /* PREP_PARSE or PREP_EVICT in flight before it runs */
	int flags;	     /* DB_NOWAIT, DB_REPLAY (pool queries) */
	int replays;	     /* DB_REPLAY: cut off on connections made after its last cut */
	int64_t cut_ms;	     /* when its connection last dropped while it ran */
	int64_t deadline_ms; /* set when it first waits in a pool's queue */
};

/* A query that was running each time its connection dropped may be what
 * brings the server down: it is re-sent after this many cuts at most. A
 * connection that was open before the query's last cut falls with the same
 * outage and does not count. */
#define DB_REPLAY_MAX 2

/* Statements with parameters are prepared once per connection and then
 * executed by name: planning can cost as much as running a short query. At
 * most DB_PREPARED_MAX per connection; a new one beyond that takes the slot of
 * the least recently used, which is DEALLOCATEd first, so a long-running
 * daemon whose API has served many distinct texts (the list endpoints build
 * theirs from the filters given) still prepares the ones in use. */
#define DB_PREPARED_MAX 64

struct prepared {
	char *sql;
	char name[16];
	unsigned long long used; /* db->prep_tick at its last use */
};

/* What a pending query's `preparing` waits for before it runs. */
enum { PREP_NONE, PREP_PARSE, PREP_EVICT };

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

struct db_pool;
/* A pooled connection came up, or dropped with these queries (sent or not;
 * in submission order) that the pool may run elsewhere. */
static void pool_conn_up(struct db_pool *p);
static void pool_requeue(struct db_pool *p, struct pending *list, const char *why, int replayed);

struct db_async {
	struct event_base *base;
	char *dsn;
	long long backoff_ms, backoff_max_ms;
	PGconn *conn;
	enum db_state state;
	struct event *ev_read;	/* persistent while READY */
	struct event *ev_write; /* one-shot: flush / connect polling */
	struct event *ev_retry;
	struct event *ev_defer;
	struct pending *head, *tail; /* head is in flight when sent == 1 */
	int sent;
	struct pending *failed; /* callbacks to run from ev_defer */
	PGresult *last;
	char reason[512];
	struct prepared prep[DB_PREPARED_MAX];
	int nprep;
	unsigned long long prep_tick; /* uses, for least-recently-used eviction */
	unsigned prep_seq;	      /* names are never reused on a connection */
	char parsing[16];	      /* the name of the Parse in flight */
	int queued;		      /* queries queued or running */
	int reserved;		      /* lent out by a pool */
	void (*notify_cb)(void *, const char *, const char *);
	void *notify_arg;
	void (*connect_cb)(void *);
	void *connect_arg;
	struct db_pool *pool; /* the pool this connection belongs to, or NULL */
	int64_t retry_at_ms;  /* DOWN: when the next connection attempt starts */
	int64_t up_ms;	      /* READY since */
};

static void db_start_connect(struct db_async *db);
static void db_send_next(struct db_async *db);
static void rollback_done(void *arg, PGresult *res, const struct err *e);

static int use_prepared = 1;

void db_set_prepared_statements(int on)
{
	use_prepared = on;
}

static void prepared_clear(struct db_async *db)
{
	for (int i = 0; i < db->nprep; i++)
		free(db->prep[i].sql);
	db->nprep = 0;
}

static const struct prepared *prepared_find(struct db_async *db, const char *sql)
{
	for (int i = 0; i < db->nprep; i++)
		if (!strcmp(db->prep[i].sql, sql)) {
			db->prep[i].used = ++db->prep_tick;
			return &db->prep[i];
		}
	return NULL;
}

/* Forget the least recently used statement and send its DEALLOCATE (the
 * caller's query follows it on this connection); 1 when sent. */
static int prepared_evict(struct db_async *db)
{
	int lru = 0;
	for (int i = 1; i < db->nprep; i++)
		if (db->prep[i].used < db->prep[lru].used)
			lru = i;
	char sql[40];
	snprintf(sql, sizeof(sql), "DEALLOCATE %s", db->prep[lru].name);
	free(db->prep[lru].sql);
	db->prep[lru] = db->prep[--db->nprep];
	return PQsendQuery(db->conn, sql);
}

static void pending_free(struct pending *p)
{
	free(p->sql);
	for (int i = 0; i < p->nparams; i++)
		free(p->params[i]);
	free(p->params);
	free(p->err);
	free(p);
}

static struct pending *pending_reverse(struct pending *list)
{
	struct pending *rev = NULL;
	while (list) {
		struct pending *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	return rev;
}

/* Call back a list of failed queries pushed newest first (LIFO), in the
 * order they were submitted. */
static void pending_fail_all(struct pending *lifo)
{
	struct pending *p = pending_reverse(lifo);
	while (p) {
		struct pending *n = p->next;
		p->cb(p->arg, NULL, p->err);
		pending_free(p);
		p = n;
	}
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_async *db = arg;
	struct pending *list = db->failed;
	db->failed = NULL;
	pending_fail_all(list);
}

/* Record why p failed: libpq's or the pool's text, with its code. */
static void pending_set_err(struct pending *p, int code, const char *why)
{
	if (!p->err)
		p->err = xcalloc(1, sizeof(*p->err));
	err_setc(p->err, code, "%s", why);
}

static void fail_later(struct db_async *db, struct pending *p, int code, const char *why)
{
	pending_set_err(p, code, why);
	p->next = db->failed;
	db->failed = p;
	event_active(db->ev_defer, EV_TIMEOUT, 0);
}

static void drop_events(struct db_async *db)
{
	if (db->ev_read) {
		event_free(db->ev_read);
		db->ev_read = NULL;
	}
	if (db->ev_write) {
		event_free(db->ev_write);
		db->ev_write = NULL;
	}
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	db_start_connect(arg);
}

/* The connection is gone: fail every query, schedule a reconnect. */
static void db_lost(struct db_async *db, const char *why)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "%s", why);
	drop_events(db);
	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	if (db->last) {
		PQclear(db->last);
		db->last = NULL;
	}
	db->state = DB_DOWN;
	int was_sent = db->sent;
	db->sent = 0;
	prepared_clear(db);
	/* A pooled, shared connection hands its queries back to the pool: those
	 * not sent yet, and the one running when it is safe to run twice. A
	 * borrower's transaction is gone: its queries fail. */
	struct pending *again = NULL, **again_tail = &again;
	int first = 1, replayed = 0;
	while (db->head) {
		struct pending *p = db->head;
		db->head = p->next;
		p->next = NULL;
		int ran = first && was_sent && !p->preparing;
		first = 0;
		p->preparing = PREP_NONE;
		if (ran && db->up_ms > p->cut_ms)
			p->replays++;
		if (ran)
			p->cut_ms = now_monotonic_ms();
		if (db->pool && !db->reserved && p->cb != rollback_done &&
		    (!ran || ((p->flags & DB_REPLAY) && p->replays <= DB_REPLAY_MAX))) {
			*again_tail = p;
			again_tail = &p->next;
			replayed += ran;
		} else {
			fail_later(db, p, ERR_RETRY, msg);
		}
	}
	db->tail = NULL;
	db->queued = 0;
	long long wait = db->backoff_ms;
	db->retry_at_ms = now_monotonic_ms() + wait;
	snprintf(db->reason, sizeof(db->reason),
		 "database unavailable: %s; reconnecting in %lld ms", str_trim(msg), wait);
	log_warn("database connection lost", "reason", msg, NULL);
	db->backoff_ms = db->backoff_ms * 2 > db->backoff_max_ms ? db->backoff_max_ms
								 : db->backoff_ms * 2;
	struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
	evtimer_add(db->ev_retry, &tv);
	if (again)
		pool_requeue(db->pool, again, db->reason, replayed);
}

static void on_write(evutil_socket_t fd, short what, void *arg);

static void want_write(struct db_async *db, void (*cb)(evutil_socket_t, short, void *))
{
	if (db->ev_write)
		event_free(db->ev_write);
	db->ev_write = event_new(db->base, PQsocket(db->conn), EV_WRITE, cb, db);
	event_add(db->ev_write, NULL);
}

static void rollback_done(void *arg, PGresult *res, const struct err *e)
{
	(void)arg;
	(void)res;
	(void)e;
	log_warn("rolled back a transaction left open on a shared connection", NULL);
}

/* The error ends the session: SQLSTATE class 08 (connection exception) or
 * 57P01..57P05 (shutdown, crash, terminated, database dropped, idle timeout;
 * not 57014, a cancelled statement), or libpq saw the connection close. */
static int conn_fatal(PGconn *conn, const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
		return 0;
	if (PQstatus(conn) == CONNECTION_BAD)
		return 1;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	return state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3));
}

static void deliver_results(struct db_async *db)
{
	while (db->sent && !PQisBusy(db->conn)) {
		PGresult *r = PQgetResult(db->conn);
		if (r) {
			/* Several statements: keep the first error, else the last
			 * result that carries rows, else the last one. */
			ExecStatusType st = PQresultStatus(r),
				       kept = db->last ? PQresultStatus(db->last)
						       : PGRES_EMPTY_QUERY;
			int kept_error = db->last && kept != PGRES_COMMAND_OK &&
					 kept != PGRES_TUPLES_OK && kept != PGRES_EMPTY_QUERY;
			if (kept_error || (kept == PGRES_TUPLES_OK && st == PGRES_COMMAND_OK)) {
				PQclear(r);
				continue;
			}
			if (db->last)
				PQclear(db->last);
			db->last = r;
			continue;
		}
		/* NULL: the query is complete. An error that ends the session
		 * (the server shuts down, the backend was terminated) is the
		 * connection's loss, not the query's answer. */
		if (db->last && conn_fatal(db->conn, db->last)) {
			char why[400];
			snprintf(why, sizeof(why), "%s", PQresultErrorMessage(db->last));
			db_lost(db, why);
			return;
		}
		struct pending *p = db->head;
		if (p->preparing) {
			/* the Parse answered: execute by name, or report its error */
			int was = p->preparing;
			p->preparing = PREP_NONE;
			db->sent = 0;
			/* an evicted statement's DEALLOCATE answered: whatever it
			 * said, its name is never used again; now the Parse */
			if (was == PREP_EVICT) {
				if (db->last)
					PQclear(db->last);
				db->last = NULL;
				db_send_next(db);
				continue;
			}
			if (db->last && PQresultStatus(db->last) == PGRES_COMMAND_OK) {
				PQclear(db->last);
				db->last = NULL;
				struct prepared *pr = &db->prep[db->nprep++];
				pr->sql = xstrdup(p->sql);
				memcpy(pr->name, db->parsing, sizeof(pr->name));
				pr->used = ++db->prep_tick;
				db_send_next(db);
				continue;
			}
		}
		db->head = p->next;
		if (!db->head)
			db->tail = NULL;
		db->sent = 0;
		db->queued--;
		PGresult *res = db->last;
		db->last = NULL;
		p->cb(p->arg, res, NULL);
		PQclear(res);
		pending_free(p);
		/* A shared connection must never be left inside a transaction (a
		 * failed multi-statement query, a borrower that forgot COMMIT). */
		if (!db->reserved && db->state == DB_READY && !db->head &&
		    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
			db_async_query(db, "ROLLBACK", 0, NULL, rollback_done, db);
		if (db->state != DB_READY)
			return;
		db_send_next(db);
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_async *db = arg;
	if (!PQconsumeInput(db->conn) || PQstatus(db->conn) == CONNECTION_BAD) {
		db_lost(db, PQerrorMessage(db->conn));
		return;
	}
	PGnotify *n;
	while ((n = PQnotifies(db->conn)) != NULL) {
		if (db->notify_cb)
			db->notify_cb(db->notify_arg, n->relname, n->extra);
		PQfreemem(n);
	}
	deliver_results(db);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_async *db = arg;
	int r = PQflush(db->conn);
	if (r < 0)
		db_lost(db, PQerrorMessage(db->conn));
	else if (r == 1)
		want_write(db, on_write);
}

static void db_send_next(struct db_async *db)
{
	if (db->state != DB_READY || db->sent || !db->head)
		return;
	struct pending *p = db->head;
	/* Without parameters the simple protocol runs several statements
	 * ("BEGIN; …; COMMIT") in one round trip. */
	int ok;
	const struct prepared *pr = p->nparams ? prepared_find(db, p->sql) : NULL;
	if (p->nparams == 0) {
		ok = PQsendQuery(db->conn, p->sql);
	} else if (pr) {
		ok = PQsendQueryPrepared(db->conn, pr->name, p->nparams,
					 (const char *const *)p->params, NULL, NULL, 0);
	} else if (use_prepared && db->nprep == DB_PREPARED_MAX) {
		ok = prepared_evict(db);
		p->preparing = PREP_EVICT;
	} else if (use_prepared) {
		snprintf(db->parsing, sizeof(db->parsing), "ghl_%u", db->prep_seq++);
		ok = PQsendPrepare(db->conn, db->parsing, p->sql, p->nparams, NULL);
		p->preparing = PREP_PARSE;
	} else {
		ok = PQsendQueryParams(db->conn, p->sql, p->nparams, NULL,
				       (const char *const *)p->params, NULL, NULL, 0);
	}
	if (!ok) {
		db_lost(db, PQerrorMessage(db->conn));
		return;
	}
	db->sent = 1;
	int r = PQflush(db->conn);
	if (r < 0)
		db_lost(db, PQerrorMessage(db->conn));
	else if (r == 1)
		want_write(db, on_write);
}

static void connect_poll(struct db_async *db);

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_poll(arg);
}

static void connect_poll(struct db_async *db)
{
	PostgresPollingStatusType st = PQconnectPoll(db->conn);
	switch (st) {
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		if (db->ev_write)
			event_free(db->ev_write);
		db->ev_write = event_new(db->base, PQsocket(db->conn),
					 st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
					 on_connect_io, db);
		event_add(db->ev_write, NULL);
		return;
	case PGRES_POLLING_OK:
		drop_events(db);
		if (PQsetnonblocking(db->conn, 1) != 0) {
			db_lost(db, "cannot switch the connection to non-blocking mode");
			return;
		}
		db->state = DB_READY;
		db->up_ms = now_monotonic_ms();
		db->backoff_ms = 100;
		db->reason[0] = '\0';
		db->ev_read = event_new(db->base, PQsocket(db->conn), EV_READ | EV_PERSIST, on_read,
					db);
		event_add(db->ev_read, NULL);
		log_info("database connected", NULL);
		if (db->connect_cb)
			db->connect_cb(db->connect_arg);
		db_send_next(db);
		if (db->pool)
			pool_conn_up(db->pool);
		return;
	default: db_lost(db, PQerrorMessage(db->conn)); return;
	}
}

static void db_start_connect(struct db_async *db)
{
	db->state = DB_CONNECTING;
	db->conn = PQconnectStart(db->dsn);
	if (!db->conn || PQstatus(db->conn) == CONNECTION_BAD) {
		db_lost(db, db->conn ? PQerrorMessage(db->conn) : "out of memory");
		return;
	}
	PQsetNoticeProcessor(db->conn, NULL, NULL);
	if (!db->reason[0])
		snprintf(db->reason, sizeof(db->reason), "database connection in progress");
	connect_poll(db);
}

struct db_async *db_async_new(struct event_base *base, const char *dsn, long long reconnect_max_ms)
{
	struct db_async *db = xcalloc(1, sizeof(*db));
	db->base = base;
	db->dsn = xstrdup(dsn);
	db->backoff_ms = 100;
	db->backoff_max_ms = reconnect_max_ms > 100 ? reconnect_max_ms : 100;
	db->ev_retry = evtimer_new(base, retry_cb, db);
	db->ev_defer = event_new(base, -1, 0, defer_cb, db);
	db_start_connect(db);
	return db;
}

struct db_async *db_async_free(struct db_async *db)
{
	if (!db)
		return NULL;
	drop_events(db);
	if (db->conn)
		PQfinish(db->conn);
	if (db->last)
		PQclear(db->last);
	while (db->head) {
		struct pending *p = db->head;
		db->head = p->next;
		struct err e;
		err_set(&e, "database connection closed");
		p->cb(p->arg, NULL, &e);
		pending_free(p);
	}
	defer_cb(-1, 0, db);
	event_free(db->ev_retry);
	event_free(db->ev_defer);
	prepared_clear(db);
	free(db->dsn);
	free(db);
	return NULL;
}

static struct pending *pending_new(const char *sql, int nparams, const char *const *params,
				   db_result_cb cb, void *arg)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	p->sql = xstrdup(sql);
	p->nparams = nparams;
	p->params = xcalloc((size_t)(nparams > 0 ? nparams : 1), sizeof(char *));
	for (int i = 0; i < nparams; i++)
		p->params[i] = params[i] ? xstrdup(params[i]) : NULL;
	p->cb = cb;
	p->arg = arg;
	return p;
}

static void async_enqueue(struct db_async *db, struct pending *p)
{
	p->next = NULL;
	if (db->state != DB_READY) {
		fail_later(db, p, ERR_RETRY, db->reason[0] ? db->reason : "database unavailable");
		return;
	}
	if (db->tail)
		db->tail->next = p;
	else
		db->head = p;
	db->tail = p;
	db->queued++;
	db_send_next(db);
}

void db_async_query(struct db_async *db, const char *sql, int nparams, const char *const *params,
		    db_result_cb cb, void *arg)
{
	async_enqueue(db, pending_new(sql, nparams, params, cb, arg));
}

void db_async_on_notify(struct db_async *db, void (*cb)(void *, const char *, const char *),
			void *arg)
{
	db->notify_cb = cb;
	db->notify_arg = arg;
}

void db_async_on_connect(struct db_async *db, void (*cb)(void *), void *arg)
{
	db->connect_cb = cb;
	db->connect_arg = arg;
	if (db->state == DB_READY && cb)
		cb(arg);
}

int db_async_pending(const struct db_async *db)
{
	return db->queued;
}

/* ---- pool -------------------------------------------------------------- */

struct waiter {
	struct waiter *next;
	void (*cb)(void *, struct db_async *, const struct err *);
	void *arg;
	int64_t deadline_ms; /* 0 while the pool is up (then it waits for a release) */
};

struct db_pool {
	struct event_base *base;
	struct db_async **conns;
	int size;
	int lent;
	struct waiter *wait_head, *wait_tail; /* acquires */
	int nwait;
	struct pending *q_head, *q_tail; /* queries waiting for a connection */
	int nq;
	struct pending *failed; /* to call back from the loop (LIFO) */
	struct event *ev_work;
	long long wait_ms;
	int wait_max;
	int closing;
	struct db_pool_stats st;
};

/* The least busy connection that is up and not lent out. A connection lent
 * while it still has plain queries queued runs them first (FIFO), before the
 * borrower's statements. */
static struct db_async *pool_pick(struct db_pool *p)
{
	struct db_async *best = NULL;
	for (int i = 0; i < p->size; i++) {
		struct db_async *c = p->conns[i];
		if (c->reserved || c->state != DB_READY)
			continue;
		if (!best || c->queued < best->queued)
			best = c;
	}
	return best;
}

static int pool_can_lend(struct db_pool *p)
{
	return !(p->lent >= p->size - 1 && p->size > 1) && pool_pick(p);
}

static const char *pool_why(const struct db_pool *p)
{
	const char *r = db_pool_reason(p);
	return *r ? r : "all database connections are busy";
}

/* Arm the work timer for what the state needs next (or disarm it). */
static void pool_schedule(struct db_pool *p)
{
	if (p->closing)
		return;
	int64_t now = now_monotonic_ms(), next = -1;
	if (p->failed || (p->q_head && pool_pick(p)) || (p->wait_head && pool_can_lend(p)))
		next = now;
	else if (p->wait_head && db_pool_is_up(p))
		next = now + 20; /* the up ones are all lent: look again shortly */
	for (struct pending *q = p->q_head; q && next != now; q = q->next)
		if (next < 0 || q->deadline_ms < next)
			next = q->deadline_ms;
	for (struct waiter *w = p->wait_head; w && next != now; w = w->next)
		if (w->deadline_ms && (next < 0 || w->deadline_ms < next))
			next = w->deadline_ms;
	if (next < 0) {
		evtimer_del(p->ev_work);
		return;
	}
	long long d = next > now ? next - now : 0;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(p->ev_work, &tv);
}

/* Fail q from the loop, later (never from inside the caller's call). */
static void pool_fail(struct db_pool *p, struct pending *q, int code, const char *why)
{
	pending_set_err(q, code, why);
	q->next = p->failed;
	p->failed = q;
}

static void pool_fail_queue_full(struct db_pool *p, struct pending *q)
{
	char why[700];
	snprintf(why, sizeof(why), "%s; %d requests already waiting for a connection", pool_why(p),
		 p->nq + p->nwait);
	p->st.gave_up++;
	pool_fail(p, q, ERR_RETRY, why);
}

/* Queue q to wait (at the tail, or the head when it was there first). */
static void pool_wait(struct db_pool *p, struct pending *q, int at_head)
{
	if (!q->deadline_ms) /* the bound is for all its waits together */
		q->deadline_ms = now_monotonic_ms() + p->wait_ms;
	if (at_head) {
		q->next = p->q_head;
		p->q_head = q;
		if (!p->q_tail)
			p->q_tail = q;
	} else {
		q->next = NULL;
		if (p->q_tail)
			p->q_tail->next = q;
		else
			p->q_head = q;
		p->q_tail = q;
	}
	p->nq++;
}

static void run_failed(struct db_pool *p)
{
	struct pending *list = p->failed;
	p->failed = NULL;
	pending_fail_all(list);
}

/* Waiting queries and acquires past their deadline fail. */
static void expire(struct db_pool *p, int64_t now)
{
	struct pending **pp = &p->q_head;
	p->q_tail = NULL;
	while (*pp) {
		struct pending *q = *pp;
		if (q->deadline_ms > now) {
			p->q_tail = q;
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		p->nq--;
		p->st.gave_up++;
		char why[700];
		snprintf(why, sizeof(why), "%s; no connection within %lld ms", pool_why(p),
			 p->wait_ms);
		pool_fail(p, q, ERR_RETRY, why);
	}
	int up = db_pool_is_up(p);
	struct waiter *gone = NULL, **wp = &p->wait_head;
	p->wait_tail = NULL;
	while (*wp) {
		struct waiter *w = *wp;
		if (up)
			w->deadline_ms = 0;
		else if (!w->deadline_ms)
			w->deadline_ms = now + p->wait_ms;
		if (up || w->deadline_ms > now) {
			p->wait_tail = w;
			wp = &w->next;
			continue;
		}
		*wp = w->next;
		p->nwait--;
		p->st.gave_up++;
		w->next = gone;
		gone = w;
	}
	struct err e;
	if (gone)
		err_setc(&e, ERR_RETRY, "%s", pool_why(p));
	while (gone) {
		struct waiter *w = gone;
		gone = w->next;
		w->cb(w->arg, NULL, &e);
		free(w);
	}
}

static void pool_work(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_pool *p = arg;
	expire(p, now_monotonic_ms());
	struct db_async *c;
	while (p->q_head && (c = pool_pick(p)) != NULL) {
		struct pending *q = p->q_head;
		p->q_head = q->next;
		if (!p->q_head)
			p->q_tail = NULL;
		p->nq--;
		async_enqueue(c, q); /* may drop c: its queries come back here */
	}
	while (p->wait_head && pool_can_lend(p)) {
		struct waiter *w = p->wait_head;
		p->wait_head = w->next;
		if (!p->wait_head)
			p->wait_tail = NULL;
		p->nwait--;
		c = pool_pick(p);
		c->reserved = 1;
		p->lent++;
		w->cb(w->arg, c, NULL);
		free(w);
	}
	run_failed(p);
	pool_schedule(p);
}

static void pool_conn_up(struct db_pool *p)
{
	pool_schedule(p);
}

static void pool_requeue(struct db_pool *p, struct pending *list, const char *why, int replayed)
{
	p->st.replayed += replayed;
	/* list is in submission order: push back to front onto the head */
	struct pending *rev = pending_reverse(list);
	while (rev) {
		struct pending *n = rev->next;
		if (p->wait_ms <= 0 || p->closing || (rev->flags & DB_NOWAIT))
			pool_fail(p, rev, ERR_RETRY, why);
		else
			pool_wait(p, rev, 1);
		rev = n;
	}
	pool_schedule(p);
}

struct db_pool *db_pool_new(struct event_base *base, const char *dsn, int size,
			    long long reconnect_max_ms)
{
	struct db_pool *p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->size = size < 1 ? 1 : size;
	p->conns = xcalloc((size_t)p->size, sizeof(*p->conns));
	p->ev_work = evtimer_new(base, pool_work, p);
	for (int i = 0; i < p->size; i++) {
		p->conns[i] = db_async_new(base, dsn, reconnect_max_ms);
		p->conns[i]->pool = p;
	}
	return p;
}

struct db_pool *db_pool_free(struct db_pool *p)
{
	if (!p)
		return NULL;
	p->closing = 1;
	struct err closed;
	err_set(&closed, "database pool closed");
	while (p->wait_head) {
		struct waiter *w = p->wait_head;
		p->wait_head = w->next;
		w->cb(w->arg, NULL, &closed);
		free(w);
	}
	while (p->q_head) {
		struct pending *q = p->q_head;
		p->q_head = q->next;
		pool_fail(p, q, ERR_FAIL, closed.msg);
	}
	p->q_tail = NULL;
	p->nq = p->nwait = 0;
	/* callbacks run meanwhile may still look at the pool: only live
	 * connections stay within size */
	while (p->size > 0) {
		struct db_async *c = p->conns[--p->size];
		c->pool = NULL;
		db_async_free(c);
	}
	while (p->failed)
		run_failed(p);
	event_free(p->ev_work);
	free(p->conns);
	free(p);
	return NULL;
}

void db_pool_query_flags(struct db_pool *p, int flags, const char *sql, int nparams,
			 const char *const *params, db_result_cb cb, void *arg)
{
	struct pending *q = pending_new(sql, nparams, params, cb, arg);
	q->flags = flags;
	if (p->closing) { /* run by db_pool_free */
		pool_fail(p, q, ERR_FAIL, "database pool closed");
		return;
	}
	struct db_async *c = pool_pick(p);
	/* FIFO: while others wait, a newcomer queues behind them */
	if (c && (!p->q_head || (flags & DB_NOWAIT))) {
		async_enqueue(c, q);
		return;
	}
	if ((flags & DB_NOWAIT) || p->wait_ms <= 0)
		pool_fail(p, q, ERR_RETRY, pool_why(p));
	else if (p->nq + p->nwait >= p->wait_max)
		pool_fail_queue_full(p, q);
	else {
		pool_wait(p, q, 0);
		p->st.waited++;
	}
	pool_schedule(p);
}

void db_pool_query(struct db_pool *p, const char *sql, int nparams, const char *const *params,
		   db_result_cb cb, void *arg)
{
	db_pool_query_flags(p, 0, sql, nparams, params, cb, arg);
}

void db_pool_acquire(struct db_pool *p, void (*cb)(void *, struct db_async *, const struct err *),
		     void *arg)
{
	if (p->closing) {
		struct err e;
		err_set(&e, "database pool closed");
		cb(arg, NULL, &e);
		return;
	}
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	if (!db_pool_is_up(p)) {
		p->st.waited++;
		w->deadline_ms = now_monotonic_ms() + (p->wait_ms > 0 ? p->wait_ms : 0);
	}
	if (p->wait_tail)
		p->wait_tail->next = w;
	else
		p->wait_head = w;
	p->wait_tail = w;
	p->nwait++;
	pool_schedule(p);
}

void db_pool_release(struct db_pool *p, struct db_async *conn)
{
	if (!conn->reserved)
		return;
	conn->reserved = 0;
	p->lent--;
	pool_schedule(p);
}

void db_pool_set_wait(struct db_pool *p, long long timeout_ms, int max)
{
	p->wait_ms = timeout_ms > 0 && max > 0 ? timeout_ms : 0;
	p->wait_max = max > 0 ? max : 0;
}

int db_pool_is_up(const struct db_pool *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->conns[i]->state == DB_READY)
			return 1;
	return 0;
}

const char *db_pool_reason(const struct db_pool *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->conns[i]->state != DB_READY)
			return p->conns[i]->reason[0] ? p->conns[i]->reason
						      : "database unavailable";
	return "";
}

int db_pool_size(const struct db_pool *p)
{
	return p->size;
}

int db_pool_retry_after_s(const struct db_pool *p)
{
	int64_t now = now_monotonic_ms(), soonest = -1;
	int up = db_pool_is_up(p);
	for (int i = 0; i < p->size && !up; i++) {
		const struct db_async *c = p->conns[i];
		int64_t at = c->state == DB_DOWN && c->retry_at_ms > now ? c->retry_at_ms : now;
		if (soonest < 0 || at < soonest)
			soonest = at;
	}
	long long s = soonest > now ? (soonest - now + 999) / 1000 : 1;
	return s < 1 ? 1 : (int)s;
}

void db_pool_get_stats(const struct db_pool *p, struct db_pool_stats *out)
{
	*out = p->st;
	out->waiting = p->nq + p->nwait;
}

int db_async_is_up(const struct db_async *db)
{
	return db->state == DB_READY;
}

const char *db_async_reason(const struct db_async *db)
{
	return db->state == DB_READY ? "" : db->reason;
}
