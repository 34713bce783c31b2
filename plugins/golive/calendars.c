/* calendars.c — CREATE_CALENDARS: the calendars of the pipeline's config in
 * the new location (location token, scope calendars.write; GHL_API.md
 * "Go-live endpoints"): GET /calendars/?locationId=, then POST /calendars/
 * {locationId, name, description, slug, calendarType, slotDuration,
 * slotDurationUnit, teamMembers} for each calendar not found by name
 * (ensure.c; GHL lets names repeat, so looking first is what keeps a retry
 * from making a second one). "assign_user": true makes the user CREATE_USER
 * made (outputs.user_id) the calendar's team member. Outputs calendar_ids,
 * calendars_created; compensate:
 * DELETE /calendars/{calendarId} for those created. */
#include "golive.h"

static const struct gl_kind kind;

static const char *list_path(ghl_step_ctx *ctx)
{
	(void)ctx;
	return "/calendars/";
}

static const char *list_query(ghl_step_ctx *ctx)
{
	return host->format(ctx, "locationId=%s", host->urlencode(ctx, GL_LOCATION_ID(ctx)));
}

static const char *calendar_path(ghl_step_ctx *ctx, const char *id)
{
	return host->format(ctx, "/calendars/%s", host->urlencode(ctx, id));
}

static void put(ghl_json *j, const char *key, const char *s)
{
	if (s) {
		host->json_key(j, key);
		host->json_string(j, s);
	}
}

static int assigns_user(ghl_step_ctx *ctx, size_t i)
{
	int v = 0;
	host->get_bool(ctx, GHL_SRC_CONFIG, GHL_PATH("calendars", gl_ix(ctx, i), "assign_user"),
		       &v);
	return v;
}

static const char *calendar_json(ghl_step_ctx *ctx, size_t i)
{
	int64_t slot;
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "locationId", GL_LOCATION_ID(ctx));
	put(j, "name", gl_item(ctx, &kind, i, "name"));
	put(j, "description", gl_item(ctx, &kind, i, "description"));
	put(j, "slug", gl_item(ctx, &kind, i, "slug"));
	put(j, "calendarType", gl_item(ctx, &kind, i, "calendar_type"));
	if (host->get_int(ctx, GHL_SRC_CONFIG,
			  GHL_PATH("calendars", gl_ix(ctx, i), "slot_duration"), &slot) == 0) {
		host->json_key(j, "slotDuration");
		host->json_int(j, slot);
	}
	put(j, "slotDurationUnit", gl_item(ctx, &kind, i, "slot_duration_unit"));
	if (assigns_user(ctx, i)) {
		host->json_key(j, "teamMembers");
		host->json_array(j);
		host->json_object(j);
		put(j, "userId", gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("user_id")));
		host->json_end(j);
		host->json_end(j);
	}
	host->json_end(j);
	return host->json_text(j);
}

/* assign_user needs CREATE_USER's user_id. */
static int check(ghl_step_ctx *ctx)
{
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH("calendars"));
	for (size_t i = 0; i < n; i++)
		if (assigns_user(ctx, i) && !gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH("user_id")))
			return host->fail(ctx, 0,
					  "config calendars[%zu].assign_user needs "
					  "CREATE_USER earlier in the pipeline (no user_id)",
					  i);
	return GHL_STEP_DONE;
}

static const struct gl_kind kind = {
	.step = "CREATE_CALENDARS",
	.what = "calendar",
	.config_key = "calendars",
	.ids_out = "calendar_ids",
	.created_out = "calendars_created",
	.token = GHL_TOKEN_LOCATION,
	.list_path = list_path,
	.list_query = list_query,
	.list_key = "calendars",
	.create_path = list_path,
	.created_key = "calendar",
	.body = calendar_json,
	.delete_path = calendar_path,
	.check = check,
};

int create_calendars_run(ghl_step_ctx *ctx)
{
	return gl_ensure_run(ctx, &kind);
}

int create_calendars_compensate(ghl_step_ctx *ctx)
{
	return gl_ensure_compensate(ctx, &kind);
}

const char create_calendars_schema[] =
	"{\"type\":\"object\",\"required\":[\"calendars\"],\"properties\":{\"calendars\":{"
	"\"type\":\"array\",\"minItems\":1,\"maxItems\":50,\"description\":\"the calendars, "
	"found by name before they are created\",\"items\":{\"type\":\"object\","
	"\"required\":[\"name\"],\"properties\":{"
	"\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"description\":{\"type\":\"string\",\"maxLength\":1000},"
	"\"slug\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"calendar_type\":{\"type\":\"string\",\"enum\":[\"round_robin\",\"event\","
	"\"class_booking\",\"collective\",\"service_booking\",\"personal\"],"
	"\"default\":\"event\"},"
	"\"slot_duration\":{\"type\":\"integer\",\"minimum\":5,\"maximum\":1440,"
	"\"default\":30},"
	"\"slot_duration_unit\":{\"type\":\"string\",\"enum\":[\"mins\",\"hours\"],"
	"\"default\":\"mins\"},"
	"\"assign_user\":{\"type\":\"boolean\",\"default\":false,\"description\":\"the user "
	"CREATE_USER made is the team member\"}},\"additionalProperties\":false}}},"
	"\"additionalProperties\":false}";
