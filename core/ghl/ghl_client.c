/* ghl_client.c — see ghl_client.h.
 *
 * Shape (curl's docs/examples/hiperfifo.c, in ghl_curl.c): one CURLM per
 * client driven by the loop; connections stay in the multi handle's cache
 * between requests.
 *
 * A request ("call") goes: queued in its resource's bucket → on the wire (one
 * easy handle per attempt) → maybe waiting for a token refresh → back in the
 * bucket → delivered; a transient fault of a request safe to repeat sends it
 * back to the bucket after a backoff on its own evtimer. Every entry point
 * from the loop counts itself in c->depth so ghl_client_free from inside a
 * callback only finishes the teardown once the outermost entry point returns.
 *
 * The files: ghl_client.c (calls, delivery, the public API), ghl_bucket.c
 * (per-resource queues), ghl_curl.c (libcurl on libevent), ghl_attempt.c
 * (what follows an attempt), ghl_refresh.c (single-flight 401 refresh),
 * ghl_oauth.c (the token endpoints); ghl_client_int.h is their shared header.
 */
#include "ghl_client_int.h"

#include <event2/event.h>

#include "json.h"

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

/* ---- small helpers ---- */

char *ghl_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;
	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_putc(&b, (char)*p);
		} else {
			buf_putc(&b, '%');
			buf_putc(&b, hex[*p >> 4]);
			buf_putc(&b, hex[*p & 15]);
		}
	}
	return buf_take(&b);
}

static const char *pick_version(const char *path)
{
	if (str_eq(path, "/oauth/token"))
		return NULL;
	if (str_has_prefix(path, "/saas/") || str_has_prefix(path, "/calendars/"))
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
		buf_clear(&b);
		return NULL;
	}
	if (b.len > MESSAGE_MAX) {
		b.len = MESSAGE_MAX;
		b.data[b.len] = '\0';
	}
	return buf_take(&b);
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

void ghl_client_enter(struct ghl_client *c)
{
	c->depth++;
}

void ghl_client_leave(struct ghl_client *c)
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

static void call_free(struct ghl_call *call)
{
	if (call->bk)
		call->bk->refs--;
	ghl_call_easy_release(call);
	ghl_call_resp_reset(call);
	buf_clear(&call->resp);
	if (event_initialized(&call->timer))
		event_del(&call->timer);
	if (event_initialized(&call->backoff))
		event_del(&call->backoff);
	free(call->method);
	free(call->path);
	free(call->url);
	if (call->body) {
		crypto_wipe(call->body, call->body_len);
		free(call->body);
	}
	free(call->version);
	secret_free(call->token);
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
	ghl_client_enter(c);
	ghl_call_deliver(call, call->fin_status, call->fin_outcome, call->fin_msg,
			 call->fin_retry_ms);
	ghl_client_leave(c);
}

void ghl_call_finish_later(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
			   long long retry_after_ms)
{
	call->state = CS_FINISHING;
	call->fin_status = status;
	call->fin_outcome = oc;
	free(call->fin_msg);
	call->fin_msg = msg ? xstrdup(msg) : NULL;
	call->fin_retry_ms = retry_after_ms;
	if (!event_initialized(&call->timer))
		evtimer_assign(&call->timer, call->c->base, on_call_timer, call);
	struct timeval tv = {0, 0};
	evtimer_add(&call->timer, &tv);
}

void ghl_call_deliver(struct ghl_call *call, int status, enum ghl_outcome oc, const char *msg,
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
	ghl_client_enter(c);
	call->cb(call->arg, &r);
	free(own_msg);
	call_free(call);
	ghl_client_leave(c);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_client *c = arg;
	int64_t now = now_monotonic_ms();
	ghl_bucket_sweep(c, now);
	ghl_rotation_sweep(c, now);
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
	long maxconn = o->max_host_connections > 0 ? o->max_host_connections
						   : DEFAULT_MAX_HOST_CONNECTIONS;

	event_assign(&c->sweep, base, -1, EV_PERSIST, on_sweep, c);
	if (ghl_curl_init(c, maxconn) != 0) {
		client_destroy(c);
		err_set(e, "ghl client: libcurl refused a multi option (see the log)");
		return NULL;
	}
	struct timeval sw = {SWEEP_INTERVAL_MS / 1000, 0};
	event_add(&c->sweep, &sw);
	return c;
}

static void client_destroy(struct ghl_client *c)
{
	for (int i = 0; i < BUCKET_HEADS; i++) {
		while (c->heads[i]) {
			struct bucket *bk = c->heads[i];
			c->heads[i] = bk->next;
			ghl_bucket_free(bk);
		}
	}
	ghl_rotation_clear_all(c);
	ghl_curl_cleanup(c);
	event_del(&c->sweep);
	free(c->api_base);
	free(c->client_id);
	secret_free(c->client_secret);
	free(c->user_agent);
	free(c);
	curl_global_cleanup();
}

struct ghl_client *ghl_client_free(struct ghl_client *c)
{
	if (!c || c->freeing)
		return NULL;
	c->freeing = 1;
	ghl_client_enter(c);
	/* orphan refreshes (their waiters are in c->calls) and empty the queues */
	ghl_refresh_orphan_all(c);
	for (int i = 0; i < BUCKET_HEADS; i++) {
		for (struct bucket *bk = c->heads[i]; bk; bk = bk->next) {
			bk->qhead = bk->qtail = bk->qlast_hi = NULL;
			evtimer_del(&bk->timer);
		}
	}
	ghl_curl_drop_waiting(c);
	while (c->calls) {
		struct ghl_call *call = c->calls;
		if (call->state == CS_ACTIVE && call->easy) {
			ghl_mcode_check("curl_multi_remove_handle",
					curl_multi_remove_handle(c->multi, call->easy));
			c->nactive--;
			if (call->bk)
				ghl_rl_on_abort(&call->bk->rl, now_monotonic_ms());
		} else if (call->state == CS_CONNWAIT && call->bk) {
			ghl_rl_on_abort(&call->bk->rl, now_monotonic_ms());
		}
		if (event_initialized(&call->timer))
			evtimer_del(&call->timer);
		if (event_initialized(&call->backoff))
			evtimer_del(&call->backoff);
		ghl_call_deliver(call, 0, GHL_CANCELLED, "cancelled", 0);
	}
	c->destroy_pending = 1;
	ghl_client_leave(c);
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
		ghl_call_deliver(call, 0, GHL_CANCELLED, "cancelled", 0);
		return;
	}
	if (!req || !req->path || req->path[0] != '/' || (req->json_body && req->form_body)) {
		ghl_call_finish_later(
			call, 0, GHL_PERMANENT,
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
	call->low = req->low_priority != 0;
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
		call->bk = ghl_bucket_get(c, call->bucket_key);
		call->bk->refs++;
	}
	ghl_call_submit(call);
}

void ghl_request_send(struct ghl_client *c, const struct ghl_request *req, ghl_done_fn cb,
		      void *arg)
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

int ghl_client_waiting(const struct ghl_client *c)
{
	int n = 0;
	for (const struct ghl_call *call = c ? c->cw_head : NULL; call; call = call->cwnext)
		n++;
	return n;
}

long long ghl_client_retries(const struct ghl_client *c)
{
	return c ? c->retries : 0;
}
