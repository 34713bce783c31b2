/* ghl_curl.c — libcurl's multi-socket API on the GHL client's libevent loop
 * (curl's docs/examples/hiperfifo.c): one event per socket libcurl asks us to
 * watch, one evtimer for its timeouts, one easy handle per attempt. The
 * events are embedded in their owners and (re)armed with event_assign; every
 * CURLMcode is checked and a failure logged.
 */
#include "ghl_client_int.h"

#include <event2/event.h>
#include <limits.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "ssrf_guard.h"

void ghl_call_easy_release(struct ghl_call *call)
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

void ghl_call_resp_reset(struct ghl_call *call)
{
	if (call->resp.data)
		crypto_wipe(call->resp.data, call->resp.cap);
	buf_reset(&call->resp);
	call->json = json_free(call->json);
	call->too_large = 0;
	ghl_rl_headers_init(&call->rlh);
	call->trace_hdr[0] = '\0';
	call->errbuf[0] = '\0';
	call->sends = 0;
	call->resend_refused = 0;
}

/* ---- libcurl glue (hiperfifo) ---- */

int ghl_mcode_check(const char *where, CURLMcode mc)
{
	if (mc == CURLM_OK)
		return 0;
	/* a socket libcurl has just closed can still have an event in flight;
	 * hiperfifo.c ignores CURLM_BAD_SOCKET for that reason */
	if (mc == CURLM_BAD_SOCKET)
		log_debug("ghl client: libcurl multi call failed", "call", where, "error",
			  curl_multi_strerror(mc), NULL);
	else
		log_error("ghl client: libcurl multi call failed", "call", where, "error",
			  curl_multi_strerror(mc), NULL);
	return -1;
}

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
	if (event_initialized(&si->ev))
		event_del(&si->ev);
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
	int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running = 0;
	ghl_client_enter(c);
	ghl_mcode_check("curl_multi_socket_action",
			curl_multi_socket_action(c->multi, fd, action, &running));
	check_multi_info(c);
	ghl_client_leave(c);
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
		ghl_mcode_check("curl_multi_assign", curl_multi_assign(c->multi, s, si));
	} else if (event_initialized(&si->ev)) {
		event_del(&si->ev);
	}
	event_assign(&si->ev, c->base, s, kind, on_sock_event, c);
	if (event_add(&si->ev, NULL) != 0) {
		log_error("ghl client: cannot watch a socket for libcurl", NULL);
		return -1; /* libcurl fails the transfers on this socket */
	}
	return 0;
}

static void on_curl_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ghl_client *c = arg;
	int running = 0;
	ghl_client_enter(c);
	ghl_mcode_check("curl_multi_socket_action",
			curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running));
	check_multi_info(c);
	ghl_client_leave(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	struct ghl_client *c = userp;
	if (timeout_ms < 0) {
		evtimer_del(&c->curl_timer);
	} else {
		struct timeval tv = {(time_t)(timeout_ms / 1000),
				     (suseconds_t)((timeout_ms % 1000) * 1000)};
		evtimer_add(&c->curl_timer, &tv);
	}
	return 0;
}

/* ---- attempts ---- */

/* Before each send of a write that is not safe to repeat: the first goes,
 * a second (libcurl resending on a fresh connection) is refused. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	struct ghl_call *call = ud;
	if (call->sends++ == 0)
		return CURL_PREREQFUNC_OK;
	call->resend_refused = 1;
	return CURL_PREREQFUNC_ABORT;
}

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
		secret_free(a);
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
	const char *refused = NULL;
#define SET(opt, val)                                                                   \
	do {                                                                            \
		if (rc == CURLE_OK && (rc = curl_easy_setopt(e, opt, val)) != CURLE_OK) \
			refused = #opt;                                                 \
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
	 * have applied (CURLOPT_FORBID_RETRY_ON_REUSE needs libcurl 8.16). A
	 * write that is not safe to repeat still reuses a kept-alive
	 * connection, but its pre-request callback refuses a second send within
	 * one attempt, so the attempt ends as a lost reply instead (its step
	 * decides). A fresh connection per write cost a connect and a close per
	 * POST: bench_jobs (c), 3 of 7 calls per job. */
	if (!call->repeatable) {
		SET(CURLOPT_PREREQFUNCTION, on_prereq);
		SET(CURLOPT_PREREQDATA, call);
	}
	if (c->public_only)
		SET(CURLOPT_OPENSOCKETFUNCTION, ssrf_guard_opensocket);
	if (strcmp(call->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(call->method, "POST") == 0)
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, call->method);
		if (call->body || strcmp(call->method, "POST") == 0 ||
		    strcmp(call->method, "PUT") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
			SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
		}
	}
#undef SET
	if (rc != CURLE_OK) {
		log_error("ghl client: libcurl refused an option", "option", refused, "error",
			  curl_easy_strerror(rc), NULL);
		return -1;
	}
	return 0;
}

/* An attempt the bucket counted as sent never left: its slot goes back. */
static void attempt_unsent(struct ghl_call *call)
{
	struct bucket *bk = call->bk;
	if (!bk)
		return;
	ghl_rl_on_abort(&bk->rl, now_monotonic_ms());
	if (bk->qhead)
		ghl_bucket_kick(bk, 0);
}

/* Hands the attempt to libcurl (a slot is free). */
static void attempt_launch(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	ghl_call_resp_reset(call);
	ghl_call_easy_release(call);
	call->attempts++;
	call->hdrs = build_headers(call);
	call->easy = curl_easy_init();
	if (!call->easy || easy_setup(call) != 0) {
		attempt_unsent(call);
		ghl_call_finish_later(call, 0, GHL_PERMANENT, "libcurl: cannot set up the request",
				      0);
		return;
	}
	if (ghl_mcode_check("curl_multi_add_handle", curl_multi_add_handle(c->multi, call->easy)) !=
	    0) {
		attempt_unsent(call);
		ghl_call_finish_later(call, 0, GHL_RETRYABLE, "libcurl: cannot add the request", 0);
		return;
	}
	call->state = CS_ACTIVE;
	c->nactive++;
}

void ghl_attempt_start(struct ghl_call *call)
{
	struct ghl_client *c = call->c;
	/* the bucket counts the request as sent from here: the wait for a
	 * connection is the client's, as it was inside libcurl */
	call->t_attempt = now_monotonic_ms();
	if (call->bk)
		ghl_rl_on_send(&call->bk->rl, call->t_attempt);
	if (c->nactive < c->max_active) {
		attempt_launch(call);
		return;
	}
	call->state = CS_CONNWAIT;
	call->cwnext = NULL;
	if (c->cw_tail)
		c->cw_tail->cwnext = call;
	else
		c->cw_head = call;
	c->cw_tail = call;
}

/* Transfers ended: the attempts waiting for a connection take their slots. */
static void launch_waiting(struct ghl_client *c)
{
	while (!c->freeing && c->cw_head && c->nactive < c->max_active) {
		struct ghl_call *call = c->cw_head;
		c->cw_head = call->cwnext;
		if (!c->cw_head)
			c->cw_tail = NULL;
		call->cwnext = NULL;
		attempt_launch(call);
	}
}

void ghl_curl_drop_waiting(struct ghl_client *c)
{
	c->cw_head = c->cw_tail = NULL;
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
		ghl_mcode_check("curl_multi_remove_handle", curl_multi_remove_handle(c->multi, e));
		c->nactive--;
		if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) {
			log_error("ghl client: a finished transfer has no call", NULL);
			continue; /* cannot happen: every easy handle is set up with its call */
		}
		ghl_attempt_done((struct ghl_call *)(void *)priv, rc);
	}
	launch_waiting(c);
}

int ghl_curl_init(struct ghl_client *c, long maxconn)
{
	evtimer_assign(&c->curl_timer, c->base, on_curl_timeout, c);
	c->max_active = maxconn > 0 && maxconn < INT_MAX ? (int)maxconn : INT_MAX;
	int bad = 0;
#define MSET(opt, val) \
	bad |= ghl_mcode_check("curl_multi_setopt(" #opt ")", curl_multi_setopt(c->multi, opt, val))
	MSET(CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	MSET(CURLMOPT_SOCKETDATA, c);
	MSET(CURLMOPT_TIMERFUNCTION, on_curl_timer);
	MSET(CURLMOPT_TIMERDATA, c);
	MSET(CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
	MSET(CURLMOPT_MAXCONNECTS, maxconn * 2);
#undef MSET
	return bad ? -1 : 0;
}

void ghl_curl_cleanup(struct ghl_client *c)
{
	/* may still report sockets to close */
	ghl_mcode_check("curl_multi_cleanup", curl_multi_cleanup(c->multi));
	while (c->socks)
		sockinfo_free(c, c->socks);
	evtimer_del(&c->curl_timer);
}
