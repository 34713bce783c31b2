/* event_delivery.c — see event_delivery.h. */
#include "event_delivery.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "crypto.h"
#include "db.h"
#include "ghl_client.h"
#include "log.h"
#include "vault.h"

#define EVENT_MAX_INFLIGHT 64
#define EVENT_HOLD_MARGIN_MS 5000 /* a claimed row is held this long past the timeout */
#define EVENT_MAX_REPLY (64 * 1024)
#define EVENT_ERROR_MAX 300
#define EVENT_SECRET_COLUMN "event_subscriptions.secret_enc"
#define EVENT_PRUNE_EVERY_MS (3600 * 1000LL) /* the log's retention sweep */
#define EVENT_PRUNE_BATCH "10000"

struct event_delivery {
	struct app *app;
	struct event *ev_poll;
	int inflight;
	int claiming;
	int again; /* claim once more when the current claim ends */
	int stopping;
	int queries;		  /* on the pool: d lives until they return */
	int settling;		  /* the batch sweep is on the pool */
	int64_t pruned_at;	  /* monotonic ms of the last retention sweep */
	struct attempt *attempts; /* in flight, for teardown */
};

struct attempt {
	struct event_delivery *d;
	struct attempt *next;
	struct ghl_client *client;
	char *id;
	int n; /* attempt number (1-based) */
};

/* Due rows, oldest first, none behind an earlier pending event of the same
 * job; each is held ($2 ms) and counted as an attempt before it is sent. */
static const char claim_sql[] =
	"WITH c AS ("
	" SELECT d.id FROM event_deliveries d"
	" WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
	"  AND NOT EXISTS (SELECT 1 FROM event_deliveries e"
	"   WHERE e.subscription_id = d.subscription_id AND e.job_id = d.job_id"
	"    AND e.status = 'pending' AND e.seq < d.seq)"
	" ORDER BY d.next_attempt_at, d.seq LIMIT $1::int FOR UPDATE OF d SKIP LOCKED)"
	" UPDATE event_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),"
	"  next_attempt_at = now() + $2::bigint * interval '1 millisecond'"
	" FROM c, event_subscriptions s WHERE d.id = c.id AND s.id = d.subscription_id"
	" RETURNING d.id, d.agency_id, d.event_id, d.event_type, d.payload, d.attempts, s.url,"
	"  s.secret_enc";

/* $3: delivered; else pending again after $5 ms, or failed once older than $6 ms. */
static const char result_sql[] =
	"UPDATE event_deliveries SET last_status_code = $2::int, last_error = $4,"
	" status = CASE WHEN $3::boolean THEN 'delivered'"
	"  WHEN created_at < now() - $6::bigint * interval '1 millisecond' THEN 'failed'"
	"  ELSE 'pending' END,"
	" delivered_at = CASE WHEN $3::boolean THEN now() ELSE NULL END,"
	" next_attempt_at = now() + $5::bigint * interval '1 millisecond'"
	" WHERE id = $1 AND status = 'pending'";

/* Finished deliveries older than archive_after leave the log, like jobs. */
static const char prune_sql[] =
	"DELETE FROM event_deliveries WHERE id IN (SELECT id FROM event_deliveries"
	" WHERE status <> 'pending' AND created_at < now() - $1::bigint * interval '1 millisecond'"
	" LIMIT " EVENT_PRUNE_BATCH ")";

int event_sign(const char *secret, long long ts, const char *body, size_t len, char *out)
{
	char head[32];
	int hl = snprintf(head, sizeof(head), "%lld.", ts);
	size_t n = (size_t)hl + len;
	char *msg = xmalloc(n + 1);
	memcpy(msg, head, (size_t)hl);
	memcpy(msg + hl, body, len);
	char hex[CRYPTO_SHA256_HEX_LEN];
	int rc = crypto_hmac_sha256_hex(secret, strlen(secret), msg, n, hex);
	free(msg);
	if (rc)
		return -1;
	snprintf(out, EVENT_SIGNATURE_LEN, "v1=%s", hex);
	return 0;
}

static void claim(struct event_delivery *d);

static void ms_tv(long long ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void schedule_poll(struct event_delivery *d, long long ms)
{
	struct timeval tv;
	ms_tv(ms, &tv);
	evtimer_add(d->ev_poll, &tv);
}

static void attempt_unlink(struct event_delivery *d, struct attempt *a)
{
	for (struct attempt **p = &d->attempts; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
	d->inflight--;
}

/* A query came back: 1 when d was freed meanwhile (and is now released). */
static int query_back(struct event_delivery *d)
{
	d->queries--;
	if (d->stopping && d->queries == 0) {
		free(d);
		return 1;
	}
	return d->stopping;
}

/* flags: DB_NOWAIT for the worker's own chores (claims, pruning), which
 * never queue for a connection in front of API requests: the next poll
 * tries again. */
static void query(struct event_delivery *d, int flags, const char *sql, int n,
		  const char *const *params, db_result_cb cb)
{
	d->queries++;
	db_pool_query_flags(d->app->db, flags, sql, n, params, cb, d);
}

static void result_written(void *arg, PGresult *res, const struct err *e)
{
	struct event_delivery *d = arg;
	if (query_back(d))
		return;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		log_error("event delivery: recording an attempt failed (it is retried after its "
			  "hold)",
			  "error", db_why(res, e), NULL);
	claim(d);
}

static void record(struct event_delivery *d, const char *id, int status, int ok, const char *error,
		   int n)
{
	const struct config *cfg = d->app->cfg;
	char code[16], delay[24], age[24];
	snprintf(code, sizeof(code), "%d", status);
	long long wait = ok ? 0
			    : backoff_ms(n, cfg->events_retry_base_ms, cfg->events_retry_max_ms, 0,
					 (uint64_t)random());
	snprintf(delay, sizeof(delay), "%lld", wait);
	snprintf(age, sizeof(age), "%lld", cfg->events_max_age_ms);
	const char *params[] = {id, status ? code : NULL, ok ? "true" : "false", error, delay, age};
	query(d, 0, result_sql, 6, params, result_written);
}

static void on_reply(void *arg, const struct ghl_response *res)
{
	struct attempt *a = arg;
	struct event_delivery *d = a->d;
	attempt_unlink(d, a);
	if (res->outcome != GHL_CANCELLED && !d->stopping) {
		int ok = res->status >= 200 && res->status < 300;
		char err[EVENT_ERROR_MAX];
		err[0] = 0;
		if (!ok && res->status)
			snprintf(err, sizeof(err), "HTTP %d", res->status);
		else if (!ok)
			snprintf(err, sizeof(err), "%s", res->message ? res->message : "no answer");
		record(d, a->id, res->status, ok, ok ? NULL : err, a->n);
		if (!ok)
			log_info("event delivery failed; retried later", "delivery_id", a->id,
				 "error", err, NULL);
	}
	if (!d->stopping) /* else event_delivery_free is freeing it */
		a->client = ghl_client_free(a->client);
	free(a->id);
	free(a);
}

/* Scheme://host[:port] and the rest ("/path?query") of an http(s) URL. */
static int split_url(const char *url, char **origin, char **path, char **query)
{
	const char *rest = NULL;
	if (str_has_prefix(url, "https://"))
		rest = url + 8;
	else if (str_has_prefix(url, "http://"))
		rest = url + 7;
	if (!rest || !*rest)
		return -1;
	size_t hl = strcspn(rest, "/?#");
	*origin = xstrndup(url, (size_t)(rest - url) + hl);
	const char *p = rest + hl;
	size_t pl = strcspn(p, "?#");
	*path = pl && *p == '/' ? xstrndup(p, pl) : xstrdup("/");
	*query = p[pl] == '?' ? xstrndup(p + pl + 1, strcspn(p + pl + 1, "#")) : NULL;
	return 0;
}

/* Send one claimed row (res row i); a failure before the POST is recorded as
 * an attempt like any other. */
static void send_row(struct event_delivery *d, PGresult *res, int i)
{
	const struct config *cfg = d->app->cfg;
	const char *id = PQgetvalue(res, i, 0), *agency = PQgetvalue(res, i, 1);
	const char *event_id = PQgetvalue(res, i, 2), *type = PQgetvalue(res, i, 3);
	const char *body = PQgetvalue(res, i, 4), *url = PQgetvalue(res, i, 6);
	long long n = 1;
	str_to_ll(PQgetvalue(res, i, 5), 1, 1 << 30, &n);
	struct err e;
	char *secret = d->app->vault ? vault_decrypt(d->app->vault, PQgetvalue(res, i, 7), agency,
						     EVENT_SECRET_COLUMN, &e)
				     : NULL;
	if (!secret) {
		log_error("event delivery: the subscription's secret cannot be decrypted",
			  "delivery_id", id, "error", d->app->vault ? e.msg : "no vault", NULL);
		record(d, id, 0, 0, "the subscription's secret cannot be decrypted", (int)n);
		return;
	}
	long long ts = now_wall_ms() / 1000;
	char sig[EVENT_SIGNATURE_LEN];
	int signed_ok = event_sign(secret, ts, body, strlen(body), sig) == 0;
	secret_free(secret);
	char *origin = NULL, *path = NULL, *query = NULL;
	if (!signed_ok || split_url(url, &origin, &path, &query)) {
		record(d, id, 0, 0, signed_ok ? "unusable URL" : "signing failed", (int)n);
		return;
	}
	struct ghl_client_opts o = {
		.api_base = origin,
		.timeout_ms = cfg->events_timeout_ms,
		.rate_budget_off = 1,
		.max_body = EVENT_MAX_REPLY,
		.public_only = !str_eq(cfg->notify_webhook_allow_private, "on")};
	struct ghl_client *c = ghl_client_new(d->app->base, &o, &e);
	if (!c) {
		record(d, id, 0, 0, e.msg, (int)n);
		goto out_free;
	}
	char *headers = xasprintf("X-GHL-Agent-Event: %s\nX-GHL-Agent-Event-Id: %s\n"
				  "X-GHL-Agent-Delivery: %s\nX-GHL-Agent-Timestamp: %lld\n"
				  "X-GHL-Agent-Signature: %s",
				  type, event_id, id, ts, sig);
	struct attempt *a = xcalloc(1, sizeof(*a));
	a->d = d;
	a->client = c;
	a->id = xstrdup(id);
	a->n = (int)n;
	a->next = d->attempts;
	d->attempts = a;
	d->inflight++;
	struct ghl_request rq = {.method = "POST",
				 .path = path,
				 .query = query,
				 .json_body = body,
				 .headers = headers,
				 .version = ""};
	ghl_request_send(c, &rq, on_reply, a);
	free(headers);
out_free:
	free(origin);
	free(path);
	free(query);
}

static void claimed(void *arg, PGresult *res, const struct err *e)
{
	struct event_delivery *d = arg;
	d->claiming = 0;
	if (query_back(d))
		return;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("event delivery: claiming failed", "error", db_why(res, e), NULL);
		return;
	}
	int n = PQntuples(res);
	for (int i = 0; i < n; i++)
		send_row(d, res, i);
	if (d->again || (n > 0 && d->inflight < EVENT_MAX_INFLIGHT)) {
		d->again = 0;
		claim(d);
	}
}

/* Claim what fits in the in-flight cap; one claim at a time per process. */
static void claim(struct event_delivery *d)
{
	if (d->stopping || d->app->stopping || !db_pool_is_up(d->app->db))
		return;
	if (d->claiming) {
		d->again = 1;
		return;
	}
	int room = EVENT_MAX_INFLIGHT - d->inflight;
	if (room <= 0)
		return;
	char lim[16], hold[24];
	snprintf(lim, sizeof(lim), "%d", room);
	snprintf(hold, sizeof(hold), "%lld", d->app->cfg->events_timeout_ms + EVENT_HOLD_MARGIN_MS);
	const char *params[] = {lim, hold};
	d->claiming = 1;
	query(d, DB_NOWAIT, claim_sql, 2, params, claimed);
}

static void pruned(void *arg, PGresult *res, const struct err *e)
{
	struct event_delivery *d = arg;
	if (query_back(d))
		return;
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
		return;
	if (e && e->code == ERR_RETRY) {
		/* it did not run (no connection free): the next tick tries again,
		 * quietly, rather than an hour later */
		d->pruned_at = 0;
		return;
	}
	/* it ran and failed: logged once, tried again in an hour */
	log_warn("event delivery: pruning the delivery log failed", "error", db_why(res, e), NULL);
}

/* At most once an hour per process, and never with archive_after = 0. */
static void maybe_prune(struct event_delivery *d)
{
	int64_t now = now_monotonic_ms();
	long long keep = d->app->cfg->archive_after_ms;
	if (keep <= 0 || (d->pruned_at && now - d->pruned_at < EVENT_PRUNE_EVERY_MS) ||
	    !db_pool_is_up(d->app->db))
		return;
	d->pruned_at = now;
	char ms[24];
	snprintf(ms, sizeof(ms), "%lld", keep);
	const char *params[] = {ms};
	query(d, DB_NOWAIT, prune_sql, 1, params, pruned);
}

/* Batches whose jobs have all finished: completed_at set, and batch.completed
 * emitted in the same statement (so once, whichever process gets there
 * first: the row lock makes the other skip it). */
static const char settle_sql[] =
	"WITH done AS (UPDATE job_batches b SET completed_at = now()"
	" WHERE b.completed_at IS NULL AND NOT EXISTS (SELECT 1 FROM provisioning_jobs j"
	"  WHERE j.batch_id = b.id AND j.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))"
	" RETURNING b.*)"
	" SELECT count(ghl_event_emit(d.agency_id, 'batch.completed', NULL, jsonb_build_object("
	"  'batch', jsonb_build_object('id', d.id, 'agency_id', d.agency_id, 'source', d.source,"
	"   'filename', d.filename, 'total', d.total,"
	"   'created_at', to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
	"   'completed_at', to_char(d.completed_at AT TIME ZONE 'UTC',"
	"    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
	"   'progress', (SELECT jsonb_object_agg(j.status, j.n) FROM (SELECT status, count(*) AS n"
	"    FROM provisioning_jobs WHERE batch_id = d.id GROUP BY status) j)))))"
	" FROM done d";

static void settled(void *arg, PGresult *res, const struct err *e)
{
	struct event_delivery *d = arg;
	d->settling = 0;
	if (query_back(d))
		return;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("event delivery: settling finished batches failed", "error",
			 db_why(res, e), NULL);
}

static void settle_batches(struct event_delivery *d)
{
	if (d->settling || !db_pool_is_up(d->app->db))
		return;
	d->settling = 1;
	query(d, DB_NOWAIT, settle_sql, 0, NULL, settled);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct event_delivery *d = arg;
	claim(d);
	settle_batches(d);
	maybe_prune(d);
	long long ms = d->app->cfg->events_poll_interval_ms;
	schedule_poll(d, ms < 50 ? 50 : ms);
}

struct event_delivery *event_delivery_start(struct app *app)
{
	struct event_delivery *d = xcalloc(1, sizeof(*d));
	d->app = app;
	d->ev_poll = evtimer_new(app->base, on_poll, d);
	schedule_poll(d, 0);
	return d;
}

struct event_delivery *event_delivery_free(struct event_delivery *d)
{
	if (!d)
		return NULL;
	d->stopping = 1;
	event_free(d->ev_poll);
	/* each callback (GHL_CANCELLED) unlinks and frees its attempt */
	while (d->attempts)
		ghl_client_free(d->attempts->client);
	if (d->queries == 0)
		free(d);
	return NULL;
}
