/* ghl_attempt.c — what follows one attempt of a GHL request: the reply is
 * classified, logged, and the call is delivered, held for its bucket after a
 * 429, retried after a backoff, or handed to the token refresh after a 401.
 */
#include "ghl_client_int.h"

#include <event2/event.h>
#include <stdio.h>

#include "json.h"
#include "log.h"

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
	buf_clear(&tmpl);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_call *call = arg;
	struct ghl_client *c = call->c;
	ghl_client_enter(c);
	ghl_call_submit(call);
	ghl_client_leave(c);
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
	long long d = backoff_ms(call->transient + 1, c->retry_base_ms, MAX_RETRY_DELAY_MS, ra,
				 rnd);
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
		buf_clear(&tmpl);
	}
	call->state = CS_BACKOFF;
	if (!event_initialized(&call->backoff))
		evtimer_assign(&call->backoff, c->base, on_backoff, call);
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(&call->backoff, &tv);
	return 1;
}

void ghl_attempt_done(struct ghl_call *call, CURLcode rc)
{
	struct ghl_client *c = call->c;
	long status = 0;
	if (rc == CURLE_OK &&
	    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0; /* cannot happen after CURLE_OK; treated as no answer */
	ghl_call_easy_release(call);
	int64_t now = now_monotonic_ms();
	struct bucket *bk = call->bk;
	if (bk) {
		if (status > 0)
			ghl_rl_on_reply(&bk->rl, now, (int)status, &call->rlh);
		else
			ghl_rl_on_abort(&bk->rl, now);
		if (bk->qhead)
			ghl_bucket_kick(bk, 0);
	}
	if (status > 0 && call->resp.len) {
		const char *p = buf_cstr(&call->resp);
		p += strspn(p, " \t\r\n");
		if (*p == '{' || *p == '[')
			call->json = json_parse(call->resp.data, call->resp.len,
						JSON_DEFAULT_MAX_DEPTH, NULL);
	}
	char *transport = NULL;
	if (status == 0) {
		if (call->too_large)
			transport = xasprintf("reply body larger than %zu bytes", c->max_body);
		else if (call->resend_refused)
			transport = xstrdup(
				"the connection closed before any reply; the request may "
				"have been applied, so it was not sent again");
		else
			transport = xasprintf("%s", call->errbuf[0] ? call->errbuf
								    : curl_easy_strerror(rc));
	}
	log_attempt(call, (int)status, transport, now);
	if (transport && c->public_only) { /* the cause stays in the log line above */
		free(transport);
		transport = xstrdup("no HTTP answer (refused, unreachable or timed out)");
	}

	enum ghl_outcome oc = classify((int)status, rc, call->too_large);
	if (status == 401 && call->has_hooks && !call->refreshed) {
		free(transport);
		ghl_refresh_begin(call);
		return;
	}
	if (status == 429 && bk && call->attempts < c->max_attempts) {
		free(transport);
		ghl_call_submit(call); /* held until the bucket reopens */
		return;
	}
	if (transient_retry(call, (int)status, oc)) {
		free(transport);
		return;
	}
	long long retry = 0;
	if (status == 429)
		retry = bk			       ? ghl_rl_retry_after_ms(&bk->rl, now)
			: call->rlh.retry_after_ms > 0 ? call->rlh.retry_after_ms
						       : DEFAULT_429_RETRY_MS;
	else if (oc == GHL_RETRYABLE && call->rlh.retry_after_ms > 0)
		retry = call->rlh.retry_after_ms;
	ghl_call_deliver(call, (int)status, oc, transport, retry);
	free(transport);
}
