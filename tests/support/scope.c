/* scope.c — see scope.h. */
#include "scope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "json.h"
#include "testlib.h"

#define MAX_PAGES 1000

void tl_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

size_t tl_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int tl_strv_has(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

/* An export (text/csv): the column named field of every record after the
 * header; "" (no further page) or NULL on a problem (described in err). */
static char *csv_ids(const char *url, const char *body, const char *field, char ***ids, size_t *n,
		     long *status, struct buf *err)
{
	struct csv c;
	struct err e;
	if (csv_parse(body, strlen(body), &(struct csv_limits){0, 0, 0}, &c, &e)) {
		*status = 0;
		if (err)
			buf_printf(err, "GET %s: not CSV (%s)", url, e.msg);
		return NULL;
	}
	size_t col = 0;
	while (c.n && col < c.records[0].n && strcmp(c.records[0].fields[col], field))
		col++;
	if (!c.n || col == c.records[0].n) {
		*status = 0;
		if (err)
			buf_printf(err, "GET %s: no CSV column \"%s\"", url, field);
		csv_clear(&c);
		return NULL;
	}
	for (size_t i = 1; i < c.n; i++)
		strv_push(ids, n, col < c.records[i].n ? c.records[i].fields[col] : "");
	csv_clear(&c);
	return xstrdup("");
}

/* One page: appends the ids to *ids; returns the next cursor (malloc'd), ""
 * on the last page, or NULL on a problem (described in err). */
static char *list_page(const char *url, const char *token, const char *field, char ***ids,
		       size_t *n, long *status, struct buf *err)
{
	char *authz = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	const char *h[] = {"Accept: application/json", authz, NULL};
	struct tl_resp r;
	tl_request(&r, "GET", url, h, NULL, 0);
	free(authz);
	*status = r.status;
	char *next = NULL;
	struct json *j = NULL;
	if (r.status != 200) {
		if (err)
			buf_printf(err, "GET %s: %ld: %.200s", url, r.status, r.body);
		goto out;
	}
	if (strcasestr(r.headers, "\nContent-Type: text/csv")) {
		next = csv_ids(url, r.body, field, ids, n, status, err);
		goto out;
	}
	j = json_parse(r.body, strlen(r.body), JSON_DEFAULT_MAX_DEPTH, NULL);
	/* "list.field": the elements of the array `list` instead of "items" */
	char list[64] = "items";
	const char *dot = strchr(field, '.');
	if (dot && (size_t)(dot - field) < sizeof(list)) {
		snprintf(list, sizeof(list), "%.*s", (int)(dot - field), field);
		field = dot + 1;
	}
	struct json *items = json_get(j, list);
	if (!items || items->type != JSON_ARRAY) {
		*status = 0;
		if (err)
			buf_printf(err, "GET %s: no \"%s\" array: %.200s", url, list, r.body);
		goto out;
	}
	for (size_t i = 0; i < json_len(items); i++) {
		const char *id = json_get_str(json_at(items, i), field);
		if (!id) {
			*status = 0;
			if (err)
				buf_printf(err, "GET %s: item %zu has no string \"%s\": %.200s",
					   url, i, field, r.body);
			goto out;
		}
		strv_push(ids, n, id);
	}
	const char *nc = json_get_str(j, "next_cursor");
	next = xstrdup(nc ? nc : "");
out:
	json_free(j);
	tl_resp_free(&r);
	return next;
}

char **tl_list_ids(const char *base, const char *token, const char *path, const char *field,
		   long *status, struct buf *err)
{
	char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;
	char *url = xasprintf("%s%s", base, path);
	for (int page = 0;; page++) {
		ck_assert_msg(page < MAX_PAGES, "GET %s: more than %d pages (a cursor loop?)", path,
			      MAX_PAGES);
		char *next = list_page(url, token, field, &ids, &n, status, err);
		free(url);
		if (!next) {
			tl_strv_free(ids);
			return NULL;
		}
		if (!*next) {
			free(next);
			return ids;
		}
		url = xasprintf("%s%s%scursor=%s", base, path, strchr(path, '?') ? "&" : "?", next);
		free(next);
	}
}

char **tl_sql_ids(PGconn *db, const char *sql, const char *param)
{
	const char *params[] = {param};
	PGresult *res = PQexecParams(db, sql, strstr(sql, "$1") ? 1 : 0, NULL, params, NULL, NULL,
				     0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "SQL failed: %s\n%s",
		      PQresultErrorMessage(res), sql);
	char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (int i = 0; i < PQntuples(res); i++)
		strv_push(&ids, &n, PQgetvalue(res, i, 0));
	PQclear(res);
	return ids;
}

int tl_scope_check(struct buf *fails, const char *base, PGconn *db, const struct tl_caller *who,
		   const char *path, const char *field, const char *all_sql,
		   const char *visible_sql, long want_status, struct tl_scope_counts *counts)
{
	struct tl_scope_counts c = {0, 0, 0};
	int problems = 0;
	long status = 0;
	struct buf err;
	buf_init(&err);
	char **got = tl_list_ids(base, who->token, path, field, &status, &err);
	if (status != want_status) {
		buf_printf(fails, "  GET %s as %s: %ld, want %ld (%s)\n", path, who->name, status,
			   want_status, err.len ? buf_cstr(&err) : "a page of items");
		problems++;
	}
	buf_clear(&err);
	if (!got || want_status != 200)
		goto out;
	char **visible = tl_sql_ids(db, visible_sql, who->agencies);
	char **all = tl_sql_ids(db, all_sql, NULL);
	c.got = tl_strv_len(got);
	c.visible = tl_strv_len(visible);
	for (size_t i = 0; all[i]; i++)
		c.foreign += !tl_strv_has(visible, all[i]);
	for (size_t i = 0; got[i]; i++) {
		const char *id = got[i];
		if (tl_strv_has(visible, id)) {
			if (tl_strv_has(got + i + 1, id)) {
				buf_printf(fails, "  GET %s as %s: %s listed twice\n", path,
					   who->name, id);
				problems++;
			}
		} else {
			buf_printf(fails, "  GET %s as %s: LEAK: %s %s\n", path, who->name, id,
				   tl_strv_has(all, id) ? "is not the caller's to see"
							: "is no object the database has");
			problems++;
		}
	}
	for (size_t i = 0; visible[i]; i++)
		if (!tl_strv_has(got, visible[i])) {
			buf_printf(fails, "  GET %s as %s: missing %s\n", path, who->name,
				   visible[i]);
			problems++;
		}
	tl_strv_free(visible);
	tl_strv_free(all);
out:
	tl_strv_free(got);
	if (counts)
		*counts = c;
	return problems;
}

void tl_scope_assert_none(struct buf *fails, const char *what)
{
	if (!fails->len)
		return;
	size_t lines = 0;
	for (const char *p = buf_cstr(fails); (p = strchr(p, '\n')); p++)
		lines++;
	fprintf(stderr, "%s: %zu problems:\n%s", what, lines, buf_cstr(fails));
	ck_abort_msg("%s: %zu problems (all on stderr), the first:\n%.2000s", what, lines,
		     buf_cstr(fails));
}
