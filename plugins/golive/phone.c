/* phone.c — BUY_PHONE_NUMBER: an LC Phone number for the new
 * location (location token, GHL_API.md "Go-live endpoints").
 * Never buys twice for one job:
 *   1. find before buy: GET /phone-system/numbers/location/{id} — a location
 *      that already has an active number keeps it (phone_number_reused);
 *   2. search: GET …/available?countryCode=&numberTypes=&firstPart=&smsEnabled=
 *      &voiceEnabled=&mmsEnabled= and take the first number offered;
 *   3. buy: POST …/purchase with fingerprintId
 *      "ghl-agent:<job id>:<location id>:BUY_PHONE_NUMBER", the same on every
 *      attempt of the job, so GHL itself can tell a retry from a second
 *      purchase (the location is in it because dry runs and `ghl-agent step
 *      run` all share the nil job id); a number taken meanwhile ("not
 *      available") fails retryably, so the next attempt searches again; a 400 about the fingerprint lists the active
 *      numbers again and reuses the one found.
 * The area code is config.area_code, else the client's phone's (+1 NPA for
 * US/CA); when the client's area has no number the search is widened to the
 * whole country once. No compensate: GHL publishes no call to release a
 * number, so a rollback leaves it.
 * Outputs: phone_number, phone_number_reused. */
#include <string.h>

#include "golive.h"

enum { PH_START = 0, PH_LISTED, PH_SEARCHED, PH_BOUGHT, PH_RELISTED };

struct run {
	int area_from_client; /* the area code came from the client's phone */
	int widened;	      /* searched again without an area code */
};

#define CONFIG(key) GL_CONFIG(ctx, key)
#define LOCATION_ID() GL_LOCATION_ID(ctx)

static const char *country(ghl_step_ctx *ctx)
{
	const char *c = CONFIG("country");
	if (!c)
		c = gl_str(ctx, GHL_SRC_CLIENT, GHL_PATH("country"));
	return c ? c : "US";
}

static const char *number_type(ghl_step_ctx *ctx)
{
	const char *t = CONFIG("number_type");
	return t ? t : "local";
}

/* config.area_code, else the NPA of a +1 client phone in the US or Canada. */
static const char *area_code(ghl_step_ctx *ctx, struct run *r)
{
	const char *a = CONFIG("area_code");
	if (a || r->widened)
		return r->widened ? NULL : a;
	const char *phone = gl_str(ctx, GHL_SRC_CLIENT, GHL_PATH("phone"));
	const char *c = country(ctx);
	if (!phone || strncmp(phone, "+1", 2) != 0 || strlen(phone) < 5 ||
	    (strcmp(c, "US") != 0 && strcmp(c, "CA") != 0))
		return NULL;
	r->area_from_client = 1;
	return host->format(ctx, "%.3s", phone + 2);
}

static const char *numbers_path(ghl_step_ctx *ctx)
{
	return host->format(ctx, "/phone-system/numbers/location/%s",
			    host->urlencode(ctx, LOCATION_ID()));
}

static int send(ghl_step_ctx *ctx, int phase, const char *method, const char *path,
		const char *query, const char *body)
{
	return gl_send(ctx, phase, method, path, query, body, GHL_TOKEN_LOCATION);
}

/* The response's list of numbers: "numbers", or "data" (GHL's shape is not
 * documented; both are read). */
static const char *list_key(ghl_step_ctx *ctx)
{
	return host->get_type(ctx, GHL_SRC_RESPONSE, GHL_PATH("numbers")) == GHL_TYPE_ARRAY
		       ? "numbers"
		       : "data";
}

static const char *first_number(ghl_step_ctx *ctx)
{
	const char *key = list_key(ctx);
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH(key));
	for (size_t i = 0; i < n; i++) {
		const char *num = gl_str(ctx, GHL_SRC_RESPONSE,
					 GHL_PATH(key, gl_ix(ctx, i), "phoneNumber"));
		if (num)
			return num;
	}
	return NULL;
}

static int done(ghl_step_ctx *ctx, const char *number, int reused)
{
	host->log(ctx, GHL_LOG_INFO, "%s number %s", reused ? "reusing the location's" : "bought",
		  number);
	host->set_output(ctx, "phone_number", host->quote(ctx, number));
	host->set_output(ctx, "phone_number_reused", reused ? "true" : "false");
	return GHL_STEP_DONE;
}

static int list(ghl_step_ctx *ctx, int phase)
{
	host->log(ctx, GHL_LOG_INFO, "GET %s (the location's active numbers)", numbers_path(ctx));
	return send(ctx, phase, "GET", numbers_path(ctx), NULL, NULL);
}

static int search(ghl_step_ctx *ctx, struct run *r)
{
	const char *area = area_code(ctx, r);
	const char *q = host->format(
		ctx,
		"countryCode=%s&numberTypes=%s%s%s&smsEnabled=%s&voiceEnabled=%s&mmsEnabled=%s",
		host->urlencode(ctx, country(ctx)), host->urlencode(ctx, number_type(ctx)),
		area ? "&firstPart=" : "", area ? host->urlencode(ctx, area) : "",
		gl_flag(ctx, "sms", 1) ? "true" : "false",
		gl_flag(ctx, "voice", 1) ? "true" : "false",
		gl_flag(ctx, "mms", 0) ? "true" : "false");
	host->log(ctx, GHL_LOG_INFO, "searching %s %s numbers%s%s", country(ctx), number_type(ctx),
		  area ? " in area " : "", area ? area : "");
	return send(ctx, PH_SEARCHED, "GET", host->format(ctx, "%s/available", numbers_path(ctx)),
		    q, NULL);
}

static const char *fingerprint(ghl_step_ctx *ctx)
{
	return host->format(ctx, "ghl-agent:%s:%s:BUY_PHONE_NUMBER",
			    gl_str(ctx, GHL_SRC_JOB, GHL_PATH("id")), LOCATION_ID());
}

static int buy(ghl_step_ctx *ctx, const char *number)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	host->json_key(j, "phoneNumber");
	host->json_string(j, number);
	host->json_key(j, "countryCode");
	host->json_string(j, country(ctx));
	host->json_key(j, "numberType");
	host->json_string(j, number_type(ctx));
	host->json_key(j, "fingerprintId");
	host->json_string(j, fingerprint(ctx));
	host->json_end(j);
	const char *body = host->json_text(j);
	if (!body)
		return host->fail(ctx, 0, "could not build the purchase (see the log)");
	host->log(ctx, GHL_LOG_INFO, "POST %s/purchase %s fingerprintId=%s", numbers_path(ctx),
		  number, fingerprint(ctx));
	return send(ctx, PH_BOUGHT, "POST", host->format(ctx, "%s/purchase", numbers_path(ctx)),
		    NULL, body);
}

static int listed(ghl_step_ctx *ctx, struct run *r, int again)
{
	if (!gl_ok(ctx, "GET active numbers"))
		return host->fail_from_response(ctx, "listing the location's numbers");
	const char *num = first_number(ctx);
	if (num)
		return done(ctx, num, 1);
	if (again)
		return host->fail(ctx, 1,
				  "GHL refused the purchase's fingerprintId but the location "
				  "has no number yet; will look again");
	return search(ctx, r);
}

static int searched(ghl_step_ctx *ctx, struct run *r)
{
	if (!gl_ok(ctx, "GET available numbers"))
		return host->fail_from_response(ctx, "searching available numbers");
	const char *num = first_number(ctx);
	if (num)
		return buy(ctx, num);
	if (r->area_from_client && !r->widened) {
		host->log(ctx, GHL_LOG_INFO,
			  "no number in the client's area; searching the country");
		r->widened = 1;
		return search(ctx, r);
	}
	return host->fail(ctx, 0, "GHL offers no %s %s number%s%s with the capabilities asked for",
			  country(ctx), number_type(ctx), CONFIG("area_code") ? " in area " : "",
			  CONFIG("area_code") ? CONFIG("area_code") : "");
}

static int bought(ghl_step_ctx *ctx)
{
	if (!gl_ok(ctx, "POST purchase")) {
		const char *msg = gl_message_has(ctx, 400, "fingerprint");
		if (msg) {
			host->log(ctx, GHL_LOG_INFO, "GHL: %s; looking for the number bought", msg);
			return list(ctx, PH_RELISTED);
		}
		if (gl_message_has(ctx, 400, "not available"))
			return host->fail(ctx, 1,
					  "the number was taken before it could be bought; "
					  "will search again");
		return host->fail_from_response(ctx, "buying the number");
	}
	const char *num = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH("data", "phoneNumber"));
	if (!num)
		return host->fail(ctx, 1,
				  "buying the number: GHL answered without data.phoneNumber");
	return done(ctx, num, 0);
}

int buy_phone_number_run(ghl_step_ctx *ctx)
{
	struct run *r = host->state_alloc(ctx, sizeof(*r));
	switch (host->phase(ctx)) {
	case PH_LISTED: return listed(ctx, r, 0);
	case PH_SEARCHED: return searched(ctx, r);
	case PH_BOUGHT: return bought(ctx);
	case PH_RELISTED: return listed(ctx, r, 1);
	default: break;
	}
	if (!LOCATION_ID())
		return host->fail(
			ctx, 0, "no location_id: CREATE_LOCATION must run before BUY_PHONE_NUMBER");
	const char *a = CONFIG("area_code");
	if (a && strspn(a, "0123456789") != strlen(a))
		return host->fail(ctx, 0, "config area_code \"%s\" is not digits", a);
	if (!gl_str(ctx, GHL_SRC_JOB, GHL_PATH("id")))
		return host->fail(ctx, 0, "the job has no id to derive the fingerprintId from");
	return list(ctx, PH_LISTED);
}

const char buy_phone_number_schema[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"country\":{\"type\":\"string\",\"format\":\"country\",\"description\":\"ISO country "
	"of the number (default: the client's country, else US)\"},"
	"\"area_code\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":6,\"description\":"
	"\"first digits after the country code (default: the client's +1 area code)\"},"
	"\"number_type\":{\"type\":\"string\",\"enum\":[\"local\",\"tollfree\",\"mobile\"],"
	"\"default\":\"local\"},"
	"\"sms\":{\"type\":\"boolean\",\"default\":true,\"description\":\"must send SMS\"},"
	"\"voice\":{\"type\":\"boolean\",\"default\":true,\"description\":\"must take calls\"},"
	"\"mms\":{\"type\":\"boolean\",\"default\":false,\"description\":\"must send MMS\"}},"
	"\"additionalProperties\":false}";
