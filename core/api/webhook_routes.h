/* webhook_routes.h — POST /webhooks/ghl: GoHighLevel's app webhooks (GHL_API.md "Webhooks").
 *
 * Each delivery is verified over its raw body bytes: x-ghl-signature
 * (Ed25519, webhook_ed25519_public_key) or the legacy x-wh-signature
 * (RSA-SHA256, webhook_rsa_public_key). A delivery without a `timestamp`,
 * or with one older (or further in the future) than webhook_max_age, is
 * refused, and so is a webhookId already seen (webhook_events.webhook_id is
 * unique; a delivery without webhookId is keyed by the SHA-256 of its body).
 * Then, in the same statement that records the event:
 *   INSTALL   (company level) upserts the agency by companyId; one without a
 *             usable OAuth grant yet is marked needs_reconnect, to be connected
 *             through /oauth/connect; a deleted agency stays deleted (only an
 *             ADMIN's OAuth connection brings it back);
 *   UNINSTALL (company level) deletes the agency as DELETE /agencies/{id}
 *             does (deleted_at, its API keys revoked, its users unlinked);
 *   anything else is recorded and otherwise ignored.
 * Answers: 200 processed/ignored, 401 bad or missing signature, 400 stale or
 * malformed, 409 replayed, 413 too large, 503 no key configured / database.
 */
#ifndef GHL_WEBHOOK_ROUTES_H
#define GHL_WEBHOOK_ROUTES_H

#include <stddef.h>
#include <stdint.h>

struct route_table;

extern const struct route_table webhook_route_table;

/* The largest webhook body taken (413 above it, before it is read). */
#define WEBHOOK_MAX_BODY (64 * 1024)

/* Parse a webhook timestamp: ISO 8601 ("2025-01-31T12:00:00.123Z", offsets
 * "+hh:mm" allowed) or a number of Unix seconds / milliseconds as text.
 * Returns 0 and *ms (Unix milliseconds), or -1. */
int webhook_parse_timestamp(const char *s, int64_t *ms);

#endif
