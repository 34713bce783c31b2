/* notify_webhook — NOTIFY_WEBHOOK: POSTs the job's result to the agency's URL:
 *   {"event":"provisioning.completed","timestamp":<unix s>,"job_id","agency_id",
 *    "location_id","user_id","client":{"name","email"}}
 * with X-GHL-Agent-Timestamp (the same unix seconds) and
 * X-GHL-Agent-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>; the
 * timestamp is inside the signed body, so a receiver can refuse replays.
 * 2xx: done; 429, 5xx and no answer: retryable; other statuses: permanent.
 * Config: {"url": "https://…", "secret": "…"}. Outputs: webhook_status. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ghl_step.h"

GHL_STEP_HOST;

enum { PH_START = 0, PH_POSTED = 1 };

/* A non-empty string at path, or NULL. */
static const char *str(ghl_step_ctx *ctx, const char *src, const char *const *path)
{
	const char *v = host->get_string(ctx, src, path);
	return v && *v ? v : NULL;
}

/* "key": the string at src's path, or null. */
static void put(ghl_json *j, ghl_step_ctx *ctx, const char *key, const char *src,
		const char *const *path)
{
	host->json_key(j, key);
	host->json_string(j, str(ctx, src, path));
}

static const char *body_json(ghl_step_ctx *ctx, long long ts)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "event");
	host->json_string(j, "provisioning.completed");
	host->json_key(j, "timestamp");
	host->json_int(j, ts);
	put(j, ctx, "job_id", GHL_SRC_JOB, GHL_PATH("id"));
	put(j, ctx, "agency_id", GHL_SRC_JOB, GHL_PATH("agency_id"));
	put(j, ctx, "location_id", GHL_SRC_OUTPUTS, GHL_PATH("location_id"));
	put(j, ctx, "user_id", GHL_SRC_OUTPUTS, GHL_PATH("user_id"));
	host->json_key(j, "client");
	host->json_object(j);
	put(j, ctx, "name", GHL_SRC_CLIENT, GHL_PATH("name"));
	put(j, ctx, "email", GHL_SRC_CLIENT, GHL_PATH("email"));
	host->json_end(j);
	host->json_end(j);
	return host->json_text(j);
}

static int post(ghl_step_ctx *ctx, const char *url, const char *secret)
{
	long long ts = (long long)time(NULL);
	const char *body = body_json(ctx, ts);
	if (!body)
		return host->fail(ctx, 0, "could not build the webhook body (see the log)");
	const char *headers = host->format(
		ctx, "X-GHL-Agent-Signature: sha256=%s\nX-GHL-Agent-Timestamp: %lld",
		host->hmac_sha256_hex(ctx, secret, body), ts);
	host->log(ctx, GHL_LOG_INFO, "POST %s (provisioning.completed)", url);
	host->set_phase(ctx, PH_POSTED);
	if (host->http_post(ctx, url, headers, body) < 0)
		return host->fail(ctx, 1, "could not start POST %s", url);
	return GHL_STEP_WAIT;
}

static int posted(ghl_step_ctx *ctx, const char *url)
{
	int st = host->response_status(ctx);
	host->log(ctx, GHL_LOG_INFO, "POST %s -> %d", url, st);
	if (st >= 200 && st <= 299) {
		ghl_json *j = host->json_new(ctx);
		host->json_int(j, st);
		host->set_output(ctx, "webhook_status", host->json_text(j));
		return GHL_STEP_DONE;
	}
	if (st == 0)
		return host->fail(ctx, 1, "webhook %s did not answer", url);
	return host->fail(ctx, st == 429 || st >= 500, "webhook %s answered %d", url, st);
}

static int notify_webhook_run(ghl_step_ctx *ctx)
{
	const char *url = str(ctx, GHL_SRC_CONFIG, GHL_PATH("url"));
	const char *secret = str(ctx, GHL_SRC_CONFIG, GHL_PATH("secret"));
	if (!url || (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0))
		return host->fail(ctx, 0, "config url must be an http:// or https:// URL");
	if (!secret)
		return host->fail(ctx, 0, "config secret is missing");
	if (host->phase(ctx) == PH_POSTED)
		return posted(ctx, url);
	return post(ctx, url, secret);
}

static const struct ghl_step_def steps[] = {
	{"NOTIFY_WEBHOOK", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"url\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":2048,"
	 "\"description\":\"http:// or https:// URL receiving the result\"},"
	 "\"secret\":{\"type\":\"string\",\"minLength\":16,\"maxLength\":512,"
	 "\"description\":\"HMAC-SHA256 key for X-GHL-Agent-Signature\"}},"
	 "\"required\":[\"url\",\"secret\"],\"additionalProperties\":false}",
	 "POSTs the provisioning result to the agency's URL, HMAC-signed", notify_webhook_run, NULL,
	 GHL_CLIENT_FIELDS("name", "email")},
};

GHL_STEP_PLUGIN(notify_webhook, "1.0.0", NULL, steps)
