/* bench_curl_floor.c — the least CPU an HTTP client on our stack spends per
 * GHL call (issue 15 item 3: the agent's µs per call, goal <= 50): libcurl's
 * multi-socket API on a libevent loop, as core/ghl/ghl_curl.c drives it
 * (hiperfifo), with the same easy-handle options, one new easy handle per
 * request, against ghl-sim with the latency of bench_jobs (c) so that as
 * many requests are in flight. The client does nothing else: no JSON, no
 * journal, no tokens, no rate-limit buckets. Its CPU per request (getrusage,
 * user + system, over the run) is what any agent built on libcurl and
 * libevent pays at least; bench_jobs (c) prints the agent's for comparison.
 * Printed, never asserted.
 * Usage: bench_curl_floor   BENCH_REQUESTS (20000) BENCH_INFLIGHT (1000)
 * BENCH_LATENCY_MS (200) BENCH_MAXCONN (CURLMOPT_MAX_HOST_CONNECTIONS; unset:
 * one run with 4000 as bench_jobs (c) gives the agent, one with 512, the
 * agent's default ghl_max_connections)
 * BENCH_SMOKE=1: 300 requests, 50 in flight, 5 ms.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <signal.h>
#include <sys/resource.h>

#include "ghl_harness.h"

struct sock {
	struct event ev;
	struct sock *prev, *next; /* the run's, freed at the end if libcurl kept any */
};

struct floor_run {
	struct event_base *base;
	CURLM *multi;
	struct event timer;
	struct curl_slist *hdrs;
	struct sock *socks;
	char url[128];
	long started, finished, failed, total;
	size_t bytes;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	struct floor_run *run = ud;
	run->bytes += size * n;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static void start_one(struct floor_run *run)
{
	/* no ck_assert per request: Check writes each one's location to its
	 * pipe (two system calls per request, no part of any client's floor) */
	CURL *e = curl_easy_init();
	if (!e) {
		fprintf(stderr, "bench_curl_floor: curl_easy_init failed\n");
		abort();
	}
	curl_easy_setopt(e, CURLOPT_URL, run->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, run);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, run);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, run);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ghl-agent-floor/1");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, run->hdrs);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (curl_multi_add_handle(run->multi, e) != CURLM_OK) {
		fprintf(stderr, "bench_curl_floor: curl_multi_add_handle failed\n");
		abort();
	}
	run->started++;
}

static void check_done(struct floor_run *run)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(run->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		long code = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		if (m->data.result != CURLE_OK || code == 0)
			run->failed++;
		run->finished++;
		curl_multi_remove_handle(run->multi, e);
		curl_easy_cleanup(e);
		if (run->started < run->total)
			start_one(run);
	}
	if (run->finished == run->total)
		event_base_loopbreak(run->base);
}

static void on_sock_event(evutil_socket_t fd, short kind, void *arg)
{
	struct floor_run *run = arg;
	int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(run->multi, fd, action, &running);
	check_done(run);
}

static void sock_free(struct floor_run *run, struct sock *si)
{
	if (event_initialized(&si->ev))
		event_del(&si->ev);
	if (si->prev)
		si->prev->next = si->next;
	else
		run->socks = si->next;
	if (si->next)
		si->next->prev = si->prev;
	free(si);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	struct floor_run *run = userp;
	struct sock *si = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (si)
			sock_free(run, si);
		return 0;
	}
	short kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
			     ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (!si) {
		si = xcalloc(1, sizeof(*si));
		si->next = run->socks;
		if (run->socks)
			run->socks->prev = si;
		run->socks = si;
		curl_multi_assign(run->multi, s, si);
	} else {
		event_del(&si->ev);
	}
	event_assign(&si->ev, run->base, s, kind, on_sock_event, run);
	return event_add(&si->ev, NULL) ? -1 : 0;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct floor_run *run = arg;
	int running;
	curl_multi_socket_action(run->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(run);
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	(void)m;
	struct floor_run *run = userp;
	if (ms < 0) {
		evtimer_del(&run->timer);
	} else {
		struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
		evtimer_add(&run->timer, &tv);
	}
	return 0;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	return v && *v ? atol(v) : def;
}

static double cpu_us(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* One run of total requests against ghl-sim on port: its figures printed. */
static void measure(int port, long total, long inflight, long latency, long maxconn)
{
	struct floor_run run = {.total = total};
	/* an API path with a bearer token of a real one's size: ghl-sim answers
	 * 401 with a small JSON body after the latency, like any API reply */
	snprintf(run.url, sizeof(run.url),
		 "http://127.0.0.1:%d/locations/search?companyId=floor&limit=1", port);
	char auth[600] = "Authorization: Bearer ";
	for (size_t i = strlen(auth); i < 400; i++)
		auth[i] = 'a' + (char)(i % 26);
	run.hdrs = curl_slist_append(NULL, auth);
	run.hdrs = curl_slist_append(run.hdrs, "Version: 2021-07-28");
	run.hdrs = curl_slist_append(run.hdrs, "Accept: application/json");
	run.base = event_base_new();
	run.multi = curl_multi_init();
	evtimer_assign(&run.timer, run.base, on_timeout, &run);
	curl_multi_setopt(run.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(run.multi, CURLMOPT_SOCKETDATA, &run);
	curl_multi_setopt(run.multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(run.multi, CURLMOPT_TIMERDATA, &run);
	/* as ghl_curl_init sets them from ghl_max_connections */
	curl_multi_setopt(run.multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
	curl_multi_setopt(run.multi, CURLMOPT_MAXCONNECTS, 2 * maxconn);

	double c0 = cpu_us();
	int64_t t0 = now_monotonic_ms();
	for (long i = 0; i < inflight && i < total; i++)
		start_one(&run);
	event_base_dispatch(run.base);
	int64_t ms = now_monotonic_ms() - t0;
	double cpu = cpu_us() - c0;

	ck_assert_int_eq(run.finished, total);
	ck_assert_msg(run.failed == 0, "%ld of %ld requests failed", run.failed, total);
	ck_assert_msg(run.bytes > 0, "no reply bodies");
	printf("%ld requests, %ld in flight, %ld connections at most, %ld ms latency: %.0f req/s, "
	       "client CPU %.1f us per request\n",
	       total, inflight, maxconn, latency,
	       ms > 0 ? (double)total * 1000.0 / (double)ms : 0.0, cpu / (double)total);
	fflush(stdout);
	curl_multi_cleanup(run.multi);
	while (run.socks)
		sock_free(&run, run.socks);
	curl_slist_free_all(run.hdrs);
	event_del(&run.timer);
	event_base_free(run.base);
}

static void bench(void)
{
	int smoke = getenv("BENCH_SMOKE") != NULL;
	long total = env_long("BENCH_REQUESTS", smoke ? 300 : 20000);
	long inflight = env_long("BENCH_INFLIGHT", smoke ? 50 : 1000);
	long latency = env_long("BENCH_LATENCY_MS", smoke ? 5 : 200);
	char lat[24];
	snprintf(lat, sizeof(lat), "%ld", latency);
	const char *argv[] = {tl_env("GHL_SIM_BIN"),
			      "--listen",
			      "127.0.0.1:0",
			      "--rate-limit",
			      "0",
			      "--daily-limit",
			      "0",
			      "--latency-ms",
			      lat,
			      NULL};
	int port = 0;
	pid_t sim = tl_sim_spawn(argv, 1, &port);
	printf("libcurl + libevent floor: a client that only sends and reads (no JSON, no "
	       "journal), new easy handle per request, kept-alive connections\n");
	if (getenv("BENCH_MAXCONN")) {
		measure(port, total, inflight, latency, env_long("BENCH_MAXCONN", 512));
	} else {
		/* as bench_jobs (c) runs the agent (ghl_max_connections 4000: every
		 * call on its own connection), then the agent's default 512, where
		 * calls beyond it wait in libcurl's own queue */
		measure(port, total, inflight, latency, smoke ? 100 : 4000);
		measure(port, total, inflight, latency, smoke ? 20 : 512);
	}
	tl_stop(sim, SIGTERM, 10000, "ghl-sim", NULL);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = tl_run_bench("curl_floor", bench);
	curl_global_cleanup();
	return rc;
}
