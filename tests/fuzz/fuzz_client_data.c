/* fuzz_client_data.c — libFuzzer target for core/base/client_data.c (and, on the
 * way, core/base/schema.c).
 *
 * Invariants: validating never crashes or leaks; the count returned is the
 * number of problems appended, each {"field": "client_data...", "message":
 * non-empty}; data without problems is an object with a valid name and email.
 * The input is also tried as a schema, validating itself, and as the raw
 * argument of each field checker.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_data.h"
#include "formats.h"
#include "json.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_problems(const struct json *problems, size_t n, const char *prefix)
{
	size_t i;

	if (json_len(problems) != n)
		abort();
	for (i = 0; i < n; i++) {
		const struct json *p = json_at(problems, i);
		const char *field = json_get_str(p, "field");
		const char *msg = json_get_str(p, "message");

		if (json_len(p) != 2 || !field || !msg || !*msg ||
		    strncmp(field, prefix, strlen(prefix)) != 0)
			abort();
	}
}

static void fuzz_as_client_data(const struct json *v)
{
	struct json *problems = json_new_array();
	size_t n = client_data_validate(v, problems);

	check_problems(problems, n, "client_data");
	if (n > SCHEMA_MAX_PROBLEMS + 1)
		abort();
	if (n == 0 && (v->type != JSON_OBJECT || !json_get_str(v, "name") ||
		       !format_email_valid(json_get_str(v, "email"))))
		abort();
	json_free(problems);
}

static void fuzz_as_schema(const struct json *v)
{
	struct json *problems;
	struct err e;
	size_t n;

	if (schema_check(v, &e) < 0) {
		if (!e.msg[0])
			abort();
		return;
	}
	problems = json_new_array();
	n = schema_validate(v, v, "self", problems);
	check_problems(problems, n, "self");
	json_free(problems);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	struct json *v;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	format_email_valid(s);
	format_phone_valid(s);
	format_country_valid(s);
	format_timezone_valid(s);
	free(s);

	v = json_parse((const char *)data, size, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!v)
		return 0;
	fuzz_as_client_data(v);
	fuzz_as_schema(v);
	json_free(v);
	return 0;
}
