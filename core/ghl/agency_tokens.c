/* agency_tokens.c — agencies' GHL tokens: read, single-flight refresh, sweep.
 * The protocol is described in agency_tokens.h. */
#include "agency_tokens.h"

#include <event2/event.h>
#include <event2/event_struct.h> /* events embedded in their owners */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "vault.h"

#define EXPIRING_SKEW_S 60	 /* agency_tokens_get refreshes tokens this close to expiry */
#define LOCK_WAIT_STEP_MS 100	 /* re-check a row another process holds this often */
#define LOCK_WAIT_EXTRA_MS 10000 /* … for ghl_timeout + this long at most */
#define SWEEP_MAX_PER_PASS 5000	 /* agencies one sweep pass handles at most */
#define DEFAULT_EXPIRES_IN 86399 /* GHL_API.md; used when a reply has no expires_in */
#define SLOT_BUCKETS 256

/* ---- SQL ---------------------------------------------------------------- */

/* clang-format off */
#define ROW_COLS                                                                               \
	"id::text, ghl_agency_id, oauth_access_token_encrypted, oauth_refresh_token_encrypted, " \
	"needs_reconnect, COALESCE(reconnect_reason, ''), deleted_at IS NOT NULL, "             \
	"token_expires_at <= LOCALTIMESTAMP + make_interval(secs => " XSTR(EXPIRING_SKEW_S) ")"
/* clang-format on */
#define XSTR(x) STR(x)
#define STR(x) #x
enum { C_ID, C_COMPANY, C_ACCESS, C_REFRESH, C_RECONNECT, C_REASON, C_DELETED, C_EXPIRING };

static const char sql_read[] = "SELECT " ROW_COLS " FROM agencies WHERE id::text = $1";
static const char sql_lock[] = "SELECT " ROW_COLS
			       " FROM agencies WHERE id::text = $1 FOR UPDATE SKIP LOCKED";
static const char sql_exists[] = "SELECT 1 FROM agencies WHERE id::text = $1";
static const char sql_sweep_next[] =
	"SELECT " ROW_COLS " FROM agencies"
	" WHERE deleted_at IS NULL AND needs_reconnect = false"
	" AND token_expires_at <= LOCALTIMESTAMP + make_interval(secs => $1::double precision)"
	" AND NOT (id = ANY($2::uuid[]))"
	" ORDER BY token_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char sql_store[] =
	"UPDATE agencies SET oauth_access_token_encrypted = $2, oauth_refresh_token_encrypted = $3,"
	" token_expires_at = LOCALTIMESTAMP + make_interval(secs => $4::double precision),"
	" last_refreshed_at = LOCALTIMESTAMP, needs_reconnect = false, reconnect_reason = NULL,"
	" updated_at = LOCALTIMESTAMP WHERE id::text = $1";
static const char sql_mark[] = "UPDATE agencies SET needs_reconnect = true, reconnect_reason = $2,"
			       " updated_at = LOCALTIMESTAMP WHERE id::text = $1";

/* ---- state -------------------------------------------------------------- */

struct slot { /* the hooks' ctx for one agency: lives until the module is freed */
	struct agency_tokens *t;
	char *agency_id;
	struct slot *next;
};

enum op_kind {
	OP_GET,	    /* hand out the token; refresh when it is about to expire */
	OP_REFRESH, /* refresh unless the token differs from the stale one */
	OP_SWEEP,   /* refresh every due agency, one at a time */
	OP_CHECK,   /* start-up: mark agencies whose stored tokens cannot work */
};

struct op {
	struct agency_tokens *t;
	enum op_kind kind;
	struct db_async *conn; /* acquired from the pool, or NULL */
	char *agency_id;       /* OP_GET / OP_REFRESH: the agency asked for */
	char stale_fp[CRYPTO_FINGERPRINT_LEN];
	int has_stale;
	agency_token_fn cb;
	void *arg;
	int64_t deadline_ms; /* give up waiting for another holder of the row lock */
	struct event timer;  /* waiting before retry_fn (op_retry_after) */
	void (*retry_fn)(struct op *op);

	/* the row being worked on (owned copies) */
	char *row_id;
	char *row_company;
	char *new_access; /* plaintext; wiped by op_clear_row */
	enum agency_token_status st;
	char *why;

	/* OP_SWEEP: agencies done in this pass (not picked again) */
	struct buf done_ids; /* "{id,id,...}" being built: ids joined by ',' */
	int ndone;
	int pass_over; /* no due agency left, or the database failed */

	struct op *prev, *next;
};

struct check_waiter { /* agency_tokens_when_checked */
	void (*cb)(void *arg, int ok);
	void *arg;
	struct check_waiter *next;
};

struct agency_tokens {
	struct app *app;
	struct event sweep_timer; /* assigned by agency_tokens_start */
	struct op *sweep;	  /* the pass in progress, or NULL */
	struct op *ops;		  /* every live op */
	int nops;
	int stopping;	  /* agency_tokens_stop ran: no new work */
	int checked;	  /* the start-up check of stored tokens is done */
	struct op *check; /* the check while it runs or waits to retry */
	struct check_waiter *check_waiters;
	int closed; /* agency_tokens_free ran: no more database work */
	struct slot *slots[SLOT_BUCKETS];
	struct agency_tokens_stats stats;
};


const char *agency_token_status_name(enum agency_token_status st)
{
	switch (st) {
	case AGENCY_TOKEN_OK: return "ok";
	case AGENCY_TOKEN_RECONNECT: return "reconnect";
	case AGENCY_TOKEN_NOT_FOUND: return "not_found";
	case AGENCY_TOKEN_RETRYABLE: return "retryable";
	case AGENCY_TOKEN_ERROR: return "error";
	}
	return "?";
}

static void sweep_schedule(struct agency_tokens *t, long long ms);
static void op_lock_attempt(struct op *op);
static void sweep_next(struct op *op);
static void release_module(struct agency_tokens *t);

/* ---- op lifetime ---------------------------------------------------------- */

static void on_op_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct op *op = arg;
	op->retry_fn(op);
}

/* Calls fn(op) from the loop after ms: another holder of the row lock, or
 * the database, gets time before op tries again. */
static void op_retry_after(struct op *op, long long ms, void (*fn)(struct op *op))
{
	op->retry_fn = fn;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(&op->timer, &tv);
}

/* Whether op sleeps on its retry timer. */
static int op_waiting(const struct op *op)
{
	return evtimer_pending(&op->timer, NULL);
}

static struct op *op_new(struct agency_tokens *t, enum op_kind kind)
{
	struct op *op = xcalloc(1, sizeof(*op));
	op->t = t;
	op->kind = kind;
	evtimer_assign(&op->timer, t->app->base, on_op_timer, op);
	buf_init(&op->done_ids);
	op->next = t->ops;
	if (t->ops)
		t->ops->prev = op;
	t->ops = op;
	t->nops++;
	return op;
}

static void op_clear_row(struct op *op)
{
	free(op->row_id);
	free(op->row_company);
	secret_free(op->new_access);
	free(op->why);
	op->row_id = op->row_company = op->new_access = op->why = NULL;
	op->st = AGENCY_TOKEN_OK;
}

/* why may point into op->why itself. */
static void op_set(struct op *op, enum agency_token_status st, const char *why)
{
	char *copy = why ? xstrdup(why) : NULL;
	op->st = st;
	free(op->why);
	op->why = copy;
}

/* Answers everyone waiting for the start-up check (ok: it is done). */
static void check_notify(struct agency_tokens *t, int ok)
{
	struct check_waiter *w = t->check_waiters;
	t->check_waiters = NULL;
	while (w) {
		struct check_waiter *next = w->next;
		w->cb(w->arg, ok);
		free(w);
		w = next;
	}
}

/* Unlinks and frees op; the module goes too when it was freed meanwhile. */
static void op_free(struct op *op)
{
	struct agency_tokens *t = op->t;
	evtimer_del(&op->timer);
	op_clear_row(op);
	free(op->agency_id);
	buf_clear(&op->done_ids);
	if (op->prev)
		op->prev->next = op->next;
	else
		t->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	t->nops--;
	if (t->sweep == op)
		t->sweep = NULL;
	if (t->check == op) {
		t->check = NULL;
		check_notify(t, t->checked);
	}
	free(op);
	if (t->closed && t->nops == 0)
		release_module(t);
}

/* Reports the result of an OP_GET / OP_REFRESH to its caller and frees it.
 * The connection must have been released (or abandoned) already. */
static void op_finish(struct op *op)
{
	struct agency_token tok = {op->row_id ? op->row_id : op->agency_id, op->row_company,
				   op->new_access};
	if (op->st == AGENCY_TOKEN_OK && !op->new_access)
		op_set(op, AGENCY_TOKEN_ERROR, "no token");
	if (op->cb)
		op->cb(op->arg, op->st, op->st == AGENCY_TOKEN_OK ? &tok : NULL,
		       op->st == AGENCY_TOKEN_OK ? NULL : (op->why ? op->why : "failed"));
	op_free(op);
}

static void op_release_conn(struct op *op)
{
	if (op->conn && !op->t->closed)
		db_pool_release(op->t->app->db, op->conn);
	op->conn = NULL;
}

/* The module was freed: finish without touching the database or GHL. */
static void op_abandon(struct op *op)
{
	op->conn = NULL;
	if (op->kind == OP_SWEEP || op->kind == OP_CHECK) {
		op_free(op);
		return;
	}
	op_clear_row(op);
	op_set(op, AGENCY_TOKEN_RETRYABLE, "the agent is shutting down");
	op_finish(op);
}

static int res_ok(const PGresult *res)
{
	if (!res)
		return 0;
	ExecStatusType s = PQresultStatus(res);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static const char *res_why(const PGresult *res, const struct err *e)
{
	if (!res)
		return db_why(NULL, e);
	const char *m = PQresultErrorMessage(res);
	return m && *m ? m : "database error";
}

/* ---- ending a transaction --------------------------------------------------- */

static void after_txn(struct op *op)
{
	if (op->kind == OP_SWEEP) {
		if (op->row_id && op->ndone < SWEEP_MAX_PER_PASS) {
			if (op->ndone)
				buf_putc(&op->done_ids, ',');
			buf_puts(&op->done_ids, op->row_id);
			op->ndone++;
		} else {
			op->pass_over = 1;
		}
		op_clear_row(op);
		sweep_next(op);
		return;
	}
	op_release_conn(op);
	op_finish(op);
}

static void on_end(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res))
		op->pass_over = 1;
	if (!res_ok(res) && op->st == AGENCY_TOKEN_OK) {
		log_error("agency token: commit failed", "agency_id", op->row_id, "error",
			  res_why(res, e), NULL);
		secret_free(op->new_access);
		op->new_access = NULL;
		op_set(op, AGENCY_TOKEN_RETRYABLE,
		       "the database did not store the refreshed token");
	}
	after_txn(op);
}

/* COMMIT (or ROLLBACK) the current transaction with op's result set. */
static void end_txn(struct op *op, int commit, enum agency_token_status st, const char *why)
{
	op_set(op, st, why);
	db_async_query(op->conn, commit ? "COMMIT" : "ROLLBACK", 0, NULL, on_end, op);
}

/* ---- marking an agency for reconnection ----------------------------------- */

static void on_marked(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	enum agency_token_status st = op->st;
	char *why = op->why ? xstrdup(op->why) : NULL;
	if (!res_ok(res))
		log_error("agency token: cannot mark the agency for reconnection", "agency_id",
			  op->row_id, "error", res_why(res, e), NULL);
	end_txn(op, res_ok(res), st, why);
	free(why);
}

static void mark_reconnect_then_commit(struct op *op, const char *reason)
{
	struct agency_tokens *t = op->t;
	t->stats.refused++;
	log_warn("agency needs reconnection", "agency_id", op->row_id, "ghl_agency_id",
		 op->row_company, "reason", reason, NULL);
	char *why = xasprintf(AGENCY_TOKENS_RECONNECT_PREFIX "%s", reason);
	op_set(op, AGENCY_TOKEN_RECONNECT, why);
	free(why);
	const char *p[] = {op->row_id, reason};
	db_async_query(op->conn, sql_mark, 2, p, on_marked, op);
}

/* ---- the refresh itself (row locked) ----------------------------------------- */

static void on_stored(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		log_error("agency token: cannot store the refreshed token", "agency_id", op->row_id,
			  "error", res_why(res, e), NULL);
		secret_free(op->new_access);
		op->new_access = NULL;
		end_txn(op, 0, AGENCY_TOKEN_RETRYABLE,
			"the database did not store the refreshed token");
		return;
	}
	end_txn(op, 1, AGENCY_TOKEN_OK, NULL);
}

static int is_invalid_grant(const struct ghl_response *res)
{
	const char *e = res->json ? json_get_str(res->json, "error") : NULL;
	return str_eq(e, "invalid_grant");
}

static void on_token(void *arg, const struct ghl_response *res, const struct ghl_token_set *tok)
{
	struct op *op = arg;
	struct agency_tokens *t = op->t;
	if (t->closed) { /* cannot happen: the client is freed first */
		op_abandon(op);
		return;
	}
	if (!tok) {
		const char *msg = res->message ? res->message : ghl_outcome_name(res->outcome);
		if (is_invalid_grant(res)) {
			char *reason = xasprintf("GoHighLevel refused the token refresh "
						 "(invalid_grant: %s); connect the agency again "
						 "through /oauth/connect",
						 msg);
			mark_reconnect_then_commit(op, reason);
			free(reason);
			return;
		}
		t->stats.failed++;
		char st[16];
		snprintf(st, sizeof(st), "%d", res->status);
		log_warn("agency token refresh failed", "agency_id", op->row_id, "ghl_agency_id",
			 op->row_company, "status", st, "outcome", ghl_outcome_name(res->outcome),
			 "error", msg, "trace_id", res->trace_id, NULL);
		char *why = xasprintf("token refresh failed: %s", msg);
		end_txn(op, 0,
			res->outcome == GHL_PERMANENT ? AGENCY_TOKEN_ERROR : AGENCY_TOKEN_RETRYABLE,
			why);
		free(why);
		return;
	}
	struct err e;
	char *access = vault_encrypt(t->app->vault, tok->access_token, op->row_id,
				     AGENCY_TOKENS_COL_ACCESS, &e);
	char *refresh = access && tok->refresh_token
				? vault_encrypt(t->app->vault, tok->refresh_token, op->row_id,
						AGENCY_TOKENS_COL_REFRESH, &e)
				: NULL;
	if (!refresh) {
		/* GHL rotated the pair; without storing it the agency is lost */
		if (access && !tok->refresh_token)
			err_set(&e, "the token reply has no refresh_token");
		free(access);
		log_error("agency token: cannot encrypt the refreshed tokens", "agency_id",
			  op->row_id, "error", e.msg, NULL);
		char *reason = xasprintf("the refreshed token could not be stored (%s); connect "
					 "the agency again through /oauth/connect",
					 e.msg);
		mark_reconnect_then_commit(op, reason);
		free(reason);
		return;
	}
	t->stats.refreshes++;
	op->new_access = xstrdup(tok->access_token);
	long long expires = tok->expires_in > 0 ? tok->expires_in : DEFAULT_EXPIRES_IN;
	char fp[CRYPTO_FINGERPRINT_LEN], exp[24];
	crypto_token_fingerprint(tok->access_token, fp);
	snprintf(exp, sizeof(exp), "%lld", expires);
	log_info("agency token refreshed", "agency_id", op->row_id, "ghl_agency_id",
		 op->row_company, "token", fp, "expires_in", exp, "trace_id", res->trace_id, NULL);
	const char *p[] = {op->row_id, access, refresh, exp};
	db_async_query(op->conn, sql_store, 4, p, on_stored, op);
	free(access);
	free(refresh);
}

/* The row is locked; exchange its refresh token. */
static void start_refresh(struct op *op, const char *refresh_enc)
{
	struct agency_tokens *t = op->t;
	if (vault_needs_rewrap(t->app->vault, refresh_enc) < 0) {
		mark_reconnect_then_commit(op, "no usable refresh token is stored; connect the "
					       "agency through /oauth/connect");
		return;
	}
	struct err e;
	char *rt = vault_decrypt(t->app->vault, refresh_enc, op->row_id, AGENCY_TOKENS_COL_REFRESH,
				 &e);
	if (!rt) {
		t->stats.failed++;
		log_error("agency token: cannot decrypt the refresh token", "agency_id", op->row_id,
			  "error", e.msg, NULL);
		char *why = xasprintf("cannot decrypt the stored refresh token: %s", e.msg);
		end_txn(op, 0, AGENCY_TOKEN_ERROR, why);
		free(why);
		return;
	}
	struct ghl_oauth_form f = {
		.grant_type = "refresh_token",
		.refresh_token = rt,
		.user_type = "Company",
	};
	ghl_oauth_token(t->app->ghl, &f, on_token, op); /* copies the form */
	secret_free(rt);
}

/* ---- OP_GET / OP_REFRESH ----------------------------------------------------- */

static void ignore_result(void *arg, PGresult *res, const struct err *e)
{
	(void)arg;
	(void)res;
	(void)e;
}

/* Another transaction holds the row: wait for it, then look again. */
static void wait_for_holder(struct op *op)
{
	op_release_conn(op);
	op_clear_row(op);
	if (now_monotonic_ms() > op->deadline_ms || op->t->stopping) {
		op_set(op, AGENCY_TOKEN_RETRYABLE,
		       "another request is refreshing this agency's token and has not finished");
		op_finish(op);
		return;
	}
	op_retry_after(op, LOCK_WAIT_STEP_MS, op_lock_attempt);
}

static void on_exists(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		end_txn(op, 0, AGENCY_TOKEN_RETRYABLE, res_why(res, e));
		return;
	}
	if (PQntuples(res) == 0) {
		char *why = xasprintf("no agency with id %s", op->agency_id);
		end_txn(op, 0, AGENCY_TOKEN_NOT_FOUND, why);
		free(why);
		return;
	}
	/* locked by someone else: end this transaction, then wait */
	op_set(op, AGENCY_TOKEN_OK, NULL);
	db_async_query(op->conn, "ROLLBACK", 0, NULL, ignore_result, NULL);
	wait_for_holder(op);
}

/* Decide, for a row that is ours (locked or, for OP_GET, just read), whether
 * the current token can be handed out. Returns 1 and sets op->new_access
 * when it can, 0 when a refresh is needed, -1 when op's result is set. */
static int use_current(struct op *op, const PGresult *res)
{
	struct agency_tokens *t = op->t;
	if (!strcmp(PQgetvalue(res, 0, C_DELETED), "t")) {
		char *why = xasprintf("agency %s was uninstalled from GoHighLevel", op->row_id);
		op_set(op, AGENCY_TOKEN_NOT_FOUND, why);
		free(why);
		return -1;
	}
	if (!strcmp(PQgetvalue(res, 0, C_RECONNECT), "t")) {
		const char *r = PQgetvalue(res, 0, C_REASON);
		char *why = xasprintf(AGENCY_TOKENS_RECONNECT_PREFIX "%s",
				      *r ? r : "connect it through /oauth/connect");
		op_set(op, AGENCY_TOKEN_RECONNECT, why);
		free(why);
		return -1;
	}
	int expiring = !strcmp(PQgetvalue(res, 0, C_EXPIRING), "t");
	if (op->kind == OP_REFRESH && !op->has_stale)
		return 0;
	const char *enc = PQgetvalue(res, 0, C_ACCESS);
	if (vault_needs_rewrap(t->app->vault, enc) < 0)
		return 0; /* nothing usable stored: the refresh path decides */
	struct err e;
	char *plain = vault_decrypt(t->app->vault, enc, op->row_id, AGENCY_TOKENS_COL_ACCESS, &e);
	if (!plain) {
		char *why = xasprintf("cannot decrypt the stored access token: %s", e.msg);
		log_error("agency token: cannot decrypt the access token", "agency_id", op->row_id,
			  "error", e.msg, NULL);
		op_set(op, AGENCY_TOKEN_ERROR, why);
		free(why);
		return -1;
	}
	int usable = !expiring;
	if (usable && op->kind == OP_REFRESH) {
		char fp[CRYPTO_FINGERPRINT_LEN];
		crypto_token_fingerprint(plain, fp);
		usable = strcmp(fp, op->stale_fp) != 0; /* someone already replaced it */
	}
	if (!usable) {
		secret_free(plain);
		return 0;
	}
	op->new_access = plain;
	op_set(op, AGENCY_TOKEN_OK, NULL);
	return 1;
}

static void take_row(struct op *op, const PGresult *res)
{
	op_clear_row(op);
	op->row_id = xstrdup(PQgetvalue(res, 0, C_ID));
	op->row_company = xstrdup(PQgetvalue(res, 0, C_COMPANY));
}

static void on_locked(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		op->pass_over = 1;
		end_txn(op, 0, AGENCY_TOKEN_RETRYABLE, res_why(res, e));
		return;
	}
	if (PQntuples(res) == 0 && op->kind == OP_SWEEP) {
		op->pass_over = 1; /* nothing due (or everything due is locked by others) */
		end_txn(op, 1, AGENCY_TOKEN_OK, NULL);
		return;
	}
	if (PQntuples(res) == 0) {
		const char *p[] = {op->agency_id};
		db_async_query(op->conn, sql_exists, 1, p, on_exists, op);
		return;
	}
	take_row(op, res);
	if (op->kind == OP_SWEEP) {
		start_refresh(op, PQgetvalue(res, 0, C_REFRESH));
		return;
	}
	int u = use_current(op, res);
	if (u != 0) {
		end_txn(op, 1, op->st, op->why);
		return;
	}
	start_refresh(op, PQgetvalue(res, 0, C_REFRESH));
}

static void on_begin(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		op->pass_over = 1;
		op_set(op, AGENCY_TOKEN_RETRYABLE, res_why(res, e));
		after_txn(op);
		return;
	}
	if (op->kind == OP_SWEEP) {
		char margin[32];
		snprintf(margin, sizeof(margin), "%.3f",
			 (double)op->t->app->cfg->token_refresh_margin_ms / 1000.0);
		char *ids = xasprintf("{%s}", buf_cstr(&op->done_ids));
		const char *p[] = {margin, ids};
		db_async_query(op->conn, sql_sweep_next, 2, p, on_locked, op);
		free(ids);
		return;
	}
	const char *p[] = {op->agency_id};
	db_async_query(op->conn, sql_lock, 1, p, on_locked, op);
}

static void on_conn(void *arg, struct db_async *conn, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!conn) {
		op_set(op, AGENCY_TOKEN_RETRYABLE, db_why(NULL, e));
		if (op->kind == OP_SWEEP) {
			struct agency_tokens *t = op->t;
			log_warn("token refresh sweep skipped", "error", op->why, NULL);
			op_free(op);
			sweep_schedule(t, -1);
			return;
		}
		op_finish(op);
		return;
	}
	op->conn = conn;
	db_async_query(conn, "BEGIN", 0, NULL, on_begin, op);
}

static void op_lock_attempt(struct op *op)
{
	db_pool_acquire(op->t->app->db, on_conn, op);
}

/* OP_GET first reads the row without a lock: most tokens are not expiring. */
static void on_read(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		op_set(op, AGENCY_TOKEN_RETRYABLE, res_why(res, e));
		op_finish(op);
		return;
	}
	if (PQntuples(res) == 0) {
		char *why = xasprintf("no agency with id %s", op->agency_id);
		op_set(op, AGENCY_TOKEN_NOT_FOUND, why);
		free(why);
		op_finish(op);
		return;
	}
	take_row(op, res);
	if (use_current(op, res) != 0) {
		op_finish(op);
		return;
	}
	op_clear_row(op);
	op_lock_attempt(op);
}

static void deferred_finish(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	op_finish(arg);
}

static void start_op(struct agency_tokens *t, enum op_kind kind, const char *agency_id,
		     const char *stale, agency_token_fn cb, void *arg)
{
	struct op *op = op_new(t, kind);
	op->agency_id = xstrdup(agency_id ? agency_id : "");
	op->cb = cb;
	op->arg = arg;
	if (stale) {
		crypto_token_fingerprint(stale, op->stale_fp);
		op->has_stale = 1;
	}
	op->deadline_ms = now_monotonic_ms() + t->app->cfg->ghl_timeout_ms + LOCK_WAIT_EXTRA_MS;
	if (t->stopping || t->closed) {
		op_set(op, AGENCY_TOKEN_RETRYABLE, "the agent is shutting down");
		if (t->closed) {
			op_finish(op);
			return;
		}
		struct timeval zero = {0, 0};
		if (event_base_once(t->app->base, -1, EV_TIMEOUT, deferred_finish, op, &zero))
			op_finish(op);
		return;
	}
	if (kind == OP_GET) {
		const char *p[] = {op->agency_id};
		db_pool_query(t->app->db, sql_read, 1, p, on_read, op);
		return;
	}
	op_lock_attempt(op);
}

void agency_tokens_get(struct agency_tokens *t, const char *agency_id, agency_token_fn cb,
		       void *arg)
{
	start_op(t, OP_GET, agency_id, NULL, cb, arg);
}

void agency_tokens_refresh(struct agency_tokens *t, const char *agency_id, const char *stale_token,
			   agency_token_fn cb, void *arg)
{
	start_op(t, OP_REFRESH, agency_id, stale_token, cb, arg);
}

/* ---- the sweep ------------------------------------------------------------- */

/* The next agency of the pass, in a new transaction on the same connection. */
static void sweep_next(struct op *op)
{
	struct agency_tokens *t = op->t;
	if (op->st != AGENCY_TOKEN_OK && op->st != AGENCY_TOKEN_RECONNECT)
		log_debug("token refresh sweep: agency skipped", "why", op->why, NULL);
	if (t->stopping || !op->conn || op->pass_over) {
		op_release_conn(op);
		op_free(op);
		sweep_schedule(t, -1);
		return;
	}
	op_set(op, AGENCY_TOKEN_OK, NULL);
	db_async_query(op->conn, "BEGIN", 0, NULL, on_begin, op);
}

static void on_sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agency_tokens *t = arg;
	if (t->sweep || t->stopping)
		return;
	t->stats.sweeps++;
	t->sweep = op_new(t, OP_SWEEP);
	op_lock_attempt(t->sweep);
}

/* ms < 0: after token_refresh_interval. */
static void sweep_schedule(struct agency_tokens *t, long long ms)
{
	if (t->stopping || t->closed || !event_initialized(&t->sweep_timer))
		return;
	if (ms < 0)
		ms = t->app->cfg->token_refresh_interval_ms;
	if (ms < 10)
		ms = 10;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(&t->sweep_timer, &tv);
}

/* ---- hooks for the GHL client ------------------------------------------------ */

struct hook_call {
	void (*done)(void *done_arg, const char *new_token, const struct err *e);
	void *done_arg;
};

static void hook_result(void *arg, enum agency_token_status st, const struct agency_token *tok,
			const char *why)
{
	struct hook_call *h = arg;
	if (st == AGENCY_TOKEN_OK) {
		h->done(h->done_arg, tok->access_token, NULL);
	} else {
		struct err e;
		err_setc(&e,
			 st == AGENCY_TOKEN_RETRYABLE	? ERR_RETRY
			 : st == AGENCY_TOKEN_NOT_FOUND ? ERR_NOT_FOUND
							: ERR_FAIL,
			 "%s", why ? why : "");
		h->done(h->done_arg, NULL, &e);
	}
	free(h);
}

static void hook_refresh(void *ctx, const char *stale_token,
			 void (*done)(void *done_arg, const char *new_token, const struct err *e),
			 void *done_arg)
{
	struct slot *s = ctx;
	struct hook_call *h = xcalloc(1, sizeof(*h));
	h->done = done;
	h->done_arg = done_arg;
	agency_tokens_refresh(s->t, s->agency_id, stale_token, hook_result, h);
}

static unsigned slot_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SLOT_BUCKETS;
}

void agency_tokens_hooks(struct agency_tokens *t, const char *agency_id,
			 struct ghl_token_hooks *out)
{
	unsigned b = slot_hash(agency_id);
	struct slot *s = t->slots[b];
	while (s && strcmp(s->agency_id, agency_id))
		s = s->next;
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->t = t;
		s->agency_id = xstrdup(agency_id);
		s->next = t->slots[b];
		t->slots[b] = s;
	}
	out->refresh = hook_refresh;
	out->ctx = s;
}

/* ---- the start-up check of stored tokens ------------------------------------- */

/* Agencies whose stored tokens cannot work (a placeholder such as the demo
 * seed's, or a value no configured key decrypts) are marked needs_reconnect
 * with a reason starting with CHECK_REASON, so that GET /agencies shows it
 * before a job fails on it. A later start whose keys decrypt them again (a key
 * was missing from token_keys) clears that mark; other reasons (GHL refused a
 * refresh) are left alone. Rows are changed only while they still hold the
 * refresh token that was checked: a connection made meanwhile wins. */
#define CHECK_REASON "stored tokens unusable: "
#define CHECK_RETRY_MS 500

static const char sql_check_read[] =
	"SELECT id::text, oauth_access_token_encrypted, oauth_refresh_token_encrypted,"
	" needs_reconnect FROM agencies WHERE deleted_at IS NULL"
	" AND (NOT needs_reconnect OR reconnect_reason LIKE '" CHECK_REASON "%')";
static const char sql_check_store[] =
	"UPDATE agencies a SET needs_reconnect = x.mark,"
	" reconnect_reason = CASE WHEN x.mark THEN x.reason END, updated_at = LOCALTIMESTAMP"
	" FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, refresh text, mark boolean, reason text)"
	" WHERE a.id = x.id AND a.oauth_refresh_token_encrypted = x.refresh"
	" AND a.deleted_at IS NULL AND a.needs_reconnect <> x.mark"
	" AND (x.mark OR a.reconnect_reason LIKE '" CHECK_REASON "%')";

/* Why the stored pair cannot work (malloc'd), or NULL when it can. An access
 * token that is not a vault value is fine: the first use refreshes it. */
static char *unusable_why(const struct vault *v, const char *agency_id, const char *access,
			  const char *refresh)
{
	if (vault_needs_rewrap(v, refresh) < 0)
		return xstrdup(CHECK_REASON "no encrypted refresh token is stored (a placeholder); "
					    "connect the agency through /oauth/connect");
	const char *const names[] = {"refresh", "access"};
	const char *const values[] = {refresh, access};
	const char *const columns[] = {AGENCY_TOKENS_COL_REFRESH, AGENCY_TOKENS_COL_ACCESS};
	for (int i = 0; i < 2; i++) {
		if (i == 1 && vault_needs_rewrap(v, access) < 0)
			continue;
		struct err e;
		char *plain = vault_decrypt(v, values[i], agency_id, columns[i], &e);
		if (!plain)
			return xasprintf(CHECK_REASON
					 "the stored %s token cannot be decrypted (%s); "
					 "add its key to token_keys, or connect the "
					 "agency again through /oauth/connect",
					 names[i], e.msg);
		secret_free(plain);
	}
	return NULL;
}

static void check_start(struct op *op);

static void check_done(struct op *op)
{
	op->t->checked = 1;
	op_free(op); /* answers the waiters */
}

static void check_resume(struct op *op)
{
	if (op->t->stopping) {
		op_free(op);
		return;
	}
	check_start(op);
}

/* The database failed: try again shortly (it may still be connecting). */
static void check_retry(struct op *op, const char *why)
{
	log_debug("stored token check postponed", "error", why, NULL);
	check_notify(op->t, 0);
	if (op->t->stopping) {
		op_free(op);
		return;
	}
	op_retry_after(op, CHECK_RETRY_MS, check_resume);
}

static void on_check_stored(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		check_retry(op, res_why(res, e));
		return;
	}
	if (*PQcmdTuples(res) && strcmp(PQcmdTuples(res), "0"))
		log_info("stored tokens checked", "agencies_changed", PQcmdTuples(res), NULL);
	check_done(op);
}

static void on_check_read(void *arg, PGresult *res, const struct err *e)
{
	struct op *op = arg;
	if (op->t->closed) {
		op_abandon(op);
		return;
	}
	if (!res_ok(res)) {
		check_retry(op, res_why(res, e));
		return;
	}
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_array_begin(&w);
	int changes = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		char *why = unusable_why(op->t->app->vault, PQgetvalue(res, i, 0),
					 PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
		int marked = !strcmp(PQgetvalue(res, i, 3), "t");
		if (!why == !marked) { /* marked and unusable, or unmarked and fine */
			free(why);
			continue;
		}
		if (why)
			log_warn("agency needs reconnection: its stored tokens cannot be used",
				 "agency_id", PQgetvalue(res, i, 0), "reason", why, NULL);
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, PQgetvalue(res, i, 0));
		jw_key(&w, "refresh");
		jw_string(&w, PQgetvalue(res, i, 2));
		jw_key(&w, "mark");
		jw_bool(&w, why != NULL);
		jw_key(&w, "reason");
		jw_string(&w, why);
		jw_object_end(&w);
		changes++;
		free(why);
	}
	jw_array_end(&w);
	if (changes) {
		const char *p[] = {buf_cstr(&b)};
		db_pool_query(op->t->app->db, sql_check_store, 1, p, on_check_stored, op);
	} else {
		check_done(op);
	}
	buf_clear(&b);
}

static void check_start(struct op *op)
{
	db_pool_query(op->t->app->db, sql_check_read, 0, NULL, on_check_read, op);
}

int agency_tokens_checked(const struct agency_tokens *t)
{
	return t->checked;
}

void agency_tokens_when_checked(struct agency_tokens *t, void (*cb)(void *arg, int ok), void *arg)
{
	if (t->checked || !t->check || t->stopping) {
		cb(arg, t->checked);
		return;
	}
	struct check_waiter *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	w->next = t->check_waiters;
	t->check_waiters = w;
	if (op_waiting(t->check)) { /* waiting to retry: now */
		evtimer_del(&t->check->timer);
		check_start(t->check);
	}
}

/* ---- module ------------------------------------------------------------------ */

struct agency_tokens *agency_tokens_new(struct app *app)
{
	struct agency_tokens *t = xcalloc(1, sizeof(*t));
	t->app = app;
	return t;
}

void agency_tokens_start(struct agency_tokens *t)
{
	if (!t || event_initialized(&t->sweep_timer))
		return;
	evtimer_assign(&t->sweep_timer, t->app->base, on_sweep_tick, t);
	sweep_schedule(t, 0);
	t->check = op_new(t, OP_CHECK);
	check_start(t->check);
}

void agency_tokens_stop(struct agency_tokens *t, long long deadline_ms)
{
	if (!t || t->stopping)
		return;
	t->stopping = 1;
	if (event_initialized(&t->sweep_timer))
		evtimer_del(&t->sweep_timer);
	int64_t end = now_monotonic_ms() + (deadline_ms > 0 ? deadline_ms : 0);
	if (t->nops) {
		char n[16];
		snprintf(n, sizeof(n), "%d", t->nops);
		log_info("waiting for token refreshes in flight", "count", n, NULL);
	}
	while (t->nops > 0 && now_monotonic_ms() < end)
		event_base_loop(t->app->base, EVLOOP_ONCE);
	if (t->nops > 0)
		log_warn("token refreshes still in flight at shutdown", NULL);
}

static void release_module(struct agency_tokens *t)
{
	for (int i = 0; i < SLOT_BUCKETS; i++) {
		struct slot *s = t->slots[i];
		while (s) {
			struct slot *n = s->next;
			free(s->agency_id);
			free(s);
			s = n;
		}
	}
	free(t);
}

struct agency_tokens *agency_tokens_free(struct agency_tokens *t)
{
	if (!t)
		return NULL;
	if (!t->stopping)
		agency_tokens_stop(t, 0);
	/* ops waiting on a timer would never wake up: finish them now */
	for (struct op *op = t->ops, *next; op; op = next) {
		next = op->next;
		if (op_waiting(op))
			op_abandon(op);
	}
	t->closed = 1;
	if (t->nops == 0)
		release_module(t);
	return NULL;
}

void agency_tokens_get_stats(const struct agency_tokens *t, struct agency_tokens_stats *out)
{
	*out = t->stats;
}
