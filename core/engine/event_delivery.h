/* event_delivery.h — outbound events: the worker that sends the outbox
 * (table event_deliveries, written by the database triggers of migrations
 * 20261207_000701 and 20261207_000901_2 (job.cancelled on CANCELLED) in the
 * same transaction as the state change) to each subscription's URL, signed,
 * retried with backoff, never blocking jobs; each poll also settles the
 * upload batches whose jobs have all finished (batch.completed, once).
 *
 * Every poll_interval (and at once after an attempt ends) it claims due rows
 * (FOR UPDATE SKIP LOCKED, so several processes share the outbox), pushing
 * each row's next_attempt_at past the attempt's timeout before sending: a
 * process killed mid-attempt leaves the row to be retried after that, by
 * any process. A row waits while an earlier event of the same job and
 * subscription is pending, so a job's events arrive in order. The POST runs
 * on the loop (ghl_client's libcurl multi), with the SSRF guard unless
 * notify_webhook_allow_private = on. 2xx marks the row delivered; anything
 * else schedules the next attempt (backoff_ms from events_retry_base, at
 * most events_retry_max apart) until the event is events_max_age old, then
 * it is marked failed. Once an hour, delivered and failed rows older than
 * archive_after leave the log (none with archive_after = 0).
 *
 * Headers (README "Integrate with the API"):
 *     X-GHL-Agent-Event: job.completed
 *     X-GHL-Agent-Event-Id: <uuid, the same on every attempt and redelivery>
 *     X-GHL-Agent-Delivery: <uuid of this row>
 *     X-GHL-Agent-Timestamp: <unix seconds of this attempt>
 *     X-GHL-Agent-Signature: v1=<hex HMAC-SHA256(secret, timestamp "." body)>
 */
#ifndef GHL_EVENT_DELIVERY_H
#define GHL_EVENT_DELIVERY_H

#include <stddef.h>

struct app;
struct event_delivery;

/* The signature header's value for body sent at unix time ts: "v1=<hex>"
 * into out (at least EVENT_SIGNATURE_LEN bytes). 0, or -1 when OpenSSL fails. */
#define EVENT_SIGNATURE_LEN 68
int event_sign(const char *secret, long long ts, const char *body, size_t len, char *out);

/* Start polling the outbox on app's loop (roles worker/both). */
struct event_delivery *event_delivery_start(struct app *app);
/* Stop claiming; attempts in flight are abandoned (their rows are retried
 * after their hold). NULL allowed; returns NULL. */
struct event_delivery *event_delivery_free(struct event_delivery *d);

#endif
