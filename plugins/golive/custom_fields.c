/* custom_fields.c — CREATE_CUSTOM_FIELDS: the custom fields of the
 * pipeline's config in the new location (location token, scope
 * locations/customFields.write; GHL_API.md "Go-live endpoints"):
 * GET /locations/{id}/customFields, then POST /locations/{id}/customFields
 * {name, dataType, placeholder, position, model} for each field not found
 * by name (ensure.c). Outputs custom_field_ids, custom_fields_created;
 * compensate: DELETE /locations/{id}/customFields/{fieldId} for those created. */
#include "golive.h"

static const struct gl_kind kind;

static const char *fields_path(ghl_step_ctx *ctx)
{
	return host->format(ctx, "/locations/%s/customFields",
			    host->urlencode(ctx, GL_LOCATION_ID(ctx)));
}

static const char *field_path(ghl_step_ctx *ctx, const char *id)
{
	return host->format(ctx, "%s/%s", fields_path(ctx), host->urlencode(ctx, id));
}

static void put(ghl_json *j, const char *key, const char *s)
{
	if (s) {
		host->json_key(j, key);
		host->json_string(j, s);
	}
}

static const char *field_json(ghl_step_ctx *ctx, size_t i)
{
	const char *type = gl_item(ctx, &kind, i, "data_type");
	int64_t pos;
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "name", gl_item(ctx, &kind, i, "name"));
	put(j, "dataType", type ? type : "TEXT");
	put(j, "placeholder", gl_item(ctx, &kind, i, "placeholder"));
	put(j, "model", gl_item(ctx, &kind, i, "model"));
	if (host->get_int(ctx, GHL_SRC_CONFIG, GHL_PATH("fields", gl_ix(ctx, i), "position"),
			  &pos) == 0) {
		host->json_key(j, "position");
		host->json_int(j, pos);
	}
	host->json_end(j);
	return host->json_text(j);
}

static const struct gl_kind kind = {
	.step = "CREATE_CUSTOM_FIELDS",
	.what = "custom field",
	.config_key = "fields",
	.ids_out = "custom_field_ids",
	.created_out = "custom_fields_created",
	.token = GHL_TOKEN_LOCATION,
	.list_path = fields_path,
	.list_key = "customFields",
	.create_path = fields_path,
	.created_key = "customField",
	.body = field_json,
	.delete_path = field_path,
};

int create_custom_fields_run(ghl_step_ctx *ctx)
{
	return gl_ensure_run(ctx, &kind);
}

int create_custom_fields_compensate(ghl_step_ctx *ctx)
{
	return gl_ensure_compensate(ctx, &kind);
}

const char create_custom_fields_schema[] =
	"{\"type\":\"object\",\"required\":[\"fields\"],\"properties\":{\"fields\":{"
	"\"type\":\"array\",\"minItems\":1,\"maxItems\":50,\"description\":\"the fields, "
	"found by name before they are created\",\"items\":{\"type\":\"object\","
	"\"required\":[\"name\"],\"properties\":{"
	"\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"data_type\":{\"type\":\"string\",\"default\":\"TEXT\",\"enum\":[\"TEXT\","
	"\"LARGE_TEXT\",\"NUMERICAL\",\"PHONE\",\"MONETORY\",\"CHECKBOX\",\"SINGLE_OPTIONS\","
	"\"MULTIPLE_OPTIONS\",\"DATE\",\"TEXTBOX_LIST\",\"FILE_UPLOAD\",\"RADIO\"]},"
	"\"placeholder\":{\"type\":\"string\",\"maxLength\":200},"
	"\"position\":{\"type\":\"integer\",\"minimum\":0},"
	"\"model\":{\"type\":\"string\",\"enum\":[\"contact\",\"opportunity\"],"
	"\"default\":\"contact\"}},\"additionalProperties\":false}}},"
	"\"additionalProperties\":false}";
