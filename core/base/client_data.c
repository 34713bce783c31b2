/* client_data.c — client_data_json (DESIGN.md "Client data") as a schema:
 * the table of fields, each with its length cap and format, becomes the JSON
 * Schema that schema.c validates; the string formats (e-mail, E.164,
 * country, time zone, URL) are formats.c's. */
#include "client_data.h"

#include <pthread.h>
#include <string.h>

#include "schema.h"
#include "util.h"

#define ROOT "client_data"
#define CUSTOM_MAX_KEYS 100
#define CUSTOM_KEY_MAX 100
#define CUSTOM_VALUE_MAX 5000
#define TAGS_MAX 50
#define TAG_MAX 100

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum kind { K_TEXT, K_CUSTOM, K_TAGS };

struct field {
	const char *name;
	enum kind kind;
	unsigned max;	    /* K_TEXT: characters (0: the format's own cap) */
	const char *format; /* K_TEXT: schema.h's format, or NULL */
	int required;
};

static const struct field fields[] = {
	{"name", K_TEXT, 255, NULL, 1},		 {"email", K_TEXT, 0, "email", 1},
	{"first_name", K_TEXT, 100, NULL, 0},	 {"last_name", K_TEXT, 100, NULL, 0},
	{"phone", K_TEXT, 0, "e164", 0},	 {"address", K_TEXT, 255, NULL, 0},
	{"city", K_TEXT, 100, NULL, 0},		 {"state", K_TEXT, 100, NULL, 0},
	{"postal_code", K_TEXT, 20, NULL, 0},	 {"country", K_TEXT, 0, "country", 0},
	{"website", K_TEXT, 2048, "url", 0},	 {"timezone", K_TEXT, 0, "timezone", 0},
	{"custom_values", K_CUSTOM, 0, NULL, 0}, {"tags", K_TAGS, 0, NULL, 0},
	{"external_id", K_TEXT, 255, NULL, 0},
};

int client_data_field_known(const char *name)
{
	for (size_t i = 0; name && i < N_ELEMS(fields); i++)
		if (!strcmp(fields[i].name, name))
			return 1;
	return 0;
}

static void set(struct json *obj, const char *key, struct json *val)
{
	json_object_set_take(obj, key, val);
}

/* {"type": "string", "minLength": 1, "maxLength": max, "noControlCharacters":
 * true, "notBlank": true, "format": format}, without what is 0 or NULL. */
static struct json *text_schema(unsigned max, const char *format)
{
	struct json *s = json_new_object();

	set(s, "type", json_new_string("string"));
	set(s, "minLength", json_new_int(1));
	if (max)
		set(s, "maxLength", json_new_int(max));
	set(s, "noControlCharacters", json_new_bool(1));
	set(s, "notBlank", json_new_bool(1));
	if (format)
		set(s, "format", json_new_string(format));
	return s;
}

/* An object of at most 100 keys of 1..100 characters without control
 * characters, each value a string (at most 5000 characters), number or
 * boolean. */
static struct json *custom_values_schema(void)
{
	struct json *s = json_new_object(), *names = json_new_object();
	struct json *values = json_new_object(), *types = json_new_array();

	set(names, "minLength", json_new_int(1));
	set(names, "maxLength", json_new_int(CUSTOM_KEY_MAX));
	set(names, "noControlCharacters", json_new_bool(1));
	json_array_push_take(types, json_new_string("string"));
	json_array_push_take(types, json_new_string("number"));
	json_array_push_take(types, json_new_string("boolean"));
	set(values, "type", types);
	set(values, "maxLength", json_new_int(CUSTOM_VALUE_MAX));
	set(s, "type", json_new_string("object"));
	set(s, "maxProperties", json_new_int(CUSTOM_MAX_KEYS));
	set(s, "propertyNames", names);
	set(s, "unevaluatedProperties", values);
	return s;
}

static struct json *tags_schema(void)
{
	struct json *s = json_new_object();

	set(s, "type", json_new_string("array"));
	set(s, "maxItems", json_new_int(TAGS_MAX));
	set(s, "items", text_schema(TAG_MAX, NULL));
	return s;
}

static struct json *build_schema(void)
{
	struct json *s = json_new_object(), *props = json_new_object();
	struct json *req = json_new_array();

	for (size_t i = 0; i < N_ELEMS(fields); i++) {
		const struct field *f = &fields[i];

		set(props, f->name,
		    f->kind == K_CUSTOM ? custom_values_schema()
		    : f->kind == K_TAGS ? tags_schema()
					: text_schema(f->max, f->format));
		if (f->required)
			json_array_push_take(req, json_new_string(f->name));
	}
	set(s, "type", json_new_string("object"));
	set(s, "properties", props);
	set(s, "required", req);
	set(s, "additionalProperties", json_new_bool(0));
	return s;
}

/* Built once, kept for the process's life. */
static struct json *schema;
static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

static void schema_init(void)
{
	schema = build_schema();
}

const struct json *client_data_schema(void)
{
	pthread_once(&schema_once, schema_init);
	return schema;
}

size_t client_data_validate(const struct json *data, struct json *problems)
{
	if (!data)
		return schema_problem_add(problems, ROOT, "required");
	return schema_validate(client_data_schema(), data, ROOT, problems);
}
