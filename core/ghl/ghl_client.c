/* ghl_client.c — see ghl_client.h.
 *
 * Shape (curl's docs/examples/hiperfifo.c): one CURLM per client; libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION → one persistent
 * libevent event per socket) and when to wake it (CURLMOPT_TIMERFUNCTION → one
 * evtimer); both call curl_multi_socket_action and then drain
 * curl_multi_info_read. Connections stay in the multi handle's cache between
 * requests.
 *
 * A request ("call") goes: queued in its resource's bucket → on the wire (one
 * easy handle per attempt) → maybe waiting for a token refresh → back in the
 * bucket → delivered; a transient fault of a request safe to repeat sends it
 * back to the bucket after a backoff on its own evtimer. Every entry point
 * from the loop counts itself in c->depth so ghl_client_free from inside a
 * callback only finishes the teardown once the outermost entry point returns.
 */
#include "ghl_client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "ghl_ratelimit.h"
#include "json.h"
#include "log.h"
#include "ssrf_guard.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_HOST_CONNECTIONS 64
#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define MESSAGE_MAX 2048
#define BUCKET_HEADS 256
#define SWEEP_INTERVAL_MS 60000
#define ROTATION_TTL_MS 60000 /* how long a refresh result serves late 401s */
#define FAILED_TTL_MS 5000    /* ... and a failed refresh */
#define ROTATION_MAX 32
#define DEFAULT_429_RETRY_MS 10000
#define DEFAULT_RETRY_BASE_MS 500
#define MAX_RETRY_DELAY_MS 30000 /* longer waits are the scheduler's business */

enum call_state { CS_QUEUED, CS_ACTIVE, CS_REFRESH, CS_FINISHING, CS_BACKOFF };

struct bucket {
	struct ghl_client *c;
	char *key;
	uint64_t hash;
	struct ghl_rl_bucket rl;
	struct ghl_call *qhead, *qtail;
	struct event *timer;
	int refs;            /* calls pointing here (they may wait for a refresh) */
	struct bucket *next; /* hash chain */
};

struct ghl_call {
	struct ghl_client *c;
	struct ghl_call *prev, *next; /* c->calls */
	enum call_state state;
	char *method, *path, *url, *body, *version, *token, *bucket_key, *extra_headers;
	const char *content_type;
	size_t body_len;
	int has_hooks;
	struct ghl_token_hooks hooks;
	int refreshed;
	int attempts;
	int repeatable; /* safe to send again after a transient fault */
	int transient;	/* transient retries made */
	struct event *backoff;
	ghl_done_fn cb;
	void *arg;
	struct bucket *bk;
	struct ghl_call *qnext; /* bucket queue or refresh waiters */
	/* the current / last attempt */
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf resp;
	int too_large;
	struct json *json;
	struct ghl_rl_headers rlh;
	char trace_hdr[128];
	char errbuf[CURL_ERROR_SIZE];
	int64_t t_start, t_attempt;
	/* a result delivered from the loop later (local failures) */
	struct event *timer;
	int fin_status;
	enum ghl_outcome fin_outcome;
	char *fin_msg;
	long long fin_retry_ms;
};

/* A refresh in progress for one stale token; outlives the client when the
 * provider answers after ghl_client_free (c is then NULL). */
struct refresh {
	struct ghl_client *c;
	struct refresh *next;
	struct ghl_token_hooks hooks;
	char *stale;
	struct ghl_call *waiters;
};

/* A finished refresh: 401s that arrive late for the same stale token reuse
 * its result instead of refreshing again. fresh is NULL when it failed (why
 * then says why). */
struct rotation {
	struct ghl_token_hooks hooks;
	char *stale, *fresh, *why;
	int64_t at;
};

struct sockinfo {
	struct ghl_client *c;
	curl_socket_t fd;
	struct event *ev;
	struct sockinfo *prev, *next;
};

struct ghl_client {
	struct event_base *base;
	CURLM *multi;
	struct event *curl_timer, *sweep;
	char *api_base, *client_id, *client_secret, *user_agent;
	long long timeout_ms, retry_base_ms;
	int max_attempts, initial_burst, rate_off, retry_attempts, public_only;
	long long retries;
	size_t max_body;
	struct ghl_call *calls;
	int ncalls;
	struct bucket *heads[BUCKET_HEADS];
	struct refresh *refreshes;
	struct rotation rot[ROTATION_MAX];
	int nrot;
	struct sockinfo *socks;
	int depth;
	int freeing, destroy_pending;
};

static void attempt_start(struct ghl_call *call);
static void deliver(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
		    long long retry_after_ms);

const char *ghl_outcome_name(enum ghl_outcome o)
{
	switch (o) {
	case GHL_OK: return "ok";
	case GHL_AUTH: return "auth";
	case GHL_RETRYABLE: return "retryable";
	case GHL_PERMANENT: return "permanent";
	case GHL_CANCELLED: return "cancelled";
	}
	return "?";
}

static void wipe_free(char *s)
{
	if (s) {
		crypto_wipe(s, strlen(s));
		free(s);
	}
}

/* ---- small helpers ---- */

char *ghl_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;
	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_putc(&b, (char)*p);
		} else {
			buf_putc(&b, '%');
			buf_putc(&b, hex[*p >> 4]);
			buf_putc(&b, hex[*p & 15]);
		}
	}
	return buf_take(&b);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* "/locations/Ab12.../customValues" → "/locations/{id}/customValues": a
 * segment holding a digit or 16+ characters is taken for an id. */
static void path_template(const char *path, struct buf *out)
{
	const char *p = path;
	while (*p) {
		if (*p == '/') {
			buf_putc(out, '/');
			p++;
			continue;
		}
		size_t n = strcspn(p, "/");
		int id = n >= 16;
		for (size_t i = 0; i < n && !id; i++)
			id = p[i] >= '0' && p[i] <= '9';
		if (id)
			buf_puts(out, "{id}");
		else
			buf_append(out, p, n);
		p += n;
	}
}

static const char *pick_version(const char *path)
{
	if (str_eq(path, "/oauth/token"))
		return NULL;
	if (str_has_prefix(path, "/saas/"))
		return "2021-04-15";
	return "2021-07-28";
}

/* GHL's "message" (string, or array joined with "; "), else OAuth's
 * error_description / error. Malloc'd or NULL. */
static char *extract_message(const struct json *j)
{
	if (!j || j->type != JSON_OBJECT)
		return NULL;
	struct buf b;
	buf_init(&b);
	const struct json *m = json_get(j, "message");
	if (m && m->type == JSON_STRING) {
		buf_puts(&b, m->u.str.s);
	} else if (m && m->type == JSON_ARRAY) {
		for (size_t i = 0; i < json_len(m); i++) {
			const struct json *it = json_at(m, i);
			if (!it || it->type != JSON_STRING)
				continue;
			if (b.len)
				buf_puts(&b, "; ");
			buf_puts(&b, it->u.str.s);
		}
	}
	if (!b.len) {
		const char *d = json_get_str(j, "error_description");
		if (!d)
			d = json_get_str(j, "error");
		if (d)
			buf_puts(&b, d);
	}
	if (!b.len) {
		buf_free(&b);
		return NULL;
	}
	if (b.len > MESSAGE_MAX) {
		b.len = MESSAGE_MAX;
		b.data[b.len] = '\0';
	}
	return buf_take(&b);
}

static enum ghl_outcome classify(int status, CURLcode rc, int too_large)
{
	if (status == 0) {
		if (too_large || rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
			return GHL_PERMANENT;
		return GHL_RETRYABLE;
	}
	if (status >= 200 && status < 300)
		return GHL_OK;
	if (status == 401)
		return GHL_AUTH;
	if (status == 408 || status == 429 || status >= 500)
		return GHL_RETRYABLE;
	return GHL_PERMANENT;
}

/* Whether a request may be sent again after a transient fault: reads, the
 * location-token mint (each mint only adds a token) and upserts. Any other
 * write may have been applied before the fault; its step decides. */
static int repeatable(const char *method, const char *path)
{
	if (str_eq(method, "GET") || str_eq(method, "HEAD"))
		return 1;
	if (!str_eq(method, "POST"))
		return 0;
	if (str_eq(path, "/oauth/locationToken") || str_eq(path, "/oauth/location-token"))
		return 1;
	size_t n = strlen(path);
	return n >= 7 && strcmp(path + n - 7, "/upsert") == 0;
}

/* ---- client entry/exit (deferred teardown) ---- */

static void client_destroy(struct ghl_client *c);

static void client_enter(struct ghl_client *c)
{
	c->depth++;
}

static void client_leave(struct ghl_client *c)
{
	if (--c->depth == 0 && c->destroy_pending)
		client_destroy(c);
}

/* ---- calls ---- */

static void call_link(struct ghl_client *c, struct ghl_call *call)
{
	call->prev = NULL;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	c->ncalls++;
}

static void call_unlink(struct ghl_client *c, struct ghl_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	c->ncalls--;
}

static void easy_release(struct ghl_call *call)
{
	if (call->easy) {
		curl_easy_cleanup(call->easy);
		call->easy = NULL;
	}
	for (struct curl_slist *h = call->hdrs; h; h = h->next)
		crypto_wipe(h->data, strlen(h->data));
	curl_slist_free_all(call->hdrs);
	call->hdrs = NULL;
}

static void resp_reset(struct ghl_call *call)
{
	if (call->resp.data)
		crypto_wipe(call->resp.data, call->resp.cap);
	buf_reset(&call->resp);
	call->json = json_free(call->json);
	call->too_large = 0;
	ghl_rl_headers_init(&call->rlh);
	call->trace_hdr[0] = '\0';
	call->errbuf[0] = '\0';
}

static void call_free(struct ghl_call *call)
{
	if (call->bk)
		call->bk->refs--;
	easy_release(call);
	resp_reset(call);
	buf_free(&call->resp);
	if (call->timer)
		event_free(call->timer);
	if (call->backoff)
		event_free(call->backoff);
	free(call->method);
	free(call->path);
	free(call->url);
	if (call->body) {
		crypto_wipe(call->body, call->body_len);
		free(call->body);
	}
	free(call->version);
	wipe_free(call->token);
	free(call->extra_headers);
	free(call->bucket_key);
	free(call->fin_msg);
	free(call);
}

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_call *call = arg;
	struct ghl_client *c = call->c;
	client_enter(c);
	deliver(call, call->fin_status, call->fin_outcome, call->fin_msg, call->fin_retry_ms);
	client_leave(c);
}

/* Delivers a local result from the loop, never from the caller's stack. */
static void finish_later(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
			 long long retry_after_ms)
{
	call->state = CS_FINISHING;
	call->fin_status = status;
	call->fin_outcome = oc;
	free(call->fin_msg);
	call->fin_msg = msg ? xstrdup(msg) : NULL;
	call->fin_retry_ms = retry_after_ms;
	if (!call->timer)
		call->timer = evtimer_new(call->c->base, on_call_timer, call);
	struct timeval tv = {0, 0};
	evtimer_add(call->timer, &tv);
}

/* Calls the user's callback with the call's last reply and frees the call. */
static void deliver(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
		    long long retry_after_ms)
{
	struct ghl_client *c = call->c;
	struct ghl_response r;
	memset(&r, 0, sizeof r);
	char *own_msg = NULL;
	r.status = status;
	r.outcome = oc;
	r.body = status > 0 ? buf_cstr(&call->resp) : "";
	r.body_len = status > 0 ? call->resp.len : 0;
	r.json = status > 0 ? call->json : NULL;
	r.trace_id = r.json ? json_get_str(r.json, "traceId") : NULL;
	if (!r.trace_id && status > 0 && call->trace_hdr[0])
		r.trace_id = call->trace_hdr;
	if (msg) {
		r.message = msg;
	} else if (oc != GHL_OK) {
		own_msg = extract_message(r.json);
		if (!own_msg && status > 0)
			own_msg = xasprintf("HTTP %d", status);
		r.message = own_msg;
	}
	r.retry_after_ms = retry_after_ms;
	r.duration_ms = (double)(now_monotonic_ms() - call->t_start);
	r.attempts = call->attempts;
	call_unlink(c, call);
	client_enter(c);
	call->cb(call->arg, &r);
	free(own_msg);
	call_free(call);
	client_leave(c);
}

/* ---- buckets ---- */

static void bucket_pump(struct bucket *bk);

static void on_bucket_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct bucket *bk = arg;
	struct ghl_client *c = bk->c;
	client_enter(c);
	bucket_pump(bk);
	client_leave(c);
}

static void bucket_kick(struct bucket *bk, long long delay_ms)
{
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
	evtimer_add(bk->timer, &tv);
}

static struct bucket *bucket_get(struct ghl_client *c, const char *key)
{
	uint64_t h = hash_str(key);
	struct bucket **head = &c->heads[h % BUCKET_HEADS];
	for (struct bucket *bk = *head; bk; bk = bk->next)
		if (bk->hash == h && strcmp(bk->key, key) == 0)
			return bk;
	struct bucket *bk = xcalloc(1, sizeof *bk);
	bk->c = c;
	bk->key = xstrdup(key);
	bk->hash = h;
	ghl_rl_bucket_init(&bk->rl, c->initial_burst);
	bk->timer = evtimer_new(c->base, on_bucket_timer, bk);
	bk->next = *head;
	*head = bk;
	return bk;
}

static void bucket_free(struct bucket *bk)
{
	event_free(bk->timer);
	ghl_rl_bucket_clear(&bk->rl);
	free(bk->key);
	free(bk);
}

static void bucket_push(struct bucket *bk, struct ghl_call *call)
{
	call->state = CS_QUEUED;
	call->qnext = NULL;
	if (bk->qtail)
		bk->qtail->qnext = call;
	else
		bk->qhead = call;
	bk->qtail = call;
}

static struct ghl_call *bucket_pop(struct bucket *bk)
{
	struct ghl_call *call = bk->qhead;
	if (call) {
		bk->qhead = call->qnext;
		if (!bk->qhead)
			bk->qtail = NULL;
		call->qnext = NULL;
	}
	return call;
}

/* Sends what the bucket's budget allows now; arms its timer for the rest. */
static void bucket_pump(struct bucket *bk)
{
	struct ghl_client *c = bk->c;
	while (bk->qhead && !c->freeing) {
		int64_t now = now_monotonic_ms();
		long long d = ghl_rl_poll(&bk->rl, now);
		if (d == 0) {
			attempt_start(bucket_pop(bk));
			continue;
		}
		if (d == GHL_RL_DAILY) {
			long long ra = ghl_rl_retry_after_ms(&bk->rl, now);
			deliver(bucket_pop(bk), 0, GHL_RETRYABLE,
				"GHL daily request quota for this resource is used up", ra);
			continue;
		}
		if (d == GHL_RL_WAIT) {
			if (bk->rl.inflight == 0) /* cannot happen; never stall */
				bucket_kick(bk, 100);
			break;
		}
		bucket_kick(bk, d);
		break;
	}
}

/* Puts a call (new, refreshed or retried) on its way. */
static void submit(struct ghl_call *call)
{
	if (call->bk) {
		bucket_push(call->bk, call);
		bucket_kick(call->bk, 0);
	} else {
		attempt_start(call);
	}
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_client *c = arg;
	int64_t now = now_monotonic_ms();
	for (int i = 0; i < BUCKET_HEADS; i++) {
		struct bucket **pp = &c->heads[i];
		while (*pp) {
			struct bucket *bk = *pp;
			if (!bk->refs && !bk->qhead && !evtimer_pending(bk->timer, NULL) &&
			    ghl_rl_idle(&bk->rl, now)) {
				*pp = bk->next;
				bucket_free(bk);
			} else {
				pp = &bk->next;
			}
		}
	}
	int k = 0;
	for (int i = 0; i < c->nrot; i++) {
		if (now - c->rot[i].at >= ROTATION_TTL_MS) {
			wipe_free(c->rot[i].stale);
			wipe_free(c->rot[i].fresh);
			free(c->rot[i].why);
		} else {
			c->rot[k++] = c->rot[i];
		}
	}
	c->nrot = k;
}

/* ---- libcurl glue (hiperfifo) ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct ghl_call *call = ud;
	size_t len = size * n;
	if (call->resp.len + len > call->c->max_body) {
		call->too_large = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_append(&call->resp, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct ghl_call *call = ud;
	size_t len = size * n;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 100-continue): forget the previous one */
		ghl_rl_headers_init(&call->rlh);
		call->trace_hdr[0] = '\0';
		return len;
	}
	if (ghl_rl_headers_feed(&call->rlh, p, len))
		return len;
	if (len > 11 && strncasecmp(p, "X-Trace-Id:", 11) == 0) {
		const char *v = p + 11;
		size_t vn = len - 11;
		while (vn && (*v == ' ' || *v == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
			vn--;
		if (vn >= sizeof call->trace_hdr)
			vn = sizeof call->trace_hdr - 1;
		memcpy(call->trace_hdr, v, vn);
		call->trace_hdr[vn] = '\0';
	}
	return len;
}

static void sockinfo_free(struct ghl_client *c, struct sockinfo *si)
{
	if (si->ev)
		event_free(si->ev);
	if (si->prev)
		si->prev->next = si->next;
	else
		c->socks = si->next;
	if (si->next)
		si->next->prev = si->prev;
	free(si);
}

static void check_multi_info(struct ghl_client *c);

static void on_sock_event(evutil_socket_t fd, short kind, void *arg)
{
	struct ghl_client *c = arg;
	int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running = 0;
	client_enter(c);
	curl_multi_socket_action(c->multi, fd, action, &running);
	check_multi_info(c);
	client_leave(c);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	struct ghl_client *c = userp;
	struct sockinfo *si = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (si)
			sockinfo_free(c, si);
		return 0;
	}
	short kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
			     ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (!si) {
		si = xcalloc(1, sizeof *si);
		si->c = c;
		si->fd = s;
		si->next = c->socks;
		if (c->socks)
			c->socks->prev = si;
		c->socks = si;
		curl_multi_assign(c->multi, s, si);
	} else if (si->ev) {
		event_free(si->ev);
	}
	si->ev = event_new(c->base, s, kind, on_sock_event, c);
	event_add(si->ev, NULL);
	return 0;
}

static void on_curl_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_client *c = arg;
	int running = 0;
	client_enter(c);
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(c);
	client_leave(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	struct ghl_client *c = userp;
	if (timeout_ms < 0) {
		evtimer_del(c->curl_timer);
	} else {
		struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
		evtimer_add(c->curl_timer, &tv);
	}
	return 0;
}

/* ---- attempts ---- */

static struct curl_slist *build_headers(struct ghl_call *call)
{
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	if (call->content_type) {
		char *ct = xasprintf("Content-Type: %s", call->content_type);
		h = curl_slist_append(h, ct);
		free(ct);
	}
	if (call->version && *call->version) {
		char *v = xasprintf("Version: %s", call->version);
		h = curl_slist_append(h, v);
		free(v);
	}
	if (call->token) {
		char *a = xasprintf("Authorization: Bearer %s", call->token);
		h = curl_slist_append(h, a);
		wipe_free(a);
	}
	for (const char *p = call->extra_headers; p && *p;) {
		size_t n = strcspn(p, "\r\n");
		if (n && memchr(p, ':', n)) {
			char *line = xstrndup(p, n);
			h = curl_slist_append(h, line);
			free(line);
		}
		p += n;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	return h;
}

static int easy_setup(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	CURL *e = call->easy;
	long tmo = (long)c->timeout_ms;
	long ctmo = tmo < MAX_CONNECT_TIMEOUT_MS ? tmo : MAX_CONNECT_TIMEOUT_MS;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(e, opt, val);    \
	} while (0)
	SET(CURLOPT_URL, call->url);
	SET(CURLOPT_PRIVATE, call);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, call);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, call);
	SET(CURLOPT_ERRORBUFFER, call->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	/* GHL replies are small JSON; a 4 KiB receive buffer instead of curl's
	 * 16 KiB keeps thousands of transfers in flight cheap in memory */
	SET(CURLOPT_BUFFERSIZE, 4096L);
	SET(CURLOPT_TIMEOUT_MS, tmo);
	SET(CURLOPT_CONNECTTIMEOUT_MS, ctmo);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 60L);
	SET(CURLOPT_TCP_KEEPINTVL, 30L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_USERAGENT, c->user_agent);
	SET(CURLOPT_HTTPHEADER, call->hdrs);
	/* libcurl silently sends a request again on a fresh connection when a
	 * reused one closes before any reply byte — even a POST that GHL may
	 * have applied. A write that is not safe to repeat gets a connection of
	 * its own, so that never happens to it (CURLOPT_FORBID_RETRY_ON_REUSE
	 * needs libcurl 8.16). */
	if (!call->repeatable)
		SET(CURLOPT_FRESH_CONNECT, 1L);
	if (c->public_only)
		SET(CURLOPT_OPENSOCKETFUNCTION, ssrf_guard_opensocket);
	if (strcmp(call->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(call->method, "POST") == 0)
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, call->method);
		if (call->body || strcmp(call->method, "POST") == 0 || strcmp(call->method, "PUT") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
			SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
		}
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

static void attempt_start(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	resp_reset(call);
	easy_release(call);
	call->attempts++;
	call->hdrs = build_headers(call);
	call->easy = curl_easy_init();
	if (!call->easy || easy_setup(call) != 0) {
		finish_later(call, 0, GHL_PERMANENT, "libcurl: cannot set up the request", 0);
		return;
	}
	if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		finish_later(call, 0, GHL_RETRYABLE, "libcurl: cannot add the request", 0);
		return;
	}
	call->state = CS_ACTIVE;
	call->t_attempt = now_monotonic_ms();
	if (call->bk)
		ghl_rl_on_send(&call->bk->rl, call->t_attempt);
}

static void log_attempt(struct ghl_call *call, int status, const char *error, int64_t now)
{
	if (log_get_level() > LOG_DEBUG)
		return;
	struct buf tmpl;
	buf_init(&tmpl);
	path_template(call->path, &tmpl);
	char st[16], dur[32], att[16], fp[CRYPTO_FINGERPRINT_LEN];
	snprintf(st, sizeof st, "%d", status);
	snprintf(dur, sizeof dur, "%lld", (long long)(now - call->t_attempt));
	snprintf(att, sizeof att, "%d", call->attempts);
	crypto_token_fingerprint(call->token, fp);
	const char *trace = call->json ? json_get_str(call->json, "traceId") : NULL;
	if (!trace)
		trace = call->trace_hdr[0] ? call->trace_hdr : "-";
	log_debug("ghl request", "method", call->method, "path", buf_cstr(&tmpl), "status", st,
		  "duration_ms", dur, "trace_id", trace, "token", fp, "attempt", att, "error",
		  error ? error : "-", NULL);
	buf_free(&tmpl);
}

static void refresh_begin(struct ghl_call *call);

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_call *call = arg;
	struct ghl_client *c = call->c;
	client_enter(c);
	submit(call);
	client_leave(c);
}

/* A transient fault of a repeatable request: 1 when it was put on a backoff
 * timer for another attempt, 0 when the caller gets the fault. */
static int transient_retry(struct ghl_call *call, int status, enum ghl_outcome oc)
{
	struct ghl_client *c = call->c;
	if (oc != GHL_RETRYABLE || status == 429 || !call->repeatable ||
	    call->transient + 1 >= c->retry_attempts)
		return 0;
	long long ra = call->rlh.retry_after_ms;
	if (ra > MAX_RETRY_DELAY_MS)
		return 0;
	uint64_t rnd = 0;
	crypto_random_bytes(&rnd, sizeof rnd);
	long long d = backoff_ms(call->transient + 1, c->retry_base_ms, MAX_RETRY_DELAY_MS,
					   ra, rnd);
	call->transient++;
	c->retries++;
	if (log_get_level() <= LOG_DEBUG) {
		struct buf tmpl;
		buf_init(&tmpl);
		path_template(call->path, &tmpl);
		char ms[32];
		snprintf(ms, sizeof ms, "%lld", d);
		log_debug("ghl request retried after a transient fault", "method", call->method,
			  "path", buf_cstr(&tmpl), "delay_ms", ms, NULL);
		buf_free(&tmpl);
	}
	call->state = CS_BACKOFF;
	if (!call->backoff)
		call->backoff = evtimer_new(c->base, on_backoff, call);
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(call->backoff, &tv);
	return 1;
}

static void attempt_done(struct ghl_call *call, CURLcode rc)
{
	struct ghl_client *c = call->c;
	long status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
	easy_release(call);
	int64_t now = now_monotonic_ms();
	struct bucket *bk = call->bk;
	if (bk) {
		if (status > 0)
			ghl_rl_on_reply(&bk->rl, now, (int)status, &call->rlh);
		else
			ghl_rl_on_abort(&bk->rl, now);
		if (bk->qhead)
			bucket_kick(bk, 0);
	}
	if (status > 0 && call->resp.len) {
		const char *p = buf_cstr(&call->resp);
		p += strspn(p, " \t\r\n");
		if (*p == '{' || *p == '[')
			call->json = json_parse(call->resp.data, call->resp.len, JSON_DEFAULT_MAX_DEPTH, NULL);
	}
	char *transport = NULL;
	if (status == 0) {
		if (call->too_large)
			transport = xasprintf("reply body larger than %zu bytes", c->max_body);
		else
			transport = xasprintf("%s", call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc));
	}
	log_attempt(call, (int)status, transport, now);
	if (transport && c->public_only) { /* the cause stays in the log line above */
		free(transport);
		transport = xstrdup("no HTTP answer (refused, unreachable or timed out)");
	}

	enum ghl_outcome oc = classify((int)status, rc, call->too_large);
	if (status == 401 && call->has_hooks && !call->refreshed) {
		free(transport);
		refresh_begin(call);
		return;
	}
	if (status == 429 && bk && call->attempts < c->max_attempts) {
		free(transport);
		submit(call); /* held until the bucket reopens */
		return;
	}
	if (transient_retry(call, (int)status, oc)) {
		free(transport);
		return;
	}
	long long retry = 0;
	if (status == 429)
		retry = bk ? ghl_rl_retry_after_ms(&bk->rl, now)
			   : call->rlh.retry_after_ms > 0 ? call->rlh.retry_after_ms : DEFAULT_429_RETRY_MS;
	else if (oc == GHL_RETRYABLE && call->rlh.retry_after_ms > 0)
		retry = call->rlh.retry_after_ms;
	deliver(call, (int)status, oc, transport, retry);
	free(transport);
}

static void check_multi_info(struct ghl_client *c)
{
	CURLMsg *msg;
	int left;
	while (!c->freeing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *priv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		struct ghl_call *call = (struct ghl_call *)(void *)priv;
		curl_multi_remove_handle(c->multi, e);
		attempt_done(call, rc);
	}
}

/* ---- token refresh ---- */

static int hooks_eq(const struct ghl_token_hooks *a, const struct ghl_token_hooks *b)
{
	return a->refresh == b->refresh && a->ctx == b->ctx;
}

static void token_replace(struct ghl_call *call, const char *tok)
{
	wipe_free(call->token);
	call->token = xstrdup(tok);
}

static void rotation_add(struct ghl_client *c, const struct ghl_token_hooks *h, const char *stale,
			 const char *fresh, const char *why, int64_t now)
{
	if (c->nrot == ROTATION_MAX) {
		wipe_free(c->rot[0].stale);
		wipe_free(c->rot[0].fresh);
		free(c->rot[0].why);
		memmove(&c->rot[0], &c->rot[1], sizeof c->rot[0] * (ROTATION_MAX - 1));
		c->nrot--;
	}
	struct rotation *r = &c->rot[c->nrot++];
	r->hooks = *h;
	r->stale = xstrdup(stale);
	r->fresh = fresh ? xstrdup(fresh) : NULL;
	r->why = why ? xstrdup(why) : NULL;
	r->at = now;
}

static const struct rotation *rotation_find(struct ghl_client *c, const struct ghl_token_hooks *h,
					    const char *stale, int64_t now)
{
	for (int i = c->nrot - 1; i >= 0; i--) {
		const struct rotation *r = &c->rot[i];
		if (hooks_eq(&r->hooks, h) && now - r->at < (r->fresh ? ROTATION_TTL_MS : FAILED_TTL_MS) &&
		    strcmp(r->stale, stale) == 0)
			return r;
	}
	return NULL;
}

static char *refresh_failed_msg(const char *why)
{
	return xasprintf("token refresh failed: %s", why && *why ? why : "no reason given");
}

static void refresh_free(struct refresh *rf)
{
	wipe_free(rf->stale);
	free(rf);
}

static void refresh_done(void *done_arg, const char *new_token, const char *why)
{
	struct refresh *rf = done_arg;
	struct ghl_client *c = rf->c;
	if (!c) { /* the client was freed meanwhile */
		refresh_free(rf);
		return;
	}
	client_enter(c);
	for (struct refresh **pp = &c->refreshes; *pp; pp = &(*pp)->next) {
		if (*pp == rf) {
			*pp = rf->next;
			break;
		}
	}
	int ok = new_token && *new_token;
	rotation_add(c, &rf->hooks, rf->stale, ok ? new_token : NULL, ok ? NULL : why,
		     now_monotonic_ms());
	struct ghl_call *w = rf->waiters;
	rf->waiters = NULL;
	refresh_free(rf);
	char *msg = ok ? NULL : refresh_failed_msg(why);
	while (w && !c->freeing) {
		struct ghl_call *next = w->qnext;
		w->qnext = NULL;
		if (msg) {
			deliver(w, 401, GHL_AUTH, msg, 0);
		} else {
			token_replace(w, new_token);
			submit(w);
		}
		w = next;
	}
	free(msg);
	client_leave(c);
}

static void refresh_begin(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	call->refreshed = 1;
	call->state = CS_REFRESH;
	const struct rotation *rot = rotation_find(c, &call->hooks, call->token, now_monotonic_ms());
	if (rot && rot->fresh) {
		token_replace(call, rot->fresh);
		submit(call);
		return;
	}
	if (rot) {
		char *msg = refresh_failed_msg(rot->why);
		deliver(call, 401, GHL_AUTH, msg, 0);
		free(msg);
		return;
	}
	for (struct refresh *rf = c->refreshes; rf; rf = rf->next) {
		if (hooks_eq(&rf->hooks, &call->hooks) && strcmp(rf->stale, call->token) == 0) {
			call->qnext = rf->waiters;
			rf->waiters = call;
			return;
		}
	}
	struct refresh *rf = xcalloc(1, sizeof *rf);
	rf->c = c;
	rf->hooks = call->hooks;
	rf->stale = xstrdup(call->token);
	rf->waiters = call;
	rf->next = c->refreshes;
	c->refreshes = rf;
	/* the provider may answer synchronously, which frees rf: hand it a copy */
	char *stale = xstrdup(call->token);
	rf->hooks.refresh(rf->hooks.ctx, stale, refresh_done, rf);
	wipe_free(stale);
}

/* ---- public API ---- */

struct ghl_client *ghl_client_new(struct event_base *base, const struct ghl_client_opts *o,
				  struct err *e)
{
	if (!base || !o || !o->api_base || !*o->api_base) {
		err_set(e, "ghl client: api_base is required");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(e, "ghl client: libcurl initialisation failed");
		return NULL;
	}
	struct ghl_client *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		curl_global_cleanup();
		err_set(e, "ghl client: curl_multi_init failed");
		return NULL;
	}
	size_t n = strlen(o->api_base);
	while (n > 0 && o->api_base[n - 1] == '/')
		n--;
	c->api_base = xstrndup(o->api_base, n);
	c->client_id = xstrdup(o->client_id ? o->client_id : "");
	c->client_secret = xstrdup(o->client_secret ? o->client_secret : "");
	c->user_agent = xstrdup(o->user_agent ? o->user_agent : "ghl-agent/" GHL_VERSION);
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	c->max_attempts = o->max_attempts > 1 ? o->max_attempts : 1;
	c->initial_burst = o->initial_burst > 0 ? o->initial_burst : GHL_RL_DEFAULT_INITIAL_BURST;
	c->rate_off = o->rate_budget_off;
	c->public_only = o->public_only;
	c->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	c->retry_attempts = o->retry_attempts > 1 ? o->retry_attempts : 1;
	c->retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : DEFAULT_RETRY_BASE_MS;
	long maxconn = o->max_host_connections > 0 ? o->max_host_connections : DEFAULT_MAX_HOST_CONNECTIONS;

	c->curl_timer = evtimer_new(base, on_curl_timeout, c);
	c->sweep = event_new(base, -1, EV_PERSIST, on_sweep, c);
	struct timeval sw = {SWEEP_INTERVAL_MS / 1000, 0};
	event_add(c->sweep, &sw);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, maxconn * 2);
	return c;
}

static void client_destroy(struct ghl_client *c)
{
	for (int i = 0; i < BUCKET_HEADS; i++) {
		while (c->heads[i]) {
			struct bucket *bk = c->heads[i];
			c->heads[i] = bk->next;
			bucket_free(bk);
		}
	}
	for (int i = 0; i < c->nrot; i++) {
		wipe_free(c->rot[i].stale);
		wipe_free(c->rot[i].fresh);
		free(c->rot[i].why);
	}
	curl_multi_cleanup(c->multi); /* may still report sockets to close */
	while (c->socks)
		sockinfo_free(c, c->socks);
	event_free(c->curl_timer);
	event_free(c->sweep);
	free(c->api_base);
	free(c->client_id);
	wipe_free(c->client_secret);
	free(c->user_agent);
	free(c);
	curl_global_cleanup();
}

struct ghl_client *ghl_client_free(struct ghl_client *c)
{
	if (!c || c->freeing)
		return NULL;
	c->freeing = 1;
	client_enter(c);
	/* orphan refreshes (their waiters are in c->calls) and empty the queues */
	for (struct refresh *rf = c->refreshes; rf;) {
		struct refresh *next = rf->next;
		rf->c = NULL;
		rf->waiters = NULL;
		rf->next = NULL;
		rf = next;
	}
	c->refreshes = NULL;
	for (int i = 0; i < BUCKET_HEADS; i++) {
		for (struct bucket *bk = c->heads[i]; bk; bk = bk->next) {
			bk->qhead = bk->qtail = NULL;
			evtimer_del(bk->timer);
		}
	}
	while (c->calls) {
		struct ghl_call *call = c->calls;
		if (call->state == CS_ACTIVE && call->easy) {
			curl_multi_remove_handle(c->multi, call->easy);
			if (call->bk)
				ghl_rl_on_abort(&call->bk->rl, now_monotonic_ms());
		}
		if (call->timer)
			evtimer_del(call->timer);
		if (call->backoff)
			evtimer_del(call->backoff);
		deliver(call, 0, GHL_CANCELLED, "cancelled", 0);
	}
	c->destroy_pending = 1;
	client_leave(c);
	return NULL;
}

static void request_send(struct ghl_client *c, const struct ghl_request *req,
			 const struct ghl_token_hooks *hooks, ghl_done_fn cb, void *arg)
{
	struct ghl_call *call = xcalloc(1, sizeof *call);
	call->c = c;
	call->cb = cb;
	call->arg = arg;
	call->t_start = now_monotonic_ms();
	buf_init(&call->resp);
	ghl_rl_headers_init(&call->rlh);
	call->method = xstrdup(req && req->method ? req->method : "GET");
	call->path = xstrdup(req && req->path ? req->path : "");
	call->repeatable = repeatable(call->method, call->path);
	call_link(c, call);
	if (c->freeing) {
		deliver(call, 0, GHL_CANCELLED, "cancelled", 0);
		return;
	}
	if (!req || !req->path || req->path[0] != '/' || (req->json_body && req->form_body)) {
		finish_later(call, 0, GHL_PERMANENT,
			     "ghl request: path must start with '/' and at most one body is allowed", 0);
		return;
	}
	call->url = req->query && *req->query
			    ? xasprintf("%s%s?%s", c->api_base, req->path, req->query)
			    : xasprintf("%s%s", c->api_base, req->path);
	const char *body = req->json_body ? req->json_body : req->form_body;
	if (body) {
		call->body_len = strlen(body);
		call->body = xstrndup(body, call->body_len);
		call->content_type = req->json_body ? "application/json"
						    : "application/x-www-form-urlencoded";
	}
	const char *v = req->version ? req->version : pick_version(req->path);
	call->version = v ? xstrdup(v) : NULL;
	call->token = req->token ? xstrdup(req->token) : NULL;
	call->extra_headers = req->headers ? xstrdup(req->headers) : NULL;
	if (hooks && hooks->refresh && call->token) {
		call->has_hooks = 1;
		call->hooks = *hooks;
	}
	if (req->resource && *req->resource) {
		call->bucket_key = xstrdup(req->resource);
	} else if (call->token) {
		char fp[CRYPTO_FINGERPRINT_LEN];
		crypto_token_fingerprint(call->token, fp);
		call->bucket_key = xasprintf("token:%s", fp);
	}
	if (call->bucket_key && !c->rate_off) {
		call->bk = bucket_get(c, call->bucket_key);
		call->bk->refs++;
	}
	submit(call);
}

void ghl_request_send(struct ghl_client *c, const struct ghl_request *req, ghl_done_fn cb, void *arg)
{
	request_send(c, req, NULL, cb, arg);
}

void ghl_request_send_auth(struct ghl_client *c, const struct ghl_request *req,
			   const struct ghl_token_hooks *hooks, ghl_done_fn cb, void *arg)
{
	request_send(c, req, hooks, cb, arg);
}

int ghl_client_inflight(const struct ghl_client *c)
{
	return c ? c->ncalls : 0;
}

long long ghl_client_retries(const struct ghl_client *c)
{
	return c ? c->retries : 0;
}

/* ---- OAuth ---- */

struct oauth_wait {
	ghl_oauth_fn cb;
	void *arg;
};

static void on_oauth_reply(void *arg, const struct ghl_response *res)
{
	struct oauth_wait w = *(struct oauth_wait *)arg;
	free(arg);
	struct ghl_response r = *res;
	struct ghl_token_set t;
	const struct ghl_token_set *tp = NULL;
	memset(&t, 0, sizeof t);
	t.expires_in = -1;
	if (res->outcome == GHL_OK) {
		const struct json *j = res->json;
		t.access_token = json_get_str(j, "access_token");
		t.refresh_token = json_get_str(j, "refresh_token");
		t.token_type = json_get_str(j, "token_type");
		t.scope = json_get_str(j, "scope");
		t.user_type = json_get_str(j, "userType");
		t.company_id = json_get_str(j, "companyId");
		t.location_id = json_get_str(j, "locationId");
		t.user_id = json_get_str(j, "userId");
		int64_t ei;
		if (json_get_int(j, "expires_in", &ei) == 0)
			t.expires_in = (long long)ei;
		if (t.access_token && *t.access_token) {
			tp = &t;
		} else {
			r.outcome = GHL_PERMANENT;
			r.message = "token reply without access_token";
		}
	}
	w.cb(w.arg, &r, tp);
}

static void form_add(struct buf *b, const char *key, const char *val)
{
	if (!val)
		return;
	char *enc = ghl_urlencode(val);
	if (b->len)
		buf_putc(b, '&');
	buf_puts(b, key);
	buf_putc(b, '=');
	buf_puts(b, enc);
	wipe_free(enc);
}

static void oauth_send(struct ghl_client *c, struct ghl_request *req, struct buf *form,
		       ghl_oauth_fn cb, void *arg)
{
	struct oauth_wait *w = xmalloc(sizeof *w);
	w->cb = cb;
	w->arg = arg;
	req->method = "POST";
	req->form_body = buf_cstr(form);
	ghl_request_send(c, req, on_oauth_reply, w);
	if (form->data)
		crypto_wipe(form->data, form->cap);
	buf_free(form);
}

void ghl_oauth_token(struct ghl_client *c, const struct ghl_oauth_form *f, ghl_oauth_fn cb, void *arg)
{
	struct buf form;
	buf_init(&form);
	form_add(&form, "client_id", c->client_id);
	form_add(&form, "client_secret", c->client_secret);
	form_add(&form, "grant_type", f->grant_type);
	form_add(&form, "code", f->code);
	form_add(&form, "refresh_token", f->refresh_token);
	form_add(&form, "redirect_uri", f->redirect_uri);
	form_add(&form, "user_type", f->user_type);
	struct ghl_request req;
	memset(&req, 0, sizeof req);
	req.path = "/oauth/token";
	oauth_send(c, &req, &form, cb, arg);
}

void ghl_oauth_location_token(struct ghl_client *c, const char *agency_token,
			      const char *company_id, const char *location_id, ghl_oauth_fn cb,
			      void *arg)
{
	struct buf form;
	buf_init(&form);
	form_add(&form, "companyId", company_id);
	form_add(&form, "locationId", location_id);
	struct ghl_request req;
	memset(&req, 0, sizeof req);
	req.path = "/oauth/locationToken";
	req.token = agency_token;
	req.resource = company_id;
	oauth_send(c, &req, &form, cb, arg);
}
