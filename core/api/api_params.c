/* api_params.c — the query string of an /api/v1 request: route {params},
 * query parameters with every problem collected for one 400, limit and cursor,
 * LIKE patterns. See api.h. */
#include "api_int.h"

#include <event2/http.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

const char *api_param(const struct api_req *r, int i)
{
	return i >= 0 && i < r->c->nparams ? r->c->params[i] : NULL;
}

const char *api_query_param(const struct api_req *r, const char *name)
{
	const char *v = r->query ? evhttp_find_header(r->query, name) : NULL;
	return v && *v ? v : NULL; /* empty = absent */
}

/* The query-string problems of one request, collected until api_query_ok. */
struct api_qproblems {
	struct api_problems p;
	struct buf names; /* "status, created_after, limit" */
	char *first;	  /* "query parameter status must be …" */
	int cursor_only;  /* the only problem is the cursor */
};

struct api_qproblems *api_qproblems_free(struct api_qproblems *q)
{
	if (!q)
		return NULL;
	api_problems_clear(&q->p);
	buf_clear(&q->names);
	free(q->first);
	free(q);
	return NULL;
}

void api_query_problem(struct api_req *r, const char *name, const char *fmt, ...)
{
	struct api_qproblems *q = r->qp;
	if (!q) {
		q = r->qp = xcalloc(1, sizeof(*q));
		api_problems_init(&q->p);
		buf_init(&q->names);
	}
	struct buf m;
	buf_init(&m);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	api_problem(&q->p, name, "%s", buf_cstr(&m));
	buf_printf(&q->names, "%s%s", q->p.n > 1 ? ", " : "", name);
	if (q->p.n == 1)
		q->first = xasprintf("query parameter %s %s", name, buf_cstr(&m));
	q->cursor_only = q->p.n == 1 && !strcmp(name, "cursor");
	buf_clear(&m);
}

int api_query_ok(struct api_req *r)
{
	struct api_qproblems *q = r->qp;
	if (!q || !q->p.n)
		return 0;
	char *details = api_problems_json(&q->p);
	char *msg = q->p.n == 1 ? xstrdup(q->first)
				: xasprintf("%zu query parameters are invalid: %s", q->p.n,
					    buf_cstr(&q->names));
	const char *code = q->cursor_only ? "invalid_cursor" : "invalid_parameter";
	api_reply_error(r, 400, code, msg, details); /* frees r and its problems */
	free(msg);
	free(details);
	return -1;
}

int api_query_int(struct api_req *r, const char *name, long long min, long long max, long long def,
		  long long *out)
{
	const char *v = api_query_param(r, name);
	if (v && !str_to_ll(v, min, max, out))
		return 0;
	*out = def;
	if (!v)
		return 0;
	api_query_problem(r, name, "must be a whole number from %lld to %lld", min, max);
	return -1;
}

int api_query_bool(struct api_req *r, const char *name, int *out)
{
	const char *v = api_query_param(r, name);
	*out = -1;
	if (!v)
		return 0;
	if (!strcmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else {
		api_query_problem(r, name, "must be true or false");
		return -1;
	}
	return 0;
}

int api_page_parse(struct api_req *r, struct api_page *pg)
{
	memset(pg, 0, sizeof(*pg));
	long long lim;
	api_query_int(r, "limit", 1, API_PAGE_MAX, API_PAGE_DEFAULT, &lim);
	pg->limit = (int)lim;
	const char *cur = api_query_param(r, "cursor");
	if (cur && api_cursor_decode(cur, &pg->after_ts, &pg->after_id))
		api_query_problem(r, "cursor",
				  "is not one this API returned (use next_cursor as given)");
	if (api_query_ok(r)) {
		api_page_clear(pg);
		return -1;
	}
	return 0;
}

void api_page_clear(struct api_page *pg)
{
	free(pg->after_ts);
	free(pg->after_id);
	pg->after_ts = pg->after_id = NULL;
}

char *api_like_contains(const char *s)
{
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '%');
	for (; *s; s++) {
		if (*s == '\\' || *s == '%' || *s == '_')
			buf_putc(&b, '\\');
		buf_putc(&b, *s);
	}
	buf_putc(&b, '%');
	return buf_take(&b);
}

void api_sql_filter(struct buf *sql, const char **params, int *n, const char *value,
		    const char *fragment)
{
	if (!value)
		return;
	params[(*n)++] = value;
	const char *at = strstr(fragment, "%d");
	if (!at) {
		buf_puts(sql, fragment);
		return;
	}
	buf_printf(sql, "%.*s%d%s", (int)(at - fragment), fragment, *n, at + 2);
}
