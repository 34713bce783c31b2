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

static const struct ghl_host_api *host;

enum { PH_START = 0, PH_POSTED = 1 };

/* A present, non-null, non-empty value, or NULL. */
static const char *val(ghl_step_ctx *ctx, const char *src, const char *path)
{
	const char *v = host->get(ctx, src, path);
	return v && *v && strcmp(v, "null") != 0 ? v : NULL;
}

static const char *qval(ghl_step_ctx *ctx, const char *src, const char *path)
{
	return host->quote(ctx, val(ctx, src, path)); /* NULL -> null */
}

static int post(ghl_step_ctx *ctx, const char *url, const char *secret)
{
	long long ts = (long long)time(NULL);
	const char *body = host->format(
		ctx,
		"{\"event\":\"provisioning.completed\",\"timestamp\":%lld,\"job_id\":%s,"
		"\"agency_id\":%s,\"location_id\":%s,\"user_id\":%s,"
		"\"client\":{\"name\":%s,\"email\":%s}}",
		ts, qval(ctx, GHL_SRC_JOB, "id"), qval(ctx, GHL_SRC_JOB, "agency_id"),
		qval(ctx, GHL_SRC_OUTPUTS, "location_id"), qval(ctx, GHL_SRC_OUTPUTS, "user_id"),
		qval(ctx, GHL_SRC_CLIENT, "name"), qval(ctx, GHL_SRC_CLIENT, "email"));
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
		host->set_output(ctx, "webhook_status", host->format(ctx, "%d", st));
		return GHL_STEP_DONE;
	}
	if (st == 0)
		return host->fail(ctx, 1, "webhook %s did not answer", url);
	return host->fail(ctx, st == 429 || st >= 500, "webhook %s answered %d", url, st);
}

static int notify_webhook_run(ghl_step_ctx *ctx)
{
	const char *url = val(ctx, GHL_SRC_CONFIG, "url");
	const char *secret = val(ctx, GHL_SRC_CONFIG, "secret");
	if (!url || (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0))
		return host->fail(ctx, 0, "config url must be an http:// or https:// URL");
	if (!secret)
		return host->fail(ctx, 0, "config secret is missing");
	if (host->phase(ctx) == PH_POSTED)
		return posted(ctx, url);
	return post(ctx, url, secret);
}

static int notify_webhook_init(const struct ghl_host_api *h, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	return 0;
}

static const struct ghl_step_def steps[] = {
	{"NOTIFY_WEBHOOK", "1.0.0",
	 "{\"type\":\"object\",\"properties\":{"
	 "\"url\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":2048,"
	 "\"description\":\"http:// or https:// URL receiving the result\"},"
	 "\"secret\":{\"type\":\"string\",\"minLength\":16,\"maxLength\":512,"
	 "\"description\":\"HMAC-SHA256 key for X-GHL-Agent-Signature\"}},"
	 "\"required\":[\"url\",\"secret\"],\"additionalProperties\":false}",
	 "POSTs the provisioning result to the agency's URL, HMAC-signed", notify_webhook_run,
	 NULL},
};

static const struct ghl_plugin plugin = {
	GHL_PLUGIN_HEADER, "notify_webhook", notify_webhook_init, steps,
	sizeof(steps) / sizeof(steps[0]),
};

__attribute__((visibility("default"))) const struct ghl_plugin *ghl_plugin_entry(void);
const struct ghl_plugin *ghl_plugin_entry(void)
{
	return &plugin;
}
