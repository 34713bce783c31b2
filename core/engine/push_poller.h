/* push_poller.h — one poll per tick per snapshot for every job waiting for
 * that snapshot's push into its new location (WAIT_FOR_SNAPSHOT).
 *
 * Waiters of one company and snapshot form a group. While a group has a
 * waiter that is due (its first poll comes after the typical push time the
 * step asks for), each tick — the shortest interval its waiters ask for —
 * sends one GET /snapshots/snapshot-status/{snapshotId} (GHL's "pushes
 * between dates", agency token) and settles every waiter whose location's
 * push the answer shows finished, instead of one
 * GET …/snapshot-status/{snapshotId}/location/{locationId} per job and poll.
 *
 * The window starts a minute before the group's first waiter came (the dates
 * have minute resolution, read as UTC) and pages follow `lastDoc`; a cursor
 * skips the settled pushes at the front of the list on later ticks (an
 * optimisation: GHL does not document the order, and nothing depends on it).
 * Pushes settled before their job started waiting are remembered for a while.
 *
 * A waiter ends with one call of its callback:
 *   - 200 and {"data": {"id","locationId","status",…}} — its push as listed,
 *     settled (any status but "processing"), or still processing when
 *     max_wait_ms ran out;
 *   - 404 when its location was not listed after PUSH_MISSES due polls, or
 *     max_wait_ms ran out before it was ever listed, and the list's own
 *     failure when GHL refused the list permanently: the step then asks
 *     GHL about its location itself (the per-location endpoint).
 * Single-threaded (the loop's thread). */
#ifndef GHL_PUSH_POLLER_H
#define GHL_PUSH_POLLER_H

#include "ghl_client.h"

struct event_base;
struct push_poller;
struct push_wait;

/* Due polls a waiter may miss from the list before it is told 404. */
#define PUSH_MISSES 3
/* Rows asked per page, and pages per tick at most. */
#define PUSH_PAGE 100
#define PUSH_MAX_PAGES 10

struct push_wait_req {
	const char *agency_id;	/* the agency's id (groups are per company) */
	const char *company_id; /* GHL company id */
	const char *snapshot_id;
	const char *location_id;
	const char *token;		     /* the agency token (copied; wiped when freed) */
	const struct ghl_token_hooks *hooks; /* refresh on 401; NULL: none */
	long long first_poll_ms;	     /* not due before this long from now */
	long long interval_ms;		     /* between polls, at least 100 */
	long long max_wait_ms;		     /* answer by then whatever is known */
};

typedef void (*push_wait_fn)(void *arg, int status, enum ghl_outcome outcome,
			     const struct json *body, const char *message, const char *trace_id);

struct push_poller *push_poller_new(struct event_base *base, struct ghl_client *ghl);
/* Frees every group; waiters still registered are dropped without a call.
 * NULL is fine; returns NULL. */
struct push_poller *push_poller_free(struct push_poller *p);

/* Register a waiter; cb is called exactly once (possibly before this
 * returns, when its push was already seen settled), unless cancelled. */
struct push_wait *push_poller_wait(struct push_poller *p, const struct push_wait_req *rq,
				   push_wait_fn cb, void *arg);

/* The waiter's owner goes away: cb will not be called. */
void push_poller_cancel(struct push_poller *p, struct push_wait *w);

/* GHL requests the poller sent (for tests and metrics). */
long long push_poller_polls(const struct push_poller *p);

#endif
