/* menus.c — ADD_MENU_LINKS: custom menu links shown in the new location
 * (agency token, scope custom-menu-link.write; GHL_API.md "Go-live
 * endpoints"): GET /custom-menus/?locationId=&limit=100 lists the links the
 * location shows, then POST /custom-menus/ {title, url, icon, showOnCompany:
 * false, showOnLocation: true, showToAllLocations: false, openMode,
 * locations: [the location], userRole} for each config link not found by
 * title (ensure.c; a link the agency shows to all locations counts as found).
 * Outputs menu_link_ids (title → id), menu_links_created; compensate:
 * DELETE /custom-menus/{id} for those created. */
#include "golive.h"

static const struct gl_kind kind;

static const char *menus_path(ghl_step_ctx *ctx)
{
	(void)ctx;
	return "/custom-menus/";
}

static const char *list_query(ghl_step_ctx *ctx)
{
	return host->format(ctx, "locationId=%s&skip=0&limit=100",
			    host->urlencode(ctx, GL_LOCATION_ID(ctx)));
}

static const char *menu_path(ghl_step_ctx *ctx, const char *id)
{
	return host->format(ctx, "/custom-menus/%s", host->urlencode(ctx, id));
}

static void put(ghl_json *j, const char *key, const char *s)
{
	host->json_key(j, key);
	host->json_string(j, s);
}

static void flag(ghl_json *j, const char *key, int v)
{
	host->json_key(j, key);
	host->json_bool(j, v);
}

static const char * or (const char *v, const char *def)
{
	return v ? v : def;
}

static const char *menu_json(ghl_step_ctx *ctx, size_t i)
{
	ghl_json *j = host->json_new(ctx);
	host->json_object(j);
	put(j, "title", gl_item(ctx, &kind, i, "title"));
	put(j, "url", gl_item(ctx, &kind, i, "url"));
	host->json_key(j, "icon");
	host->json_object(j);
	put(j, "name", or (gl_item(ctx, &kind, i, "icon"), "link"));
	put(j, "fontFamily", or (gl_item(ctx, &kind, i, "icon_family"), "fas"));
	host->json_end(j);
	flag(j, "showOnCompany", 0);
	flag(j, "showOnLocation", 1);
	flag(j, "showToAllLocations", 0);
	put(j, "openMode", or (gl_item(ctx, &kind, i, "open_mode"), "new_tab"));
	host->json_key(j, "locations");
	host->json_array(j);
	host->json_string(j, GL_LOCATION_ID(ctx));
	host->json_end(j);
	put(j, "userRole", or (gl_item(ctx, &kind, i, "user_role"), "all"));
	host->json_end(j);
	return host->json_text(j);
}

static const struct gl_kind kind = {
	.step = "ADD_MENU_LINKS",
	.what = "menu link",
	.config_key = "links",
	.name_key = "title",
	.ids_out = "menu_link_ids",
	.created_out = "menu_links_created",
	.token = GHL_TOKEN_AGENCY,
	.list_path = menus_path,
	.list_query = list_query,
	.list_key = "customMenus",
	.create_path = menus_path,
	.created_key = "customMenu",
	.body = menu_json,
	.delete_path = menu_path,
};

int add_menu_links_run(ghl_step_ctx *ctx)
{
	return gl_ensure_run(ctx, &kind);
}

int add_menu_links_compensate(ghl_step_ctx *ctx)
{
	return gl_ensure_compensate(ctx, &kind);
}

const char add_menu_links_schema[] =
	"{\"type\":\"object\",\"required\":[\"links\"],\"properties\":{\"links\":{"
	"\"type\":\"array\",\"minItems\":1,\"maxItems\":50,\"description\":\"links shown in the "
	"location, found by title before they are created\",\"items\":{\"type\":\"object\","
	"\"required\":[\"title\",\"url\"],\"properties\":{"
	"\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"url\":{\"type\":\"string\",\"format\":\"url\"},"
	"\"icon\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":50,\"default\":\"link\","
	"\"description\":\"a Font Awesome icon name\"},"
	"\"icon_family\":{\"type\":\"string\",\"enum\":[\"fas\",\"far\",\"fab\"],"
	"\"default\":\"fas\"},"
	"\"open_mode\":{\"type\":\"string\",\"enum\":[\"iframe\",\"new_tab\",\"current_tab\"],"
	"\"default\":\"new_tab\"},"
	"\"user_role\":{\"type\":\"string\",\"enum\":[\"all\",\"admin\",\"user\"],"
	"\"default\":\"all\"}},\"additionalProperties\":false}}},"
	"\"additionalProperties\":false}";
