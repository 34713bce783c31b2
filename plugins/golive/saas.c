/* saas.c — ENABLE_SAAS and SET_REBILLING (agency token, Version 2021-04-15,
 * scopes saas/location.write and saas/company.write; GHL_API.md "Go-live
 * endpoints").
 *
 * ENABLE_SAAS: GET /saas/get-saas-subscription/{locationId}?companyId= first —
 * a location already in SaaS mode on the plan asked for is left as it is
 * (saas_reused) — else POST /saas/enable-saas/{locationId} {companyId,
 * isSaaSV2, saasPlanId, priceId, name, email}. The plan and price are the
 * client's custom_values.saas_plan_id / saas_price_id when given (client data
 * has no top-level keys for them), else the config's plan_id / price_id. Enabling sets a state, so a repeat is harmless. No
 * compensate: GHL publishes no call to leave SaaS mode for one location (a
 * rollback of CREATE_LOCATION pauses or deletes the location itself).
 *
 * SET_REBILLING: one POST /saas/update-rebilling/{companyId} {product,
 * locationIds: [the location], config} per configured product; each sets the
 * product's rebilling for the location, so a repeat is harmless. The config
 * object goes to GHL as given ("markup": N is added to it). No compensate
 * (GHL publishes no call to take a location out of rebilling). */
#include <string.h>

#include "golive.h"

enum { PH_START = 0, PH_LOOKED, PH_ENABLED };

static const char *plan(ghl_step_ctx *ctx, const char *client_key, const char *config_key)
{
	const char *v = gl_str(ctx, GHL_SRC_CLIENT, GHL_PATH("custom_values", client_key));
	return v ? v : GL_CONFIG(ctx, config_key);
}

#define PLAN_ID() plan(ctx, "saas_plan_id", "plan_id")
#define PRICE_ID() plan(ctx, "saas_price_id", "price_id")

static int saas_done(ghl_step_ctx *ctx, int reused)
{
	const char *p = PLAN_ID();
	host->log(ctx, GHL_LOG_INFO, "SaaS %s for %s (plan %s)", reused ? "already on" : "enabled",
		  GL_LOCATION_ID(ctx), p ? p : "-");
	host->set_output(ctx, "saas_enabled", "true");
	host->set_output(ctx, "saas_plan_id", host->quote(ctx, p));
	host->set_output(ctx, "saas_reused", reused ? "true" : "false");
	return GHL_STEP_DONE;
}

static void put(ghl_json *j, const char *key, const char *s)
{
	if (s) {
		host->json_key(j, key);
		host->json_string(j, s);
	}
}

static int enable(ghl_step_ctx *ctx)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "companyId", GL_COMPANY_ID(ctx));
	host->json_key(j, "isSaaSV2");
	host->json_bool(j, gl_flag(ctx, "saas_v2", 1));
	put(j, "saasPlanId", PLAN_ID());
	put(j, "priceId", PRICE_ID());
	put(j, "name", gl_str(ctx, GHL_SRC_CLIENT, GHL_PATH("name")));
	put(j, "email", gl_str(ctx, GHL_SRC_CLIENT, GHL_PATH("email")));
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the request (see the log)");
	const char *path = host->format(ctx, "/saas/enable-saas/%s",
					host->urlencode(ctx, GL_LOCATION_ID(ctx)));
	host->log(ctx, GHL_LOG_INFO, "POST %s", path);
	return gl_send(ctx, PH_ENABLED, "POST", path, NULL, body, GHL_TOKEN_AGENCY);
}

/* Is the subscription in the response SaaS mode on the plan asked for? */
static int already_on(ghl_step_ctx *ctx)
{
	const char *mode = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH("saasMode"));
	if (!mode || strcmp(mode, "activated") != 0)
		return 0;
	const char *want = PLAN_ID();
	const char *have = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH("saasPlanId"));
	return !want || (have && strcmp(want, have) == 0);
}

int enable_saas_run(ghl_step_ctx *ctx)
{
	switch (host->phase(ctx)) {
	case PH_LOOKED:
		/* 404: no subscription yet */
		if (!gl_ok(ctx, "GET saas subscription") && host->response_status(ctx) != 404)
			return host->fail_from_response(ctx, "reading the SaaS subscription");
		return host->response_status(ctx) != 404 && already_on(ctx) ? saas_done(ctx, 1)
									    : enable(ctx);
	case PH_ENABLED:
		if (!gl_ok(ctx, "POST enable-saas"))
			return host->fail_from_response(ctx, "enabling SaaS");
		return saas_done(ctx, 0);
	default: break;
	}
	if (!GL_LOCATION_ID(ctx))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before ENABLE_SAAS");
	if (!GL_COMPANY_ID(ctx))
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	if (PRICE_ID() && !PLAN_ID())
		return host->fail(ctx, 0,
				  "a price id needs a plan id (config plan_id or the "
				  "client's custom_values.saas_plan_id)");
	const char *path = host->format(ctx, "/saas/get-saas-subscription/%s",
					host->urlencode(ctx, GL_LOCATION_ID(ctx)));
	return gl_send(ctx, PH_LOOKED, "GET", path, gl_company_query(ctx), NULL, GHL_TOKEN_AGENCY);
}

const char enable_saas_schema[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"plan_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,\"description\":"
	"\"GHL SaaS plan (the client's custom_values.saas_plan_id wins)\"},"
	"\"price_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,\"description\":"
	"\"the plan's price (the client's custom_values.saas_price_id wins)\"},"
	"\"saas_v2\":{\"type\":\"boolean\",\"default\":true}},\"additionalProperties\":false}";

/* ---- SET_REBILLING ---- */

#define PRODUCT(i, key) gl_str(ctx, GHL_SRC_CONFIG, GHL_PATH("products", gl_ix(ctx, i), key))

/* The config object of products[i], with "markup" added when given. */
static const char *rebilling_json(ghl_step_ctx *ctx, size_t i)
{
	const char *const *cfg = GHL_PATH("products", gl_ix(ctx, i), "config");
	double markup;
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "product");
	host->json_string(j, PRODUCT(i, "product"));
	host->json_key(j, "locationIds");
	host->json_array(j);
	host->json_string(j, GL_LOCATION_ID(ctx));
	host->json_end(j);
	host->json_key(j, "config");
	host->json_object(j);
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, cfg);
	for (size_t k = 0; k < n; k++) {
		const char *key = host->get_key(ctx, GHL_SRC_CONFIG, cfg, k);
		if (!key || strcmp(key, "markup") == 0)
			continue;
		host->json_key(j, key);
		host->json_raw(j,
			       host->get_json(ctx, GHL_SRC_CONFIG,
					      GHL_PATH("products", gl_ix(ctx, i), "config", key)));
	}
	if (host->get_number(ctx, GHL_SRC_CONFIG, GHL_PATH("products", gl_ix(ctx, i), "markup"),
			     &markup) == 0) {
		host->json_key(j, "markup");
		host->json_number(j, markup);
	}
	host->json_end(j);
	host->json_end(j);
	return host->json_text(j);
}

static int rebill_next(ghl_step_ctx *ctx, size_t *i)
{
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH("products"));
	if (*i >= n) {
		ghl_json *j = host->json_new(ctx);
		host->json_array(j);
		for (size_t k = 0; k < n; k++)
			host->json_string(j, PRODUCT(k, "product"));
		host->json_end(j);
		host->set_output(ctx, "rebilling_products", host->json_text(j));
		return GHL_STEP_DONE;
	}
	const char *body = rebilling_json(ctx, *i);
	if (!body)
		return host->fail(ctx, 0, "could not build products[%zu] (see the log)", *i);
	const char *path = host->format(ctx, "/saas/update-rebilling/%s",
					host->urlencode(ctx, GL_COMPANY_ID(ctx)));
	host->log(ctx, GHL_LOG_INFO, "POST %s product %s", path, PRODUCT(*i, "product"));
	return gl_send(ctx, PH_ENABLED, "POST", path, NULL, body, GHL_TOKEN_AGENCY);
}

int set_rebilling_run(ghl_step_ctx *ctx)
{
	size_t *i = host->state_alloc(ctx, sizeof(*i));
	if (host->phase(ctx) == PH_ENABLED) {
		if (!gl_ok(ctx,
			   host->format(ctx, "POST update-rebilling %s", PRODUCT(*i, "product"))))
			return host->fail_from_response(ctx,
							host->format(ctx, "setting rebilling of %s",
								     PRODUCT(*i, "product")));
		(*i)++;
		return rebill_next(ctx, i);
	}
	if (!GL_LOCATION_ID(ctx))
		return host->fail(ctx, 0,
				  "no location_id: CREATE_LOCATION must run before "
				  "SET_REBILLING");
	if (!GL_COMPANY_ID(ctx))
		return host->fail(ctx, 0, "job has no company_id (agency not connected to GHL?)");
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH("products"));
	for (size_t k = 0; k < n; k++)
		for (size_t m = 0; m < k; m++)
			if (strcmp(PRODUCT(k, "product"), PRODUCT(m, "product")) == 0)
				return host->fail(ctx, 0,
						  "config products[%zu].product \"%s\" "
						  "repeats products[%zu]",
						  k, PRODUCT(k, "product"), m);
	return rebill_next(ctx, i);
}

const char set_rebilling_schema[] =
	"{\"type\":\"object\",\"required\":[\"products\"],\"properties\":{\"products\":{"
	"\"type\":\"array\",\"minItems\":1,\"maxItems\":6,\"items\":{\"type\":\"object\","
	"\"required\":[\"product\"],\"properties\":{"
	"\"product\":{\"type\":\"string\",\"enum\":[\"contentAI\",\"workflow_premium_actions\","
	"\"workflow_ai\",\"conversationAI\",\"EmailNotification\",\"whatsApp\"]},"
	"\"markup\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000,\"description\":"
	"\"percent on top of GHL's cost, sent as config.markup\"},"
	"\"config\":{\"type\":\"object\",\"description\":\"passed to GHL as the product's "
	"rebilling config\"}},\"additionalProperties\":false}}},"
	"\"additionalProperties\":false}";
