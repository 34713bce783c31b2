/* test_events.c — outbound events end to end (issue 16 item 2): a real
 * `ghl-agent serve`, real PostgreSQL, real ghl-sim, and a receiver inside the
 * test (libevent HTTP on its own thread) that fails, then times out, then
 * succeeds. Every event is delivered once with a valid signature, in order
 * per job, none lost across a kill -9 of the agent; private addresses are
 * refused; another agency's people see nothing. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <pthread.h>

#include "crypto.h"
#include "event_delivery.h"
#include "ghl_harness.h"

/* ---- the receiver ------------------------------------------------------- */

enum rx_mode { RX_FAIL, RX_HANG, RX_OK };

struct rx_hit {
	char *event_id, *type, *delivery, *ts, *sig, *body;
	int status; /* what it was answered; 0: never (hung) */
};

static struct {
	pthread_mutex_t mu;
	enum rx_mode mode;
	struct rx_hit *hits;
	size_t n, cap;
	int port;
	struct event_base *base;
	struct evhttp *http;
	pthread_t th;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char *hdr(struct evhttp_request *req, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	return xstrdup(v ? v : "");
}

static void rx_handle(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char *body = xmalloc(len + 1);
	evbuffer_remove(in, body, len);
	body[len] = 0;
	pthread_mutex_lock(&rx.mu);
	enum rx_mode mode = rx.mode;
	if (rx.n == rx.cap) {
		rx.cap = rx.cap ? rx.cap * 2 : 64;
		rx.hits = xrealloc(rx.hits, rx.cap * sizeof(*rx.hits));
	}
	struct rx_hit *h = &rx.hits[rx.n++];
	h->event_id = hdr(req, "X-GHL-Agent-Event-Id");
	h->type = hdr(req, "X-GHL-Agent-Event");
	h->delivery = hdr(req, "X-GHL-Agent-Delivery");
	h->ts = hdr(req, "X-GHL-Agent-Timestamp");
	h->sig = hdr(req, "X-GHL-Agent-Signature");
	h->body = body;
	h->status = mode == RX_FAIL ? 500 : mode == RX_OK ? 200 : 0;
	pthread_mutex_unlock(&rx.mu);
	if (mode == RX_FAIL)
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
	else if (mode == RX_OK)
		evhttp_send_reply(req, 200, "OK", NULL);
	/* RX_HANG: no answer; the agent's events_timeout ends the attempt */
}

static void *rx_main(void *arg)
{
	(void)arg;
	event_base_dispatch(rx.base);
	return NULL;
}

/* The hits of an earlier test (all tests share this process under CK_FORK=no). */
static void rx_forget(void)
{
	for (size_t i = 0; i < rx.n; i++) {
		struct rx_hit *h = &rx.hits[i];
		free(h->event_id);
		free(h->type);
		free(h->delivery);
		free(h->ts);
		free(h->sig);
		free(h->body);
	}
	free(rx.hits);
	rx.hits = NULL;
	rx.n = rx.cap = 0;
}

static void rx_start(enum rx_mode mode)
{
	evthread_use_pthreads();
	rx_forget();
	rx.mode = mode;
	rx.base = event_base_new();
	rx.http = evhttp_new(rx.base);
	evhttp_set_gencb(rx.http, rx_handle, NULL);
	struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(rx.http, "127.0.0.1", 0);
	ck_assert_msg(s != NULL, "receiver: cannot listen");
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl);
	rx.port = ntohs(sin.sin_port);
	/* keep the loop alive while idle */
	struct event *keep = event_new(rx.base, -1, EV_PERSIST, NULL, NULL);
	struct timeval tv = {3600, 0};
	event_add(keep, &tv);
	ck_assert_int_eq(pthread_create(&rx.th, NULL, rx_main, NULL), 0);
}

static void rx_set_mode(enum rx_mode m)
{
	pthread_mutex_lock(&rx.mu);
	rx.mode = m;
	pthread_mutex_unlock(&rx.mu);
}

static size_t rx_count(int status)
{
	pthread_mutex_lock(&rx.mu);
	size_t k = 0;
	for (size_t i = 0; i < rx.n; i++)
		k += rx.hits[i].status == status;
	pthread_mutex_unlock(&rx.mu);
	return k;
}

static void rx_stop(void)
{
	event_base_loopbreak(rx.base);
	pthread_join(rx.th, NULL);
}

/* ---- helpers ---------------------------------------------------------------- */

struct world {
	char *dsn;
	PGconn *db;
	struct hsim sim;
	struct hagent agent;
};

static void world_open(struct world *w, enum rx_mode mode, const char *name)
{
	memset(w, 0, sizeof(*w));
	rx_start(mode);
	w->dsn = tl_create_migrated_db(name);
	w->db = tl_connect(w->dsn);
}

/* Stop the agent (status 0 required) and the receiver; drop the database. */
static void world_close(struct world *w)
{
	hagent_stop(&w->agent);
	unlink(w->agent.log);
	rx_stop();
	PQfinish(w->db);
	tl_drop_db(w->dsn);
	free(w->dsn);
}

/* Wait until sql answers 't'; fail with the deliveries and the log tail. */
static void wait_for(struct world *w, const char *sql, int timeout_ms)
{
	if (tl_sql_wait_true(w->db, sql, timeout_ms))
		return;
	char *rows = tl_sql_value(w->db,
				  "SELECT string_agg(event_type || ' ' || status || ' "
				  "attempts=' || attempts || ' ' || COALESCE(last_error, ''),"
				  " E'\\n' ORDER BY seq) FROM event_deliveries");
	char *log = tl_log_tail(w->agent.log, 3000);
	ck_abort_msg("timed out waiting for: %s\ndeliveries:\n%s\nagent log tail:\n%s", sql, rows,
		     log);
}

/* method path [body] as token; the answer (status and body) in *r. */
static void call(struct world *w, struct tl_resp *r, const char *token, const char *method,
		 const char *path, const char *body)
{
	char *url = hagent_url(&w->agent, path);
	char *authz = xasprintf("Authorization: Bearer %s", token);
	const char *h[] = {"Content-Type: application/json", authz, NULL};
	tl_request(r, method, url, h, body, body ? strlen(body) : 0);
	free(authz);
	free(url);
}

static long status_of(struct world *w, const char *token, const char *method, const char *path,
		      const char *body)
{
	struct tl_resp r;
	call(w, &r, token, method, path, body);
	long st = r.status;
	tl_resp_free(&r);
	return st;
}

/* POST a subscription (asserting 201): its id; the secret into *secret. */
static char *subscribe(struct world *w, const char *token, const char *agency, const char *url,
		       const char *events, char **secret)
{
	char *path = xasprintf("/api/v1/agencies/%s/webhooks", agency);
	char *body = xasprintf("{\"url\":\"%s\",\"events\":%s,\"description\":\"test\"}", url,
			       events);
	struct tl_resp r;
	call(w, &r, token, "POST", path, body);
	ck_assert_msg(r.status == 201, "POST %s: %ld %s", path, r.status, r.body);
	struct json *j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	ck_assert_msg(j && json_get_str(j, "id") && json_get_str(j, "secret"), "answer: %s",
		      r.body);
	ck_assert_msg(str_has_prefix(json_get_str(j, "secret"), "whsec_"), "secret: %s", r.body);
	char *id = xstrdup(json_get_str(j, "id"));
	if (secret)
		*secret = xstrdup(json_get_str(j, "secret"));
	json_free(j);
	tl_resp_free(&r);
	free(body);
	free(path);
	return id;
}

/* Nothing but the encrypted value is stored, and no answer after the
 * creation, nor the agent's log, carries the secret. */
static void assert_secret_kept(struct world *w, const char *agency, const char *sub,
			       const char *secret)
{
	ck_assert_int_eq(tl_sqlf_n(w->db,
				   "SELECT count(*) FROM event_subscriptions WHERE "
				   "secret_enc LIKE '%%%s%%' OR url LIKE '%%%s%%'",
				   secret + 6, secret + 6),
			 0);
	ck_assert_int_eq(tl_sqlf_n(w->db,
				   "SELECT count(*) FROM event_subscriptions WHERE id = '%s'"
				   " AND secret_enc ~ '^b[0-9]+:'",
				   sub),
			 1);
	char *path = xasprintf("/api/v1/agencies/%s/webhooks/%s", agency, sub);
	struct tl_resp r;
	call(w, &r, hagent_admin_token(&w->agent), "GET", path, NULL);
	ck_assert_msg(r.status == 200 && !strstr(r.body, "secret") && !strstr(r.body, secret + 6),
		      "GET %s: %ld %s", path, r.status, r.body);
	tl_resp_free(&r);
	free(path);
	char *log = tl_read_file(w->agent.log);
	ck_assert_msg(!strstr(log, secret + 6), "the secret is in the agent's log");
	free(log);
}

static void sim_faults(struct world *w, int n, int status)
{
	char *body = xasprintf("{\"fail_next\":%d,\"fail_status\":%d}", n, status);
	json_free(hsim_admin(&w->sim, "POST", "faults", body));
	free(body);
}

static const char *const fast[] = {
	"GHL_AGENT_NOTIFY_WEBHOOK_ALLOW_PRIVATE=on", /* the receiver is on 127.0.0.1 */
	"GHL_AGENT_EVENTS_POLL_INTERVAL=100ms",
	"GHL_AGENT_EVENTS_TIMEOUT=1s",
	"GHL_AGENT_EVENTS_RETRY_BASE=200ms",
	"GHL_AGENT_EVENTS_RETRY_MAX=500ms",
	"GHL_AGENT_RETRY_BASE=100ms",
	"GHL_AGENT_RETRY_MAX=300ms",
	"GHL_AGENT_POLL_INTERVAL=100ms",
	"GHL_AGENT_GHL_RETRY_ATTEMPTS=1", /* a GHL 500 makes the job RETRYING */
	"GHL_AGENT_LOG_LEVEL=info",
	NULL};

static char *insert_job(struct world *w, const char *agency, const char *snapshot, int n,
			const char *run_at)
{
	return tl_sqlf(
		w->db,
		"INSERT INTO provisioning_jobs (agency_id, client_data_json, snapshot_id, run_at)"
		" VALUES ('%s', jsonb_build_object('name', 'Events Client %d', 'email',"
		" 'owner%d@events.example', 'first_name', 'Ada', 'last_name', 'Lovelace',"
		" 'external_id', 'crm-%d'), '%s', %s) RETURNING id",
		agency, n, n, n, snapshot, run_at);
}

/* The hit's signature is HMAC-SHA256(secret, timestamp "." body). */
static void assert_signed(const struct rx_hit *h, const char *secret)
{
	char want[EVENT_SIGNATURE_LEN];
	long long ts = 0;
	ck_assert_msg(str_to_ll(h->ts, 1, 1LL << 40, &ts) == 0, "timestamp header: %s", h->ts);
	ck_assert_int_eq(event_sign(secret, ts, h->body, strlen(h->body), want), 0);
	ck_assert_str_eq(h->sig, want);
	/* and independently of event_sign: */
	char *msg = xasprintf("%s.%s", h->ts, h->body);
	char hex[CRYPTO_SHA256_HEX_LEN];
	crypto_hmac_sha256_hex(secret, strlen(secret), msg, strlen(msg), hex);
	ck_assert_msg(!strcmp(h->sig + 3, hex) && str_has_prefix(h->sig, "v1="), "sig %s", h->sig);
	free(msg);
	long long skew = now_wall_ms() / 1000 - ts;
	ck_assert_msg(skew > -60 && skew < 600, "timestamp %lld is far from now", ts);
}

/* ---- failing, timing-out, then succeeding receiver, and a kill -9 ------------- */

START_TEST(every_event_once_in_order_across_failures_and_kill9)
{
	struct world w;
	world_open(&w, RX_FAIL, "events");
	hsim_start(&w.sim, NULL);
	hagent_start(&w.agent, w.dsn, &w.sim, fast);
	char *agency = hconnect_agency(&w.agent, w.db, "co-events-1");
	tl_execf(w.db,
		 "UPDATE agencies SET settings_json = '{\"pipeline\":[{\"step\":"
		 "\"CREATE_LOCATION\"}]}' WHERE id = '%s'",
		 agency);
	char *snap = tl_sqlf(w.db,
			     "INSERT INTO snapshots (agency_id, ghl_snapshot_id, name, niche)"
			     " VALUES ('%s', 'snap-dental-001', 'Dental', 'Dental') RETURNING id",
			     agency);
	const char *admin = hagent_admin_token(&w.agent);
	char *url = xasprintf("http://127.0.0.1:%d/hooks/ghl?source=test", rx.port);
	char *secret = NULL;
	char *sub = subscribe(
		&w, admin, agency, url,
		"[\"job.completed\",\"job.failed\",\"job.cancelled\",\"job.retrying\"]", &secret);

	/* four jobs, two of them failing once at GHL (RETRYING, then COMPLETED) */
	sim_faults(&w, 2, 500);
	char *jobs[6];
	for (int i = 0; i < 4; i++)
		jobs[i] = insert_job(&w, agency, snap, i, "now()");
	for (int i = 0; i < 4; i++)
		hjob_assert_completed(w.db, jobs[i], w.agent.log);
	/* one failing for good (a 422 is permanent) */
	sim_faults(&w, 1, 422);
	jobs[4] = insert_job(&w, agency, snap, 4, "now()");
	char *st = hjob_wait(w.db, jobs[4], 30000, w.agent.log);
	ck_assert_str_eq(st, "FAILED");
	free(st);
	/* one cancelled before it ran */
	jobs[5] = insert_job(&w, agency, snap, 5, "now() + interval '1 hour'");
	char *cancel = xasprintf("/api/v1/jobs/%s/cancel", jobs[5]);
	ck_assert_int_eq(status_of(&w, admin, "POST", cancel, NULL), 200);
	free(cancel);

	/* the outbox holds one event per state change, each written with it */
	long long total = tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries");
	ck_assert_int_eq(total,
			 tl_sqlf_n(w.db, "SELECT sum(retry_count + 1) FROM provisioning_jobs"));
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE event_type ="
					 " 'job.completed'"),
			 4);
	ck_assert_int_ge(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE event_type ="
					 " 'job.retrying'"),
			 1);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM event_deliveries WHERE event_type ="
				   " 'job.failed' AND job_id = '%s'",
				   jobs[4]),
			 1);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM event_deliveries WHERE event_type ="
				   " 'job.cancelled' AND job_id = '%s'",
				   jobs[5]),
			 1);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM event_deliveries WHERE event_type ="
				   " 'job.cancelled' AND payload::jsonb #>> '{data,job,status}'"
				   " = 'CANCELLED'"),
			 1);

	/* the receiver fails: attempts are recorded with its status */
	wait_for(&w, "SELECT count(*) >= 3 FROM event_deliveries WHERE last_status_code = 500",
		 30000);
	/* then it stops answering: attempts end at events_timeout */
	rx_set_mode(RX_HANG);
	wait_for(&w,
		 "SELECT count(*) >= 1 FROM event_deliveries WHERE last_status_code IS NULL"
		 " AND last_error IS NOT NULL",
		 30000);
	ck_assert_int_ge(rx_count(0), 1);
	/* kill -9 mid-flight: nothing is lost, nothing was delivered */
	kill(w.agent.pid, SIGKILL);
	int ws;
	ck_assert_int_eq(tl_wait_exit(w.agent.pid, 10000, &ws), 0);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries"), total);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE status ="
					 " 'pending'"),
			 total);
	ck_assert_int_eq(rx_count(200), 0);

	/* a delivery older than archive_after (90 days) leaves the log */
	char *old = tl_sqlf(w.db,
			    "INSERT INTO event_deliveries (subscription_id, agency_id, event_id,"
			    " event_type, payload, status, created_at) VALUES ('%s', '%s',"
			    " gen_random_uuid(), 'job.completed', '{}', 'delivered',"
			    " now() - interval '100 days') RETURNING id",
			    sub, agency);

	/* the receiver recovers; a new agent resumes the outbox */
	rx_set_mode(RX_OK);
	unlink(w.agent.log);
	hagent_start(&w.agent, w.dsn, &w.sim, fast);
	admin = hagent_admin_token(&w.agent);
	char *all_done = xasprintf("SELECT count(*) = %lld FROM event_deliveries WHERE status ="
				   " 'delivered'",
				   total);
	wait_for(&w, all_done, 60000);
	free(all_done);
	char *gone = xasprintf("SELECT count(*) = 0 FROM event_deliveries WHERE id = '%s'", old);
	wait_for(&w, gone, 60000);
	free(gone);
	free(old);

	/* exactly once each, signed, and in order per job */
	ck_assert_int_eq((long long)rx_count(200), total);
	PGresult *ev = tl_sql(w.db, "SELECT event_id, job_id, event_type, id FROM event_deliveries"
				    " ORDER BY job_id, seq");
	for (int i = 0; i < PQntuples(ev); i++) {
		const char *eid = PQgetvalue(ev, i, 0);
		int seen = 0;
		size_t at = 0;
		pthread_mutex_lock(&rx.mu);
		for (size_t k = 0; k < rx.n; k++) {
			struct rx_hit *h = &rx.hits[k];
			if (h->status != 200 || strcmp(h->event_id, eid))
				continue;
			seen++;
			at = k;
			assert_signed(h, secret);
			ck_assert_str_eq(h->type, PQgetvalue(ev, i, 2));
			ck_assert_str_eq(h->delivery, PQgetvalue(ev, i, 3));
			struct json *b = json_parse(h->body, strlen(h->body),
						    JSON_DEFAULT_MAX_DEPTH, NULL);
			ck_assert_msg(b && str_eq(json_get_str(b, "id"), eid) &&
					      str_eq(json_get_str(b, "type"), h->type) &&
					      str_eq(json_get_str(b, "agency_id"), agency),
				      "body: %s", h->body);
			struct json *job = json_get(json_get(b, "data"), "job");
			ck_assert_msg(job && str_eq(json_get_str(job, "id"), PQgetvalue(ev, i, 1)),
				      "body: %s", h->body);
			json_free(b);
		}
		pthread_mutex_unlock(&rx.mu);
		ck_assert_msg(seen == 1, "event %s delivered %d times", eid, seen);
		/* the next event of the same job arrived later */
		if (i + 1 < PQntuples(ev) &&
		    !strcmp(PQgetvalue(ev, i, 1), PQgetvalue(ev, i + 1, 1))) {
			const char *next = PQgetvalue(ev, i + 1, 0);
			pthread_mutex_lock(&rx.mu);
			for (size_t k = 0; k < at; k++)
				ck_assert_msg(rx.hits[k].status != 200 ||
						      strcmp(rx.hits[k].event_id, next),
					      "event %s of job %s arrived before %s", next,
					      PQgetvalue(ev, i, 1), eid);
			pthread_mutex_unlock(&rx.mu);
		}
	}
	PQclear(ev);
	/* the log: status, attempts, response code (an event held behind an
	 * earlier one of its job may have been tried only after the restart) */
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE attempts >= 1"
					 " AND last_status_code = 200 AND delivered_at IS NOT NULL"
					 " AND last_error IS NULL"),
			 total);
	ck_assert_int_ge(
		tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE attempts >= 3"), 1);
	char *dpath = xasprintf("/api/v1/agencies/%s/webhooks/%s/deliveries?limit=200", agency,
				sub);
	struct tl_resp r;
	call(&w, &r, admin, "GET", dpath, NULL);
	ck_assert_msg(r.status == 200, "GET %s: %ld %s", dpath, r.status, r.body);
	struct json *page = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct json *items = json_get(page, "items");
	ck_assert_msg(items && items->type == JSON_ARRAY && (long long)items->u.arr.n == total,
		      "deliveries: %s", r.body);
	struct json *first = items->u.arr.items[0];
	ck_assert_str_eq(json_get_str(first, "status"), "delivered");
	int64_t code = 0, attempts = 0;
	ck_assert_int_eq(json_get_int(first, "last_status_code", &code), 0);
	ck_assert_int_eq(json_get_int(first, "attempts", &attempts), 0);
	ck_assert_int_eq(code, 200);
	ck_assert_int_ge(attempts, 1);
	char *redo_of = xstrdup(json_get_str(first, "id"));
	char *redo_event = xstrdup(json_get_str(first, "event_id"));
	json_free(page);
	tl_resp_free(&r);

	/* redeliver: the same event again, as a new delivery in the log */
	char *redo = xasprintf("/api/v1/agencies/%s/webhooks/%s/deliveries/%s/redeliver", agency,
			       sub, redo_of);
	call(&w, &r, admin, "POST", redo, NULL);
	ck_assert_msg(r.status == 202, "POST %s: %ld %s", redo, r.status, r.body);
	tl_resp_free(&r);
	char *redone = xasprintf("SELECT count(*) = 1 FROM event_deliveries WHERE redelivery_of ="
				 " '%s' AND status = 'delivered' AND event_id = '%s'",
				 redo_of, redo_event);
	wait_for(&w, redone, 30000);
	ck_assert_int_eq((long long)rx_count(200), total + 1);
	assert_secret_kept(&w, agency, sub, secret);

	world_close(&w);
	hsim_stop(&w.sim);
	for (int i = 0; i < 6; i++)
		free(jobs[i]);
	free(redone);
	free(redo);
	free(redo_of);
	free(redo_event);
	free(dpath);
	free(sub);
	free(secret);
	free(url);
	free(snap);
	free(agency);
}
END_TEST

/* ---- SSRF and scope ------------------------------------------------------------ */

static char *new_agency(struct world *w, const char *name)
{
	return tl_sqlf(w->db,
		       "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		       " oauth_refresh_token_encrypted, token_expires_at) VALUES ('%s',"
		       " 'co-%s', 'x', 'x', now() + interval '1 day') RETURNING id",
		       name, name);
}

START_TEST(private_addresses_refused_and_agencies_kept_apart)
{
	struct world w;
	world_open(&w, RX_OK, "events_scope");
	const char *extra[] = {"GHL_AGENT_EVENTS_POLL_INTERVAL=100ms",
			       "GHL_AGENT_EVENTS_TIMEOUT=1s", "GHL_AGENT_EVENTS_RETRY_BASE=200ms",
			       "GHL_AGENT_EVENTS_RETRY_MAX=500ms",
			       NULL}; /* notify_webhook_allow_private = off */
	hagent_start(&w.agent, w.dsn, NULL, extra);
	char *a = new_agency(&w, "Alpha"), *b = new_agency(&w, "Bravo");
	const char *admin = hagent_admin_token(&w.agent);
	char *path_a = xasprintf("/api/v1/agencies/%s/webhooks", a);

	/* address literals outside the public internet, and bad input: 422 naming the field */
	const char *bad[][2] = {
		{"{\"url\":\"http://127.0.0.1:9/x\",\"events\":[\"job.completed\"]}", "loopback"},
		{"{\"url\":\"http://[::1]:9/x\",\"events\":[\"job.completed\"]}", "loopback"},
		{"{\"url\":\"http://10.1.2.3/x\",\"events\":[\"job.completed\"]}", "private"},
		{"{\"url\":\"http://169.254.169.254/latest\",\"events\":[\"job.completed\"]}",
		 "url"},
		{"{\"url\":\"ftp://example.com/x\",\"events\":[\"job.completed\"]}", "http"},
		{"{\"url\":\"https://u:p@example.com/x\",\"events\":[\"job.completed\"]}",
		 "credentials"},
		{"{\"url\":\"https://example.com/x\",\"events\":[\"job.exploded\"]}", "events[0]"},
		{"{\"url\":\"https://example.com/x\",\"events\":[]}", "events"},
		{"{\"url\":\"https://example.com/x\"}", "events"},
		{"{\"url\":\"https://example.com/x\",\"events\":[\"job.failed\"],\"x\":1}", "x"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tl_resp r;
		call(&w, &r, admin, "POST", path_a, bad[i][0]);
		ck_assert_msg(r.status == 422 && strstr(r.body, bad[i][1]), "%s: %ld %s", bad[i][0],
			      r.status, r.body);
		tl_resp_free(&r);
	}
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_subscriptions"), 0);

	/* a name is checked on the address each delivery connects to */
	char *url = xasprintf("http://localhost:%d/hook", rx.port);
	char *secret = NULL;
	char *sub_a = subscribe(&w, admin, a, url, "[\"agency.needs_reconnect\"]", &secret);
	tl_execf(w.db,
		 "UPDATE agencies SET needs_reconnect = true, reconnect_reason = 'test'"
		 " WHERE id = '%s'",
		 a);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE"
					 " event_type = 'agency.needs_reconnect'"),
			 1);
	wait_for(&w,
		 "SELECT attempts >= 2 AND status = 'pending' AND last_error IS NOT NULL"
		 " AND last_status_code IS NULL FROM event_deliveries",
		 30000);
	pthread_mutex_lock(&rx.mu);
	ck_assert_msg(rx.n == 0, "the receiver on 127.0.0.1 was reached %zu times", rx.n);
	pthread_mutex_unlock(&rx.mu);

	/* scope: B's people and key see nothing of A's; SUPPORT reads, cannot change */
	char *aa_b = xasprintf("[\"%s\"]", b);
	char *bb = huser_token(&w.agent, "bb@example.com", "AGENCY_ADMIN", aa_b);
	char *support = huser_token(&w.agent, "support@example.com", "SUPPORT", "[]");
	char *key_a = hkey_new(&w.agent, a), *key_b = hkey_new(&w.agent, b);
	char *one = xasprintf("%s/%s", path_a, sub_a);
	char *log = xasprintf("%s/%s/deliveries", path_a, sub_a);
	char *did = tl_sqlf(w.db, "SELECT id FROM event_deliveries LIMIT 1");
	char *redo = xasprintf("%s/%s/deliveries/%s/redeliver", path_a, sub_a, did);
	const char *body = "{\"url\":\"https://example.com/hook\",\"events\":[\"job.completed\"]}";
	const char *outsiders[] = {bb, key_b};
	for (int i = 0; i < 2; i++) {
		const char *t = outsiders[i];
		ck_assert_int_eq(status_of(&w, t, "GET", path_a, NULL), 404);
		ck_assert_int_eq(status_of(&w, t, "GET", one, NULL), 404);
		ck_assert_int_eq(status_of(&w, t, "GET", log, NULL), 404);
		ck_assert_int_eq(status_of(&w, t, "POST", redo, NULL), 404);
		ck_assert_int_eq(status_of(&w, t, "POST", path_a, body), 404);
		ck_assert_int_eq(status_of(&w, t, "DELETE", one, NULL), 404);
	}
	ck_assert_int_eq(status_of(&w, support, "GET", path_a, NULL), 200);
	ck_assert_int_eq(status_of(&w, support, "GET", log, NULL), 200);
	ck_assert_int_eq(status_of(&w, support, "POST", path_a, body), 403);
	ck_assert_int_eq(status_of(&w, support, "DELETE", one, NULL), 403);
	/* B's own subscription, made by B's AGENCY_ADMIN; A's key manages A's */
	char *sub_b = subscribe(&w, bb, b, "https://example.com/b", "[\"job.completed\"]", NULL);
	char *sub_k = subscribe(&w, key_a, a, "https://example.com/a", "[\"job.failed\"]", NULL);
	struct tl_resp r;
	call(&w, &r, key_a, "GET", path_a, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, sub_a) && strstr(r.body, sub_k) &&
			      !strstr(r.body, sub_b),
		      "GET %s as A's key: %ld %s", path_a, r.status, r.body);
	tl_resp_free(&r);
	/* a subscription in another agency's path is not found */
	char *cross = xasprintf("%s/%s", path_a, sub_b);
	ck_assert_int_eq(status_of(&w, admin, "GET", cross, NULL), 404);
	ck_assert_int_eq(status_of(&w, admin, "DELETE", cross, NULL), 404);
	/* delete: the subscription and its log go */
	ck_assert_int_eq(status_of(&w, key_a, "DELETE", one, NULL), 204);
	ck_assert_int_eq(status_of(&w, admin, "GET", one, NULL), 404);
	ck_assert_int_eq(tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries"), 0);

	/* a job's state change writes its event; once the agency is deleted, none */
#define WAITING_JOB                                                           \
	"INSERT INTO provisioning_jobs (agency_id, client_data_json, run_at)" \
	" VALUES ('%s', '{}', now() + interval '1 hour') RETURNING id"
	char *live = tl_sqlf(w.db, WAITING_JOB, b), *late = tl_sqlf(w.db, WAITING_JOB, b);
#undef WAITING_JOB
	tl_execf(w.db, "UPDATE provisioning_jobs SET status = 'COMPLETED' WHERE id = '%s'", live);
	tl_execf(w.db, "UPDATE agencies SET deleted_at = now() WHERE id = '%s'", b);
	tl_execf(w.db, "UPDATE provisioning_jobs SET status = 'COMPLETED' WHERE id = '%s'", late);
	ck_assert_int_eq(tl_sqlf_n(w.db,
				   "SELECT count(*) FROM event_deliveries WHERE job_id = '%s'"
				   " AND subscription_id = '%s'",
				   live, sub_b),
			 1);
	ck_assert_int_eq(
		tl_sqlf_n(w.db, "SELECT count(*) FROM event_deliveries WHERE job_id = '%s'", late),
		0);
	free(live);
	free(late);

	world_close(&w);
	char *frees[] = {a,	b,     path_a, url, secret, sub_a, aa_b,  bb,	 support,
			 key_a, key_b, one,    log, did,    redo,  sub_b, sub_k, cross};
	for (size_t i = 0; i < sizeof(frees) / sizeof(frees[0]); i++)
		free(frees[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("events");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, every_event_once_in_order_across_failures_and_kill9);
	tcase_add_test(tc, private_addresses_refused_and_agencies_kept_apart);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
