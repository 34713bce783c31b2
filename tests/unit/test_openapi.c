/* test_openapi.c — docs/openapi.yaml describes exactly the router's routes:
 * every (method, path) of routes_all() is in the spec's `paths:` and every
 * operation of the spec is a route. The YAML is read line by line: paths are
 * the two-space-indented keys under `paths:`, operations the four-space ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "http.h"
#include "testlib.h"
#include "util.h"

static const char *const methods[] = {"get",	"post", "put",	   "patch",
				      "delete", "head", "options", NULL};

/* "METHOD path" lines of the spec, each followed by '\n'. */
static char *spec_operations(const char *text)
{
	struct buf out;
	buf_init(&out);
	char *copy = xstrdup(text);
	char *save = copy, *line;
	int in_paths = 0;
	char path[512] = "";
	while ((line = save) != NULL) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		if (line[0] != ' ') {
			in_paths = !strcmp(line, "paths:");
			continue;
		}
		if (!in_paths)
			continue;
		if (!strncmp(line, "  /", 3)) {
			char *colon = strrchr(line, ':');
			ck_assert_msg(colon, "openapi.yaml: path line without ':': %s", line);
			snprintf(path, sizeof(path), "%.*s", (int)(colon - line - 2), line + 2);
			continue;
		}
		if (!strncmp(line, "    ", 4) && line[4] != ' ') {
			for (int i = 0; methods[i]; i++) {
				size_t ml = strlen(methods[i]);
				if (!strncmp(line + 4, methods[i], ml) && line[4 + ml] == ':') {
					for (size_t k = 0; k < ml; k++)
						buf_putc(&out, (char)(methods[i][k] - 'a' + 'A'));
					buf_printf(&out, " %s\n", path);
				}
			}
		}
	}
	free(copy);
	return buf_take(&out);
}

static int has_line(const char *lines, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = lines; (p = strstr(p, needle)) != NULL; p++)
		if ((p == lines || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

START_TEST(router_equals_spec)
{
	char *path = xasprintf("%s/docs/openapi.yaml", tl_env("GHL_SOURCE_DIR"));
	char *text = tl_read_file(path);
	ck_assert_msg(*text, "cannot read %s", path);
	char *spec = spec_operations(text);
	ck_assert_msg(*spec, "no operations found under paths: in %s", path);

	size_t n = 0;
	struct http_route *routes = routes_all(&n);
	struct buf router, missing_in_spec, missing_in_router;
	buf_init(&router);
	buf_init(&missing_in_spec);
	buf_init(&missing_in_router);
	for (size_t i = 0; i < n; i++) {
		char *op = xasprintf("%s %s", routes[i].method, routes[i].pattern);
		buf_printf(&router, "%s\n", op);
		if (!has_line(spec, op))
			buf_printf(&missing_in_spec, "  %s\n", op);
		free(op);
	}
	const char *router_text = buf_cstr(&router);
	for (char *p = spec; *p;) {
		char *nl = strchr(p, '\n');
		char *op = xstrndup(p, (size_t)(nl - p));
		if (!has_line(router_text, op))
			buf_printf(&missing_in_router, "  %s\n", op);
		free(op);
		p = nl + 1;
	}
	ck_assert_msg(missing_in_spec.len == 0 && missing_in_router.len == 0,
		      "router and docs/openapi.yaml differ\nroutes without a spec entry:\n%s"
		      "spec operations without a route:\n%s",
		      buf_cstr(&missing_in_spec), buf_cstr(&missing_in_router));
	buf_clear(&router);
	buf_clear(&missing_in_spec);
	buf_clear(&missing_in_router);
	free(routes);
	free(spec);
	free(text);
	free(path);
}
END_TEST

START_TEST(reader_finds_operations)
{
	const char *y = "openapi: 3.1.0\npaths:\n  /a/{id}:\n    parameters: []\n    get:\n"
			"      summary: x\n    patch:\n      responses: {}\n  /b:\n    post:\n"
			"components:\n  schemas:\n    get:\n";
	char *ops = spec_operations(y);
	ck_assert_str_eq(ops, "GET /a/{id}\nPATCH /a/{id}\nPOST /b\n");
	free(ops);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("openapi");
	TCase *tc = tcase_create("spec");
	tcase_add_test(tc, reader_finds_operations);
	tcase_add_test(tc, router_equals_spec);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
