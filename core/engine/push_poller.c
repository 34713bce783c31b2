/* push_poller.c — the shared snapshot-push poller; see push_poller.h. */
#include "push_poller.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "json.h"
#include "util.h"

/* Settled pushes nobody waited for yet are kept this long (a job's step may
 * start waiting after its push was listed finished), at most this many. */
#define PUSH_SEEN_MS 300000
#define PUSH_SEEN_MAX 2000

struct push_wait {
	struct push_group *g;
	char *location_id;
	int64_t due_ms, deadline_ms;
	long long interval_ms;
	int misses;	    /* due polls that did not list it */
	int seen_this_tick; /* listed by the tick in progress */
	int status;	    /* the answer, once picked */
	struct json *row;   /* its push as last listed, or NULL */
	int ready;	    /* settled: answered at the next tick */
	push_wait_fn cb;
	void *arg;
	struct push_wait *next;
};

/* A settled push listed before its waiter came. */
struct push_seen {
	char *location_id;
	struct json *row;
	int64_t at_ms;
	struct push_seen *next;
};

struct push_group {
	struct push_poller *p;
	char *company_id, *snapshot_id;
	char *token; /* the newest agency token a waiter brought (secret) */
	struct ghl_token_hooks hooks;
	int have_hooks;
	int64_t from_ms; /* the window's start (wall clock) */
	char *cursor;	 /* lastDoc that skips the settled front of the list */
	struct push_wait *waiters;
	struct push_seen *seen;
	struct event *timer;
	int64_t last_poll_ms; /* monotonic; 0: never */
	/* the tick in progress (page < 0: none) */
	int page;		  /* pages read so far */
	int polling;		  /* a page request is out */
	char *page_doc;		  /* lastDoc of the next page */
	int front_settled;	  /* every row read this tick so far was settled */
	char *next_cursor;	  /* the cursor this tick has earned */
	char *trace_id;		  /* of the tick's last page */
	int refused;		  /* 0, or the status GHL refused the list with */
	int answering;		  /* tick_end is calling back */
	struct push_wait *answer; /* whom tick_end is answering */
	struct push_group *next;
};

struct push_poller {
	struct event_base *base;
	struct ghl_client *ghl;
	struct push_group *groups;
	long long polls;
};

static void send_page(struct push_group *g);

struct push_poller *push_poller_new(struct event_base *base, struct ghl_client *ghl)
{
	struct push_poller *p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->ghl = ghl;
	return p;
}

static void wait_free(struct push_wait *w)
{
	json_free(w->row);
	free(w->location_id);
	free(w);
}

static void seen_free(struct push_seen *s)
{
	json_free(s->row);
	free(s->location_id);
	free(s);
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

static void set_token(struct push_group *g, const char *token)
{
	secret_free(g->token);
	g->token = token ? xstrdup(token) : NULL;
}

static void group_free(struct push_group *g)
{
	while (g->waiters) {
		struct push_wait *w = g->waiters;
		g->waiters = w->next;
		wait_free(w);
	}
	while (g->answer) {
		struct push_wait *w = g->answer;
		g->answer = w->next;
		wait_free(w);
	}
	while (g->seen) {
		struct push_seen *s = g->seen;
		g->seen = s->next;
		seen_free(s);
	}
	if (g->timer)
		event_free(g->timer);
	set_token(g, NULL);
	free(g->company_id);
	free(g->snapshot_id);
	free(g->cursor);
	free(g->page_doc);
	free(g->next_cursor);
	free(g->trace_id);
	free(g);
}

/* Unlink and free g when nothing needs it any more. Returns 1 when freed. */
static int group_release(struct push_group *g)
{
	if (g->waiters || g->polling || g->answering)
		return 0;
	for (struct push_group **pp = &g->p->groups; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	group_free(g);
	return 1;
}

struct push_poller *push_poller_free(struct push_poller *p)
{
	if (!p)
		return NULL;
	while (p->groups) {
		struct push_group *g = p->groups;
		p->groups = g->next;
		group_free(g);
	}
	free(p);
	return NULL;
}

long long push_poller_polls(const struct push_poller *p)
{
	return p ? p->polls : 0;
}

/* Arm the timer for the next thing to do: an answer, a due poll (one per
 * interval at most, however many waiters come), a deadline. */
static void plan(struct push_group *g)
{
	if (g->page >= 0 || g->answering || !g->waiters)
		return;
	int64_t now = now_monotonic_ms();
	long long interval = -1;
	int64_t due = INT64_MAX, deadline = INT64_MAX;
	for (struct push_wait *w = g->waiters; w; w = w->next) {
		if (w->ready)
			deadline = now;
		if (w->due_ms < due)
			due = w->due_ms;
		if (w->deadline_ms < deadline)
			deadline = w->deadline_ms;
		if (interval < 0 || w->interval_ms < interval)
			interval = w->interval_ms;
	}
	if (g->last_poll_ms && due < g->last_poll_ms + interval)
		due = g->last_poll_ms + interval;
	int64_t at = due < deadline ? due : deadline;
	long long delay = at > now ? at - now : 0;
	struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
	evtimer_add(g->timer, &tv);
}

static void answer_row(struct push_wait *w, const char *trace_id)
{
	struct json *body = json_new_object();
	json_object_set_take(body, "data", w->row ? json_clone(w->row) : json_new_null());
	w->cb(w->arg, 200, GHL_OK, body, NULL, trace_id);
	json_free(body);
	wait_free(w);
}

static int settled(const struct json *row)
{
	const char *st = json_get_str(row, "status");
	return st && strcmp(st, "processing") != 0;
}

static void remember(struct push_group *g, const char *location_id, const struct json *row,
		     int64_t now)
{
	/* drop the stale, the same location's and, past the cap, the oldest */
	struct push_seen **pp = &g->seen;
	int k = 0;
	while (*pp) {
		struct push_seen *s = *pp;
		if (now - s->at_ms > PUSH_SEEN_MS || ++k >= PUSH_SEEN_MAX ||
		    str_eq(s->location_id, location_id)) {
			*pp = s->next;
			seen_free(s);
		} else {
			pp = &s->next;
		}
	}
	struct push_seen *s = xcalloc(1, sizeof(*s));
	s->location_id = xstrdup(location_id);
	s->row = json_clone(row);
	s->at_ms = now;
	s->next = g->seen;
	g->seen = s;
}

/* One row of the list: note it for its waiters, or remember it. */
static void take_row(struct push_group *g, const struct json *row, int64_t now)
{
	const char *loc = json_get_str(row, "locationId");
	const char *id = json_get_str(row, "id");
	int done = settled(row);
	if (g->front_settled && done && id)
		set_str(&g->next_cursor, id);
	else
		g->front_settled = 0;
	if (!loc)
		return;
	int matched = 0;
	for (struct push_wait *w = g->waiters; w; w = w->next) {
		if (!str_eq(w->location_id, loc))
			continue;
		matched = 1;
		json_free(w->row);
		w->row = json_clone(row);
		w->misses = 0;
		w->seen_this_tick = 1;
		w->ready = done;
	}
	if (!matched && done)
		remember(g, loc, row, now);
}

/* Answer the waiters this tick settled, missed too often or ran out of time;
 * then free the group or plan its next tick. polled: a list was read. */
static void tick_end(struct push_group *g, int polled)
{
	int64_t now = now_monotonic_ms();
	if (polled && g->next_cursor) {
		free(g->cursor);
		g->cursor = g->next_cursor;
		g->next_cursor = NULL;
	}
	g->page = -1;
	/* first pick whom to answer, then call them back one at a time from that
	 * list: a callback may wait again (the group stays) or cancel a waiter */
	struct push_wait **pp = &g->waiters, **tail = &g->answer;
	while (*pp) {
		struct push_wait *w = *pp;
		int due = w->due_ms <= now;
		if (polled && due && !w->ready && !w->seen_this_tick)
			w->misses++;
		w->seen_this_tick = 0;
		int late = now >= w->deadline_ms;
		int missing = w->misses >= PUSH_MISSES;
		int refused = g->refused && due;
		if (!w->ready && !late && !missing && !refused) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = NULL;
		w->status = w->ready || (late && w->row && !missing) ? 200
			    : refused && !late && !missing	     ? g->refused
								     : 404;
		*tail = w;
		tail = &w->next;
	}
	g->refused = 0;
	g->answering = 1; /* no release, no plan from inside the callbacks */
	while (g->answer) {
		struct push_wait *w = g->answer;
		g->answer = w->next;
		if (w->status == 200) {
			answer_row(w, g->trace_id);
			continue;
		}
		w->cb(w->arg, w->status, GHL_PERMANENT, NULL,
		      w->status == 404 ? "the location's push is not in GHL's list of the "
					 "snapshot's pushes"
				       : "GHL refused the list of the snapshot's pushes",
		      g->trace_id);
		wait_free(w);
	}
	g->answering = 0;
	if (!group_release(g))
		plan(g);
}

static void on_page(void *arg, const struct ghl_response *res)
{
	struct push_group *g = arg;
	g->polling = 0;
	set_str(&g->trace_id, res->trace_id);
	if (res->outcome == GHL_CANCELLED) { /* the client is going away */
		g->page = -1;
		group_release(g);
		return;
	}
	if (res->outcome != GHL_OK) {
		/* 429, 5xx, a timeout: again next tick, nobody missed; a refusal:
		 * the steps ask about their own location instead */
		if (res->outcome == GHL_PERMANENT || res->outcome == GHL_AUTH)
			g->refused = res->status ? res->status : 400;
		tick_end(g, 0);
		return;
	}
	int64_t now = now_monotonic_ms();
	struct json *data = json_get(res->json, "data");
	size_t n = data && data->type == JSON_ARRAY ? json_len(data) : 0;
	const char *last = NULL;
	for (size_t i = 0; i < n; i++) {
		struct json *row = json_at(data, i);
		if (row && row->type == JSON_OBJECT) {
			take_row(g, row, now);
			last = json_get_str(row, "id");
		}
	}
	g->page++;
	if (n >= PUSH_PAGE && last && g->page < PUSH_MAX_PAGES) {
		set_str(&g->page_doc, last);
		send_page(g);
		return;
	}
	tick_end(g, 1);
}

/* "MM-DD-YYYY hh:mm AM" (UTC) of a wall-clock time in ms. */
static void ghl_date(int64_t ms, char out[64])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	int h = tm.tm_hour % 12;
	snprintf(out, 64, "%02d-%02d-%04d %02d:%02d %s", tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_year + 1900, h ? h : 12, tm.tm_min, tm.tm_hour < 12 ? "AM" : "PM");
}

static void send_page(struct push_group *g)
{
	char from[64], to[64];
	ghl_date(g->from_ms, from);
	ghl_date(now_wall_ms() + 24LL * 3600 * 1000, to); /* whatever GHL's clock says */
	char *company = ghl_urlencode(g->company_id);
	char *f = ghl_urlencode(from), *t = ghl_urlencode(to);
	char *doc = ghl_urlencode(g->page_doc ? g->page_doc : "");
	char *snap = ghl_urlencode(g->snapshot_id);
	char *path = xasprintf("/snapshots/snapshot-status/%s", snap);
	char *query = xasprintf("companyId=%s&from=%s&to=%s&lastDoc=%s&limit=%d", company, f, t,
				doc, PUSH_PAGE);
	struct ghl_request rq = {.method = "GET",
				 .path = path,
				 .query = query,
				 .token = g->token,
				 .resource = g->company_id};
	g->polling = 1;
	g->p->polls++;
	g->last_poll_ms = now_monotonic_ms();
	if (g->have_hooks)
		ghl_request_send_auth(g->p->ghl, &rq, &g->hooks, on_page, g);
	else
		ghl_request_send(g->p->ghl, &rq, on_page, g);
	free(company);
	free(f);
	free(t);
	free(doc);
	free(snap);
	free(path);
	free(query);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct push_group *g = arg;
	if (g->page >= 0)
		return;
	int64_t now = now_monotonic_ms();
	int poll = 0;
	for (struct push_wait *w = g->waiters; w; w = w->next)
		if (!w->ready && w->due_ms <= now && w->deadline_ms > now)
			poll = 1;
	if (poll && !g->token)
		g->refused = 401; /* cannot ask: the steps ask themselves */
	if (!poll || !g->token) {
		tick_end(g, 0);
		return;
	}
	g->page = 0;
	g->front_settled = 1;
	set_str(&g->page_doc, g->cursor);
	set_str(&g->next_cursor, NULL);
	send_page(g);
}

static struct push_group *group_for(struct push_poller *p, const struct push_wait_req *rq)
{
	for (struct push_group *g = p->groups; g; g = g->next)
		if (str_eq(g->company_id, rq->company_id) &&
		    str_eq(g->snapshot_id, rq->snapshot_id))
			return g;
	struct push_group *g = xcalloc(1, sizeof(*g));
	g->p = p;
	g->company_id = xstrdup(rq->company_id);
	g->snapshot_id = xstrdup(rq->snapshot_id);
	g->from_ms = now_wall_ms() - 60000; /* the push started a moment before its wait */
	g->page = -1;
	g->timer = evtimer_new(p->base, on_timer, g);
	g->next = p->groups;
	p->groups = g;
	return g;
}

struct push_wait *push_poller_wait(struct push_poller *p, const struct push_wait_req *rq,
				   push_wait_fn cb, void *arg)
{
	struct push_group *g = group_for(p, rq);
	set_token(g, rq->token);
	if (rq->hooks) {
		g->hooks = *rq->hooks;
		g->have_hooks = 1;
	}
	int64_t now = now_monotonic_ms();
	struct push_wait *w = xcalloc(1, sizeof(*w));
	w->g = g;
	w->location_id = xstrdup(rq->location_id);
	w->due_ms = now + (rq->first_poll_ms > 0 ? rq->first_poll_ms : 0);
	w->deadline_ms = now + (rq->max_wait_ms > 0 ? rq->max_wait_ms : 0);
	w->interval_ms = rq->interval_ms >= 100 ? rq->interval_ms : 100;
	w->cb = cb;
	w->arg = arg;
	for (struct push_seen **pp = &g->seen; *pp; pp = &(*pp)->next) {
		struct push_seen *s = *pp;
		if (str_eq(s->location_id, rq->location_id)) {
			w->row = s->row; /* listed settled before it came: answered next */
			s->row = NULL;
			w->ready = 1;
			*pp = s->next;
			seen_free(s);
			break;
		}
	}
	w->next = g->waiters;
	g->waiters = w;
	if (g->page < 0) {
		evtimer_del(g->timer);
		plan(g);
	}
	return w;
}

/* Unlink w from the list at pp; 1 when it was there. */
static int unlink_wait(struct push_wait **pp, struct push_wait *w)
{
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return 1;
		}
	}
	return 0;
}

void push_poller_cancel(struct push_poller *p, struct push_wait *w)
{
	(void)p;
	struct push_group *g = w->g;
	if (unlink_wait(&g->waiters, w) || unlink_wait(&g->answer, w))
		wait_free(w);
	if (g->page < 0 && !group_release(g)) {
		evtimer_del(g->timer);
		plan(g);
	}
}
