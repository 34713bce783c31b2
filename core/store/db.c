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

/* ---- asynchronous connection ------------------------------------------- */

struct pending {
	struct pending *next;
	char *sql;
	int nparams;
	char **params;
	db_result_cb cb;
	void *arg;
	char *errmsg;  /* set when failed before sending */
	int preparing; /* the Parse of a new prepared statement is in flight */
};

/* Statements with parameters are prepared once per connection and then
 * executed by name: planning can cost as much as running a short query. */
#define DB_PREPARED_MAX 64

struct prepared {
	char *sql;
	char name[16];
};

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

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
	int queued;   /* queries queued or running */
	int reserved; /* lent out by a pool */
	void (*notify_cb)(void *, const char *, const char *);
	void *notify_arg;
	void (*connect_cb)(void *);
	void *connect_arg;
};

static void db_start_connect(struct db_async *db);
static void db_send_next(struct db_async *db);

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

static const struct prepared *prepared_find(const struct db_async *db, const char *sql)
{
	for (int i = 0; i < db->nprep; i++)
		if (!strcmp(db->prep[i].sql, sql))
			return &db->prep[i];
	return NULL;
}

static void pending_free(struct pending *p)
{
	free(p->sql);
	for (int i = 0; i < p->nparams; i++)
		free(p->params[i]);
	free(p->params);
	free(p->errmsg);
	free(p);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_async *db = arg;
	struct pending *list = db->failed;
	db->failed = NULL;
	/* reverse to keep submission order */
	struct pending *rev = NULL;
	while (list) {
		struct pending *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct pending *n = rev->next;
		rev->cb(rev->arg, NULL, rev->errmsg);
		pending_free(rev);
		rev = n;
	}
}

static void fail_later(struct db_async *db, struct pending *p, const char *why)
{
	free(p->errmsg);
	p->errmsg = xstrdup(why);
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
	db->sent = 0;
	prepared_clear(db);
	while (db->head) {
		struct pending *p = db->head;
		db->head = p->next;
		fail_later(db, p, msg);
	}
	db->tail = NULL;
	db->queued = 0;
	long long wait = db->backoff_ms;
	snprintf(db->reason, sizeof(db->reason), "database unavailable: %s; reconnecting in %lld ms",
		 str_trim(msg), wait);
	log_warn("database connection lost", "reason", msg, NULL);
	db->backoff_ms = db->backoff_ms * 2 > db->backoff_max_ms ? db->backoff_max_ms
								  : db->backoff_ms * 2;
	struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
	evtimer_add(db->ev_retry, &tv);
}

static void on_write(evutil_socket_t fd, short what, void *arg);

static void want_write(struct db_async *db, void (*cb)(evutil_socket_t, short, void *))
{
	if (db->ev_write)
		event_free(db->ev_write);
	db->ev_write = event_new(db->base, PQsocket(db->conn), EV_WRITE, cb, db);
	event_add(db->ev_write, NULL);
}

static void rollback_done(void *arg, PGresult *res, const char *errmsg)
{
	(void)arg;
	(void)res;
	(void)errmsg;
	log_warn("rolled back a transaction left open on a shared connection", NULL);
}

static void deliver_results(struct db_async *db)
{
	while (db->sent && !PQisBusy(db->conn)) {
		PGresult *r = PQgetResult(db->conn);
		if (r) {
			/* Several statements: keep the first error, else the last
			 * result that carries rows, else the last one. */
			ExecStatusType st = PQresultStatus(r), kept =
				db->last ? PQresultStatus(db->last) : PGRES_EMPTY_QUERY;
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
		/* NULL: the query is complete */
		struct pending *p = db->head;
		if (p->preparing) {
			/* the Parse answered: execute by name, or report its error */
			p->preparing = 0;
			db->sent = 0;
			if (db->last && PQresultStatus(db->last) == PGRES_COMMAND_OK) {
				PQclear(db->last);
				db->last = NULL;
				db->prep[db->nprep].sql = xstrdup(p->sql);
				snprintf(db->prep[db->nprep].name, sizeof(db->prep[0].name), "ghl_%d",
					 db->nprep);
				db->nprep++;
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
	} else if (use_prepared && db->nprep < DB_PREPARED_MAX) {
		char name[16];
		snprintf(name, sizeof(name), "ghl_%d", db->nprep);
		ok = PQsendPrepare(db->conn, name, p->sql, p->nparams, NULL);
		p->preparing = 1;
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
		db->backoff_ms = 100;
		db->reason[0] = '\0';
		db->ev_read = event_new(db->base, PQsocket(db->conn), EV_READ | EV_PERSIST, on_read,
					db);
		event_add(db->ev_read, NULL);
		log_info("database connected", NULL);
		if (db->connect_cb)
			db->connect_cb(db->connect_arg);
		db_send_next(db);
		return;
	default:
		db_lost(db, PQerrorMessage(db->conn));
		return;
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

void db_async_free(struct db_async *db)
{
	if (!db)
		return;
	drop_events(db);
	if (db->conn)
		PQfinish(db->conn);
	if (db->last)
		PQclear(db->last);
	while (db->head) {
		struct pending *p = db->head;
		db->head = p->next;
		p->cb(p->arg, NULL, "database connection closed");
		pending_free(p);
	}
	defer_cb(-1, 0, db);
	event_free(db->ev_retry);
	event_free(db->ev_defer);
	prepared_clear(db);
	free(db->dsn);
	free(db);
}

void db_async_query(struct db_async *db, const char *sql, int nparams, const char *const *params,
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
	if (db->state != DB_READY) {
		fail_later(db, p, db->reason[0] ? db->reason : "database unavailable");
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
	void (*cb)(void *, struct db_async *, const char *);
	void *arg;
};

struct db_pool;
static void pool_kick(struct db_pool *p, int delay_ms);

struct db_pool {
	struct event_base *base;
	struct db_async **conns;
	int size;
	int lent;
	struct waiter *wait_head, *wait_tail;
	struct event *ev_grant;
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

static void pool_kick(struct db_pool *p, int delay_ms)
{
	struct timeval tv = {0, delay_ms * 1000};
	evtimer_add(p->ev_grant, &tv);
}

static void pool_grant(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_pool *p = arg;
	while (p->wait_head) {
		if (!db_pool_is_up(p)) {
			struct waiter *w = p->wait_head;
			p->wait_head = w->next;
			if (!p->wait_head)
				p->wait_tail = NULL;
			w->cb(w->arg, NULL, db_pool_reason(p));
			free(w);
			continue;
		}
		if (p->lent >= p->size - 1 && p->size > 1)
			return;
		struct db_async *c = pool_pick(p);
		if (!c) {
			pool_kick(p, 20); /* up ones are all lent: look again shortly */
			return;
		}
		struct waiter *w = p->wait_head;
		p->wait_head = w->next;
		if (!p->wait_head)
			p->wait_tail = NULL;
		c->reserved = 1;
		p->lent++;
		w->cb(w->arg, c, NULL);
		free(w);
	}
}

struct db_pool *db_pool_new(struct event_base *base, const char *dsn, int size,
			    long long reconnect_max_ms)
{
	struct db_pool *p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->size = size < 1 ? 1 : size;
	p->conns = xcalloc((size_t)p->size, sizeof(*p->conns));
	for (int i = 0; i < p->size; i++)
		p->conns[i] = db_async_new(base, dsn, reconnect_max_ms);
	p->ev_grant = evtimer_new(base, pool_grant, p);
	return p;
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	while (p->wait_head) {
		struct waiter *w = p->wait_head;
		p->wait_head = w->next;
		w->cb(w->arg, NULL, "database pool closed");
		free(w);
	}
	for (int i = 0; i < p->size; i++)
		db_async_free(p->conns[i]);
	event_free(p->ev_grant);
	free(p->conns);
	free(p);
}

void db_pool_query(struct db_pool *p, const char *sql, int nparams, const char *const *params,
		   db_result_cb cb, void *arg)
{
	struct db_async *c = pool_pick(p);
	if (!c) {
		/* none up (or all lent): the first connection reports why */
		for (int i = 0; i < p->size && !c; i++)
			if (!p->conns[i]->reserved)
				c = p->conns[i];
		if (!c)
			c = p->conns[0];
	}
	db_async_query(c, sql, nparams, params, cb, arg);
}

void db_pool_acquire(struct db_pool *p, void (*cb)(void *, struct db_async *, const char *),
		     void *arg)
{
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	if (p->wait_tail)
		p->wait_tail->next = w;
	else
		p->wait_head = w;
	p->wait_tail = w;
	pool_kick(p, 0);
}

void db_pool_release(struct db_pool *p, struct db_async *conn)
{
	if (!conn->reserved)
		return;
	conn->reserved = 0;
	p->lent--;
	if (p->wait_head)
		pool_kick(p, 0);
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
			return p->conns[i]->reason[0] ? p->conns[i]->reason : "database unavailable";
	return "";
}

int db_pool_size(const struct db_pool *p)
{
	return p->size;
}

int db_async_is_up(const struct db_async *db)
{
	return db->state == DB_READY;
}

const char *db_async_reason(const struct db_async *db)
{
	return db->state == DB_READY ? "" : db->reason;
}
