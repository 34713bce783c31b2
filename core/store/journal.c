/* journal.c — batched, ordered, fenced writes of job state; see journal.h. */
#include "journal.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

#define JOURNAL_MAX_BATCH 4000
/* Connections the journal writes on, each with its own batch in flight. A
 * job always goes to the same lane (by its id), so its rows still commit in
 * order; lanes let PostgreSQL use more than one core for the journal, which
 * was the drain's bottleneck with one connection (issue 15). Four, not two:
 * on the shared 2-core machine the drain moved 1,745-2,217 -> 2,615-3,156
 * jobs/s (back-to-back, load ~15: PostgreSQL's share of the cores grows with
 * its busy backends); eight moved nothing more and cost more CPU per job. */
#define JOURNAL_LANES 4

struct jlog {
	char *job_id, *step, *status, *details;
};

struct jcb {
	journal_done_fn fn;
	void *arg;
};

struct jupd {
	char *job_id;
	char *status, *error_message, *location_id, *context_json;
	int set_error, retry_count, release, finished, attempt;
	char *started_at;
	long long delay_ms;
	struct jcb *cbs;
	size_t ncbs;
};

struct batch {
	struct jlog *logs;
	size_t nlogs, caplogs;
	struct jupd *upds;
	size_t nupds, capupds;
	/* job id -> index into upds (open addressing, size a power of two) */
	int *slots;
	size_t nslots;
	/* job_requests rows: JSON objects, comma-separated */
	struct buf reqs;
	size_t nreqs;
};

struct lane {
	struct journal *journal;
	struct db_async *db;
	struct batch next;   /* accumulating */
	struct batch flight; /* sent, waiting for the result */
	int busy;
	struct event *ev_flush;
	struct event *ev_retry;
	long long batches, nlogs, nupdates;
	/* releases the row turned into CANCELLED (FLUSH_CANCEL_WINS), by the
	 * status the runner had asked for */
	long long cancelled_retrying, cancelled_pending;
};

struct journal {
	struct event_base *base;
	char *owner;
	struct lane lanes[JOURNAL_LANES];
	void (*idle_cb)(void *);
	void *idle_arg;
	void (*released_cb)(void *);
	void *released_arg;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static void batch_free_items(struct batch *b)
{
	for (size_t i = 0; i < b->nlogs; i++) {
		free(b->logs[i].job_id);
		free(b->logs[i].step);
		free(b->logs[i].status);
		free(b->logs[i].details);
	}
	for (size_t i = 0; i < b->nupds; i++) {
		struct jupd *u = &b->upds[i];
		free(u->job_id);
		free(u->status);
		free(u->error_message);
		free(u->location_id);
		free(u->context_json);
		free(u->started_at);
		free(u->cbs);
	}
	b->nlogs = 0;
	b->nupds = 0;
	buf_reset(&b->reqs);
	b->nreqs = 0;
	if (b->slots)
		memset(b->slots, 0xff, b->nslots * sizeof(int));
}

static void batch_release(struct batch *b)
{
	batch_free_items(b);
	free(b->logs);
	free(b->upds);
	free(b->slots);
	buf_clear(&b->reqs);
	memset(b, 0, sizeof(*b));
}

static void rehash(struct batch *b)
{
	size_t n = 256;
	while (n < (b->nupds + 2) * 2)
		n *= 2;
	free(b->slots);
	b->slots = xmalloc(n * sizeof(int));
	memset(b->slots, 0xff, n * sizeof(int));
	b->nslots = n;
	for (size_t i = 0; i < b->nupds; i++) {
		size_t h = hash_str(b->upds[i].job_id) & (n - 1);
		while (b->slots[h] >= 0)
			h = (h + 1) & (n - 1);
		b->slots[h] = (int)i;
	}
}

static struct jupd *find_or_add(struct batch *b, const char *job_id)
{
	if ((b->nupds + 1) * 2 > b->nslots)
		rehash(b);
	size_t h = hash_str(job_id) & (b->nslots - 1);
	while (b->slots[h] >= 0) {
		struct jupd *u = &b->upds[b->slots[h]];
		if (!strcmp(u->job_id, job_id))
			return u;
		h = (h + 1) & (b->nslots - 1);
	}
	if (b->nupds == b->capupds) {
		b->capupds = b->capupds ? b->capupds * 2 : 64;
		b->upds = xrealloc(b->upds, b->capupds * sizeof(*b->upds));
	}
	struct jupd *u = &b->upds[b->nupds];
	memset(u, 0, sizeof(*u));
	u->job_id = xstrdup(job_id);
	u->retry_count = -1;
	u->delay_ms = -1;
	b->slots[h] = (int)b->nupds++;
	return u;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg);
static void send_flight(struct lane *j);
static void sanitize_json(char *t);

static void schedule_flush(struct lane *j)
{
	if (!j->busy)
		event_active(j->ev_flush, EV_TIMEOUT, 0);
}

/* The lane of a job: always the same one. */
static struct lane *lane_of(struct journal *jr, const char *job_id)
{
	return &jr->lanes[hash_str(job_id) % JOURNAL_LANES];
}

void journal_log(struct journal *jr, const char *job_id, const char *step, const char *status,
		 const char *details_json)
{
	struct lane *j = lane_of(jr, job_id);
	struct batch *b = &j->next;
	if (b->nlogs == b->caplogs) {
		b->caplogs = b->caplogs ? b->caplogs * 2 : 64;
		b->logs = xrealloc(b->logs, b->caplogs * sizeof(*b->logs));
	}
	struct jlog *l = &b->logs[b->nlogs++];
	l->job_id = xstrdup(job_id);
	l->step = xstrdup(step);
	l->status = xstrdup(status);
	l->details = details_json ? xstrdup(details_json) : NULL;
	sanitize_json(l->details);
	schedule_flush(j);
}

void journal_request(struct journal *jr, const char *job_id, const char *record_json)
{
	struct lane *j = lane_of(jr, job_id);
	struct batch *b = &j->next;
	if (b->nreqs)
		buf_putc(&b->reqs, ',');
	size_t at = b->reqs.len;
	buf_puts(&b->reqs, record_json);
	sanitize_json(b->reqs.data + at);
	b->nreqs++;
	schedule_flush(j);
}

static void set_str(char **slot, const char *v)
{
	if (!v)
		return;
	free(*slot);
	*slot = xstrdup(v);
}

void journal_job(struct journal *jr, const char *job_id, const struct job_write *w,
		 journal_done_fn done, void *arg)
{
	struct lane *j = lane_of(jr, job_id);
	struct jupd *u = find_or_add(&j->next, job_id);
	set_str(&u->status, w->status);
	if (w->set_error) {
		free(u->error_message);
		u->error_message = w->error_message ? xstrdup(w->error_message) : NULL;
		u->set_error = 1;
	}
	set_str(&u->location_id, w->location_id);
	set_str(&u->context_json, w->context_json);
	if (w->context_json)
		sanitize_json(u->context_json);
	if (w->retry_count >= 0)
		u->retry_count = w->retry_count;
	if (w->run_at_delay_ms >= 0)
		u->delay_ms = w->run_at_delay_ms;
	u->release |= w->release;
	u->finished |= w->finished;
	if (w->attempt > 0)
		u->attempt = w->attempt;
	set_str(&u->started_at, w->started_at);
	if (done) {
		u->cbs = xrealloc(u->cbs, (u->ncbs + 1) * sizeof(*u->cbs));
		u->cbs[u->ncbs].fn = done;
		u->cbs[u->ncbs].arg = arg;
		u->ncbs++;
	}
	schedule_flush(j);
}

/* PostgreSQL array literal element (text form); NULL -> NULL. */
static void arr_add(struct buf *a, const char *v)
{
	buf_putc(a, a->len > 1 ? ',' : '{');
	if (!v) {
		buf_puts(a, "NULL");
		return;
	}
	buf_putc(a, '"');
	const char *p = v;
	while (*p) {
		size_t run = strcspn(p, "\"\\");
		buf_append(a, p, run);
		p += run;
		if (*p) {
			buf_putc(a, '\\');
			buf_putc(a, *p++);
		}
	}
	buf_putc(a, '"');
}

static void arr_open(struct buf *a)
{
	buf_init(a);
	buf_putc(a, ' '); /* placeholder so arr_add knows the first element */
}

static const char *arr_close(struct buf *a)
{
	if (a->len == 1) {
		buf_reset(a);
		buf_puts(a, "{}");
	} else {
		buf_putc(a, '}');
		memmove(a->data, a->data + 1, a->len); /* drop the placeholder */
		a->len--;
	}
	return buf_cstr(a);
}

/* A job released to run again (RETRYING, or PENDING at shutdown) whose row
 * says a cancel was requested ends CANCELLED instead: the runner learns of a
 * cancel from a notification that can arrive after its step's failure was
 * decided, and the claim skips cancel-requested jobs, so it would wait
 * forever. The row is the truth (a cancel committed while this statement
 * waited for the row is seen too). */
#define FLUSH_CANCEL_WINS "x.release AND j.cancel_requested AND x.status IN ('RETRYING', 'PENDING')"

static const char flush_sql[] =
	"WITH l AS ("
	" INSERT INTO provisioning_logs (job_id, step, status, details_json, \"timestamp\")"
	" SELECT t.job_id, t.step, t.status::provisioning_step_status, t.details::jsonb,"
	"        clock_timestamp()::timestamp"
	" FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY"
	"      AS t(job_id, step, status, details, n)"
	" ORDER BY t.n),"
	/* the fence: our leases, locked for the batch; a release drops it
	 * (the delete locks it just the same, with one WAL record less) */
	" own AS (SELECT k.job_id FROM job_leases k"
	"  JOIN unnest($5::uuid[], $13::bool[]) AS r(id, release) ON k.job_id = r.id"
	"  WHERE NOT r.release AND k.owner = $15 FOR UPDATE OF k),"
	" d AS (DELETE FROM job_leases k USING unnest($5::uuid[], $13::bool[]) AS r(id, release)"
	"  WHERE k.job_id = r.id AND r.release AND k.owner = $15 RETURNING k.job_id),"
	" u AS ("
	" UPDATE provisioning_jobs j SET"
	"  status = CASE WHEN " FLUSH_CANCEL_WINS " THEN 'CANCELLED'"
	"   ELSE COALESCE(x.status::provisioning_job_status, j.status) END,"
	"  error_message = CASE WHEN " FLUSH_CANCEL_WINS " THEN 'cancelled by request'"
	"   WHEN x.set_error THEN x.error_message ELSE j.error_message END,"
	"  location_id = COALESCE(x.location_id, j.location_id),"
	"  context_json = COALESCE(x.context::jsonb, j.context_json),"
	"  retry_count = COALESCE(x.retry_count, j.retry_count),"
	"  run_at = CASE WHEN x.delay_ms IS NULL THEN j.run_at"
	"           ELSE now() + x.delay_ms * interval '1 millisecond' END,"
	"  locked_by = CASE WHEN x.release THEN NULL WHEN x.attempt IS NOT NULL THEN $15"
	"              ELSE j.locked_by END,"
	"  lease_until = CASE WHEN x.release THEN NULL ELSE j.lease_until END,"
	"  attempt = COALESCE(x.attempt, j.attempt),"
	"  started_at = COALESCE(j.started_at, x.started_at::timestamp),"
	"  finished_at = CASE WHEN x.finished OR " FLUSH_CANCEL_WINS " THEN now()"
	"   ELSE j.finished_at END,"
	"  updated_at = now()"
	" FROM unnest($5::uuid[], $6::text[], $7::bool[], $8::text[], $9::text[], $10::text[],"
	"             $11::int[], $12::bigint[], $13::bool[], $14::bool[], $16::int[], $17::text[])"
	"      AS x(id, status, set_error, error_message, location_id, context, retry_count,"
	"           delay_ms, release, finished, attempt, started_at)"
	" WHERE j.id = x.id AND (x.id IN (SELECT job_id FROM own)"
	"  OR x.id IN (SELECT job_id FROM d)) AND j.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
	" RETURNING j.id, CASE WHEN " FLUSH_CANCEL_WINS " THEN x.status END AS cancelled_from)"
	" SELECT id, cancelled_from FROM u";

/* Before flush_sql's CTEs when the batch has job_requests rows ($18): the
 * GHL requests of step runs (journal_request), of jobs still here. A batch
 * without any (a NOOP pipeline's) sends flush_sql alone. */
static const char flush_rq_cte[] =
	"WITH rq AS ("
	" INSERT INTO job_requests (job_id, step_index, attempt, compensate, method, path, status,"
	"  duration_ms, trace_id, error, request_body, response_body, created_at)"
	" SELECT r.job_id, r.step_index, r.attempt, COALESCE(r.compensate, false), r.method, r.path,"
	"  r.status, r.duration_ms, r.trace_id, r.error, r.request_body, r.response_body,"
	"  clock_timestamp()::timestamp"
	" FROM jsonb_to_recordset($18::jsonb) AS r(job_id uuid, step_index int, attempt int,"
	"  compensate bool, method text, path text, status int, duration_ms bigint, trace_id text,"
	"  error text, request_body text, response_body text)"
	" WHERE EXISTS (SELECT 1 FROM provisioning_jobs p WHERE p.id = r.job_id)),";

/* Index of job_id among f's updates (f->slots rebuilt for the flight). */
static int flight_index(const struct batch *f, const char *job_id)
{
	size_t h = hash_str(job_id) & (f->nslots - 1);
	while (f->slots[h] >= 0) {
		if (!strcmp(f->upds[f->slots[h]].job_id, job_id))
			return f->slots[h];
		h = (h + 1) & (f->nslots - 1);
	}
	return -1;
}

/* Runs the flight's callbacks; returns 1 when it released a job (and so
 * dropped its lease, unless the lease was lost already). */
static int finish_flight(struct lane *j, PGresult *res)
{
	struct batch *f = &j->flight;
	int nrows = res ? PQntuples(res) : 0;
	char *applied = xcalloc(f->nupds + 1, 1);
	if (f->nupds) {
		rehash(f);
		for (int r = 0; r < nrows; r++) {
			int i = flight_index(f, PQgetvalue(res, r, 0));
			if (i >= 0)
				applied[i] = 1;
			if (!PQgetisnull(res, r, 1)) {
				if (!strcmp(PQgetvalue(res, r, 1), "RETRYING"))
					j->cancelled_retrying++;
				else
					j->cancelled_pending++;
			}
		}
	}
	int released = 0;
	for (size_t i = 0; i < f->nupds; i++) {
		struct jupd *u = &f->upds[i];
		released |= u->release;
		for (size_t k = 0; k < u->ncbs; k++)
			u->cbs[k].fn(u->cbs[k].arg, applied[i]);
	}
	free(applied);
	j->nlogs += (long long)f->nlogs;
	j->nupdates += nrows;
	j->batches++;
	batch_free_items(f);
	return released;
}


static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_flight(arg);
}

/* PostgreSQL's jsonb cannot hold U+0000: turn "\u0000" escapes into U+FFFD
 * in place (walking escapes, so an escaped backslash is not mistaken). */
static void sanitize_json(char *t)
{
	for (char *p = t; p && *p; p++) {
		if (*p != '\\')
			continue;
		if (p[1] == 'u' && !strncmp(p + 2, "0000", 4))
			memcpy(p + 2, "fffd", 4);
		if (p[1])
			p++; /* skip the escaped character */
	}
}

/* A batch PostgreSQL refused for its data (SQLSTATE class 22) would be
 * refused forever: keep its job states and steps, drop the offending texts. */
static void degrade_flight(struct lane *j, const char *why)
{
	struct batch *f = &j->flight;
	char *note = xasprintf("{\"error\":\"the details could not be stored\"}");
	for (size_t i = 0; i < f->nlogs; i++) {
		free(f->logs[i].details);
		f->logs[i].details = xstrdup(note);
	}
	for (size_t i = 0; i < f->nupds; i++) {
		free(f->upds[i].context_json);
		f->upds[i].context_json = NULL;
	}
	buf_reset(&f->reqs);
	f->nreqs = 0;
	free(note);
	log_error("journal batch refused for its data; details dropped", "error", why, NULL);
}

static void flight_done(void *arg, PGresult *res, const struct err *e)
{
	struct lane *j = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *why = db_why(res, e);
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (state && !strncmp(state, "22", 2)) {
			degrade_flight(j, why ? why : "?");
			send_flight(j);
			return;
		}
		log_error("journal write failed; retrying", "error", why ? why : "?", NULL);
		struct timeval tv = {0, 200000};
		evtimer_add(j->ev_retry, &tv);
		return;
	}
	int released = finish_flight(j, res);
	j->busy = 0;
	if (released && j->journal->released_cb)
		j->journal->released_cb(j->journal->released_arg);
	if (j->next.nlogs || j->next.nupds || j->next.nreqs)
		flush_cb(-1, 0, j);
	else if (j->journal->idle_cb)
		j->journal->idle_cb(j->journal->idle_arg);
}

static void send_flight(struct lane *j)
{
	struct batch *f = &j->flight;
	struct buf a[16];
	for (int i = 0; i < 16; i++)
		arr_open(&a[i]);
	for (size_t i = 0; i < f->nlogs; i++) {
		arr_add(&a[0], f->logs[i].job_id);
		arr_add(&a[1], f->logs[i].step);
		arr_add(&a[2], f->logs[i].status);
		arr_add(&a[3], f->logs[i].details);
	}
	for (size_t i = 0; i < f->nupds; i++) {
		struct jupd *u = &f->upds[i];
		char rc[24], dl[24];
		snprintf(rc, sizeof(rc), "%d", u->retry_count);
		snprintf(dl, sizeof(dl), "%lld", u->delay_ms);
		arr_add(&a[4], u->job_id);
		arr_add(&a[5], u->status);
		arr_add(&a[6], u->set_error ? "t" : "f");
		arr_add(&a[7], u->error_message);
		arr_add(&a[8], u->location_id);
		arr_add(&a[9], u->context_json);
		arr_add(&a[10], u->retry_count >= 0 ? rc : NULL);
		arr_add(&a[11], u->delay_ms >= 0 ? dl : NULL);
		arr_add(&a[12], u->release ? "t" : "f");
		arr_add(&a[13], u->finished ? "t" : "f");
		char at[24];
		snprintf(at, sizeof(at), "%d", u->attempt);
		arr_add(&a[14], u->attempt > 0 ? at : NULL);
		arr_add(&a[15], u->started_at);
	}
	const char *params[18];
	for (int i = 0; i < 14; i++)
		params[i] = arr_close(&a[i]);
	params[14] = j->journal->owner;
	params[15] = arr_close(&a[14]);
	params[16] = arr_close(&a[15]);
	struct buf rq, sql;
	buf_init(&rq);
	buf_init(&sql);
	if (f->nreqs) { /* flush_sql's CTEs after rq's ("WITH " skipped) */
		buf_putc(&rq, '[');
		buf_append(&rq, f->reqs.data, f->reqs.len);
		buf_putc(&rq, ']');
		params[17] = buf_cstr(&rq);
		buf_puts(&sql, flush_rq_cte);
		buf_puts(&sql, flush_sql + strlen("WITH "));
	}
	db_async_query(j->db, f->nreqs ? buf_cstr(&sql) : flush_sql, f->nreqs ? 18 : 17, params,
		       flight_done, j);
	buf_clear(&rq);
	buf_clear(&sql);
	for (int i = 0; i < 16; i++)
		buf_clear(&a[i]);
}

/* Move up to JOURNAL_MAX_BATCH items from next into flight. */
static void take_batch(struct lane *j)
{
	struct batch *n = &j->next, *f = &j->flight;
	size_t nl = n->nlogs < JOURNAL_MAX_BATCH ? n->nlogs : JOURNAL_MAX_BATCH;
	/* A job's state never commits before its log rows: updates go only in a
	 * batch that carries every log row queued so far. */
	size_t nu = nl < n->nlogs ? 0 : n->nupds < JOURNAL_MAX_BATCH ? n->nupds : JOURNAL_MAX_BATCH;
	if (nl == n->nlogs && nu == n->nupds) {
		struct batch tmp = *f; /* swap: flight is empty */
		*f = *n;
		*n = tmp;
		return;
	}
	/* partial: the requests all go now (they need no order with the rest) */
	struct buf rq = f->reqs;
	f->reqs = n->reqs;
	f->nreqs = n->nreqs;
	n->reqs = rq;
	n->nreqs = 0;
	/* partial: copy the first items over (logs keep their order) */
	for (size_t i = 0; i < nl; i++) {
		if (f->nlogs == f->caplogs) {
			f->caplogs = f->caplogs ? f->caplogs * 2 : 64;
			f->logs = xrealloc(f->logs, f->caplogs * sizeof(*f->logs));
		}
		f->logs[f->nlogs++] = n->logs[i];
	}
	memmove(n->logs, n->logs + nl, (n->nlogs - nl) * sizeof(*n->logs));
	n->nlogs -= nl;
	for (size_t i = 0; i < nu; i++) {
		if (f->nupds == f->capupds) {
			f->capupds = f->capupds ? f->capupds * 2 : 64;
			f->upds = xrealloc(f->upds, f->capupds * sizeof(*f->upds));
		}
		f->upds[f->nupds++] = n->upds[i];
	}
	memmove(n->upds, n->upds + nu, (n->nupds - nu) * sizeof(*n->upds));
	n->nupds -= nu;
	rehash(n);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct lane *j = arg;
	if (j->busy || (!j->next.nlogs && !j->next.nupds && !j->next.nreqs))
		return;
	j->busy = 1;
	take_batch(j);
	send_flight(j);
}

struct journal *journal_new(struct event_base *base, const char *dsn, const char *owner,
			    long long reconnect_max_ms)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	j->base = base;
	j->owner = xstrdup(owner);
	for (int i = 0; i < JOURNAL_LANES; i++) {
		struct lane *l = &j->lanes[i];
		l->journal = j;
		l->db = db_async_new(base, dsn, reconnect_max_ms);
		l->ev_flush = event_new(base, -1, 0, flush_cb, l);
		l->ev_retry = evtimer_new(base, retry_cb, l);
	}
	return j;
}

struct journal *journal_free(struct journal *j)
{
	if (!j)
		return NULL;
	for (int i = 0; i < JOURNAL_LANES; i++) {
		struct lane *l = &j->lanes[i];
		db_async_free(l->db);
		event_free(l->ev_flush);
		event_free(l->ev_retry);
		batch_release(&l->next);
		batch_release(&l->flight);
	}
	free(j->owner);
	free(j);
	return NULL;
}

int journal_pending(const struct journal *jr)
{
	int n = 0;
	for (int i = 0; i < JOURNAL_LANES; i++) {
		const struct lane *j = &jr->lanes[i];
		n += (int)(j->next.nlogs + j->next.nupds + j->next.nreqs + j->flight.nlogs +
			   j->flight.nupds + j->flight.nreqs) +
		     j->busy;
	}
	return n;
}

void journal_on_idle(struct journal *j, void (*cb)(void *), void *arg)
{
	j->idle_cb = cb;
	j->idle_arg = arg;
}

void journal_on_released(struct journal *j, void (*cb)(void *), void *arg)
{
	j->released_cb = cb;
	j->released_arg = arg;
}

void journal_get_stats(const struct journal *j, struct journal_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < JOURNAL_LANES; i++) {
		const struct lane *l = &j->lanes[i];
		out->batches += l->batches;
		out->logs += l->nlogs;
		out->updates += l->nupdates;
		out->cancelled_retrying += l->cancelled_retrying;
		out->cancelled_pending += l->cancelled_pending;
	}
}
