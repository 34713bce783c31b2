/* api.c — request helpers shared by the /api/v1 handlers; see api.h. */
#include "api.h"

#include <ctype.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "passwords.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define SESSION_COOKIE "ghl_session"

/* ---- principal --------------------------------------------------------- */

static const char *const role_names[] = {NULL, "ADMIN", "AGENCY_ADMIN", "SUPPORT"};

const char *api_role_name(enum api_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : NULL;
}

enum api_role api_role_parse(const char *s)
{
	for (size_t i = 1; s && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (!strcmp(s, role_names[i]))
			return (enum api_role)i;
	return API_ROLE_NONE;
}

static int in_list(const struct principal *p, const char *agency_id)
{
	for (size_t i = 0; i < p->nagencies; i++)
		if (!strcasecmp(p->agency_ids[i], agency_id))
			return 1;
	return 0;
}

int api_agency_in_scope(const struct principal *p, const char *agency_id)
{
	if (!agency_id)
		return 0;
	if (p->kind == PRINCIPAL_SESSION &&
	    (p->role == API_ROLE_ADMIN || p->role == API_ROLE_SUPPORT))
		return 1;
	if (p->kind == PRINCIPAL_NONE)
		return 0;
	return in_list(p, agency_id);
}

int api_can_manage_agency(const struct principal *p, const char *agency_id)
{
	if (p->kind != PRINCIPAL_SESSION)
		return 0;
	if (p->role == API_ROLE_ADMIN)
		return 1;
	return p->role == API_ROLE_AGENCY_ADMIN && in_list(p, agency_id);
}

char *api_scope_array(const struct principal *p)
{
	if (p->kind == PRINCIPAL_SESSION &&
	    (p->role == API_ROLE_ADMIN || p->role == API_ROLE_SUPPORT))
		return NULL;
	struct buf b;
	buf_init(&b);
	buf_putc(&b, '{');
	for (size_t i = 0; i < p->nagencies; i++) {
		if (i)
			buf_putc(&b, ',');
		buf_puts(&b, p->agency_ids[i]);
	}
	buf_putc(&b, '}');
	return buf_take(&b);
}

static void principal_clear(struct principal *p)
{
	free(p->email);
	for (size_t i = 0; i < p->nagencies; i++)
		free(p->agency_ids[i]);
	free(p->agency_ids);
	memset(p, 0, sizeof(*p));
}

static void principal_add_agency(struct principal *p, const char *id, size_t n)
{
	p->agency_ids = xrealloc(p->agency_ids, (p->nagencies + 1) * sizeof(char *));
	p->agency_ids[p->nagencies++] = xstrndup(id, n);
}

/* ---- problems and validation ------------------------------------------ */

void api_problems_init(struct api_problems *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->details);
	buf_init(&p->unknown);
}

void api_problems_free(struct api_problems *p)
{
	buf_free(&p->details);
	buf_free(&p->unknown);
}

void api_problem(struct api_problems *p, const char *field, const char *fmt, ...)
{
	struct buf m;
	buf_init(&m);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	buf_puts(&p->details, p->n ? "," : "[");
	buf_puts(&p->details, "{\"field\":");
	json_write_string(&p->details, field && *field ? field : "body");
	buf_puts(&p->details, ",\"message\":");
	json_write_string(&p->details, buf_cstr(&m));
	buf_putc(&p->details, '}');
	p->n++;
	buf_free(&m);
}

char *api_problems_json(const struct api_problems *p)
{
	if (!p->n)
		return xstrdup("[]");
	return xasprintf("%s]", p->details.data);
}

static char *join_path(const char *prefix, const char *name)
{
	if (!prefix || !*prefix)
		return xstrdup(name);
	return xasprintf("%s.%s", prefix, name);
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

int api_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int is_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || at == s + n - 1 || memchr(at + 1, '@', (size_t)(s + n - at - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]))
			return 0;
	const char *dot = memchr(at + 1, '.', (size_t)(s + n - at - 1));
	return dot && dot != at + 1 && dot != s + n - 1;
}

static const char *type_word(enum api_type t)
{
	switch (t) {
	case API_T_STRING: return "a string";
	case API_T_INT: return "an integer";
	case API_T_NUMBER: return "a number";
	case API_T_BOOL: return "a boolean";
	case API_T_OBJECT: return "an object";
	case API_T_ARRAY: return "an array";
	case API_T_UUID: return "a UUID string";
	case API_T_EMAIL: return "an email address";
	case API_T_ANY: return "any value";
	}
	return "?";
}

static void check_value(const char *path, const struct json *v, const struct api_field *f,
			struct api_problems *p);

static void check_string(const char *path, const struct json *v, const struct api_field *f,
			 struct api_problems *p)
{
	const char *s = v->u.str.s;
	size_t n = v->u.str.len;
	if (strlen(s) != n) {
		api_problem(p, path, "must not contain NUL characters");
		return;
	}
	size_t chars = utf8_chars(s, n);
	if (f->min_len && chars < f->min_len) {
		api_problem(p, path, f->min_len == 1 ? "must not be empty"
						     : "must be at least %zu characters",
			    f->min_len);
		return;
	}
	if (f->max_len && chars > f->max_len) {
		api_problem(p, path, "must be at most %zu characters", f->max_len);
		return;
	}
	if (f->type == API_T_UUID && !api_is_uuid(s)) {
		api_problem(p, path, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
		return;
	}
	if (f->type == API_T_EMAIL && !is_email(s, n)) {
		api_problem(p, path, "must be an email address (name@example.com)");
		return;
	}
	if (f->one_of) {
		for (const char *const *o = f->one_of; *o; o++)
			if (!strcmp(*o, s))
				return;
		struct buf b;
		buf_init(&b);
		for (const char *const *o = f->one_of; *o; o++)
			buf_printf(&b, "%s%s", o == f->one_of ? "" : ", ", *o);
		api_problem(p, path, "must be one of: %s", buf_cstr(&b));
		buf_free(&b);
	}
}

static void check_value(const char *path, const struct json *v, const struct api_field *f,
			struct api_problems *p)
{
	if (v->type == JSON_NULL) {
		if (!(f->flags & API_F_NULLABLE) && f->type != API_T_ANY)
			api_problem(p, path, "must not be null (expected %s)", type_word(f->type));
		return;
	}
	enum json_type want = JSON_NULL;
	switch (f->type) {
	case API_T_STRING:
	case API_T_UUID:
	case API_T_EMAIL: want = JSON_STRING; break;
	case API_T_INT:
	case API_T_NUMBER: want = JSON_NUMBER; break;
	case API_T_BOOL: want = JSON_BOOL; break;
	case API_T_OBJECT: want = JSON_OBJECT; break;
	case API_T_ARRAY: want = JSON_ARRAY; break;
	case API_T_ANY: return;
	}
	if (v->type != want || (f->type == API_T_INT && !v->u.num.is_int)) {
		api_problem(p, path, "expected %s, got %s", type_word(f->type),
			    v->type == JSON_NUMBER && want == JSON_NUMBER ? "a fraction"
									  : json_type_name(v->type));
		return;
	}
	switch (f->type) {
	case API_T_STRING:
	case API_T_UUID:
	case API_T_EMAIL: check_string(path, v, f, p); break;
	case API_T_INT:
		if (f->min < f->max && (v->u.num.i < f->min || v->u.num.i > f->max))
			api_problem(p, path, "must be from %lld to %lld", (long long)f->min,
				    (long long)f->max);
		break;
	case API_T_OBJECT:
		if (f->fields)
			api_validate(v, f->fields, path, p);
		break;
	case API_T_ARRAY: {
		size_t n = v->u.arr.n;
		if (f->min_len && n < f->min_len)
			api_problem(p, path, "must hold at least %zu item(s)", f->min_len);
		else if (f->max_len && n > f->max_len)
			api_problem(p, path, "must hold at most %zu item(s)", f->max_len);
		if (f->items)
			for (size_t i = 0; i < n; i++) {
				char *ip = xasprintf("%s[%zu]", path, i);
				check_value(ip, v->u.arr.items[i], f->items, p);
				free(ip);
			}
		break;
	}
	default: break;
	}
}

struct key_at {
	const char *key;
	size_t i;
};

static int key_at_cmp(const void *a, const void *b)
{
	const struct key_at *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* dup[i] = 1 when member i repeats an earlier key of object v (malloc'd).
 * Sorting keeps this n·log n whatever the keys are. */
static unsigned char *duplicate_keys(const struct json *v)
{
	size_t n = v->u.obj.n;
	unsigned char *dup = xcalloc(n ? n : 1, 1);
	struct key_at *k = xmalloc((n ? n : 1) * sizeof(*k));
	for (size_t i = 0; i < n; i++)
		k[i] = (struct key_at){v->u.obj.keys[i], i};
	qsort(k, n, sizeof(*k), key_at_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(k[i].key, k[i - 1].key))
			dup[k[i].i] = 1;
	free(k);
	return dup;
}

size_t api_validate(const struct json *v, const struct api_field *fields, const char *prefix,
		    struct api_problems *p)
{
	size_t before = p->n;
	if (!v || v->type != JSON_OBJECT) {
		api_problem(p, prefix, "expected an object, got %s",
			    v ? json_type_name(v->type) : "nothing");
		return p->n - before;
	}
	unsigned char *dup = duplicate_keys(v);
	for (size_t i = 0; i < v->u.obj.n; i++) {
		const char *key = v->u.obj.keys[i];
		char *path = join_path(prefix, key);
		const struct api_field *f = fields;
		while (f->name && strcmp(f->name, key))
			f++;
		if (dup[i]) {
			api_problem(p, path, "duplicate field");
		} else if (!f->name) {
			api_problem(p, path, "unknown field");
			buf_printf(&p->unknown, "%s%s", p->nunknown ? ", " : "", path);
			p->nunknown++;
		} else {
			check_value(path, v->u.obj.vals[i], f, p);
		}
		free(path);
	}
	free(dup);
	for (const struct api_field *f = fields; f->name; f++) {
		if (!(f->flags & API_F_REQUIRED) || json_get(v, f->name))
			continue;
		char *path = join_path(prefix, f->name);
		api_problem(p, path, "is required (%s)", type_word(f->type));
		free(path);
	}
	return p->n - before;
}

/* ---- cursors ----------------------------------------------------------- */

char *api_cursor_encode(const char *created_at, const char *id)
{
	char *raw = xasprintf("%s|%s", created_at, id);
	char *c = crypto_base64url_encode(raw, strlen(raw));
	free(raw);
	return c;
}

/* "YYYY-MM-DDTHH:MM:SS.ffffff" */
static int is_cursor_ts(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddd";
	if (n != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	}
	return 1;
}

int api_cursor_decode(const char *cursor, char **created_at, char **id)
{
	unsigned char *raw = NULL;
	size_t n = 0;
	if (!cursor || strlen(cursor) > 200 ||
	    crypto_base64url_decode(cursor, strlen(cursor), &raw, &n, NULL))
		return -1;
	const char *bar = memchr(raw, '|', n);
	int rc = -1;
	if (bar && is_cursor_ts((const char *)raw, (size_t)(bar - (const char *)raw))) {
		char *i = xstrndup(bar + 1, n - (size_t)(bar + 1 - (const char *)raw));
		if (api_is_uuid(i) && strlen(i) == n - (size_t)(bar + 1 - (const char *)raw)) {
			*created_at = xstrndup((const char *)raw, (size_t)(bar - (const char *)raw));
			*id = i;
			rc = 0;
		} else {
			free(i);
		}
	}
	free(raw);
	return rc;
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

/* ---- replies ----------------------------------------------------------- */

static void qproblems_free(struct api_qproblems *q);

static void req_free(struct api_req *r)
{
	qproblems_free(r->qp);
	json_free(r->body);
	if (r->query) {
		evhttp_clear_headers(r->query);
		free(r->query);
	}
	principal_clear(&r->who);
	if (r->data_free)
		r->data_free(r->data);
	free(r);
}

void api_req_done(struct api_req *r)
{
	req_free(r);
}

void api_add_header(struct api_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->c->req), name, value);
}

void api_reply_json(struct api_req *r, int status, const char *json)
{
	struct buf b; /* one spacing for every answer, whoever wrote the JSON */
	buf_init(&b);
	json_text_compact(&b, json);
	http_reply_json(r->c, status, buf_cstr(&b));
	buf_free(&b);
	req_free(r);
}

void api_reply_empty(struct api_req *r, int status)
{
	http_reply(r->c, status, NULL, NULL, 0);
	req_free(r);
}

void api_reply_error(struct api_req *r, int status, const char *code, const char *message,
		     const char *details_json)
{
	http_reply_error(r->c, status, code, message, details_json);
	req_free(r);
}

void api_reply_problems(struct api_req *r, struct api_problems *p)
{
	char *details = api_problems_json(p);
	char *msg;
	if (p->nunknown)
		msg = xasprintf("unknown field%s: %s", p->nunknown > 1 ? "s" : "",
				buf_cstr(&p->unknown));
	else
		msg = xasprintf("the request has %zu invalid field%s (see details)", p->n,
				p->n == 1 ? "" : "s");
	api_reply_error(r, 422, p->nunknown ? "unknown_fields" : "validation_failed", msg,
			details);
	free(msg);
	free(details);
	api_problems_free(p);
}

void api_reply_not_found(struct api_req *r, const char *what)
{
	char *msg = xasprintf("%s not found", what);
	api_reply_error(r, 404, "not_found", msg, NULL);
	free(msg);
}

void api_reply_internal(struct api_req *r, const char *why)
{
	log_error("api request failed", "request_id", r->c->request_id, "path", r->c->path,
		  "error", why, NULL);
	api_reply_error(r, 500, "internal_error",
			"the request failed on the server; the log has the details (request id "
			"in X-Request-Id)",
			NULL);
}

void api_reply_page(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
		    int limit)
{
	api_reply_page_map(r, res, json_col, ts_col, id_col, limit, NULL);
}

void api_reply_page_map(struct api_req *r, PGresult *res, int json_col, int ts_col, int id_col,
			int limit, api_row_map_fn map)
{
	int n = PQntuples(res);
	int shown = n > limit ? limit : n;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"items\":[");
	for (int i = 0; i < shown; i++) {
		if (i)
			buf_putc(&b, ',');
		if (map) {
			char *item = map(PQgetvalue(res, i, json_col));
			buf_puts(&b, item);
			free(item);
		} else {
			buf_puts(&b, PQgetvalue(res, i, json_col));
		}
	}
	buf_puts(&b, "],\"next_cursor\":");
	if (n > limit && shown > 0) {
		char *cur = api_cursor_encode(PQgetvalue(res, shown - 1, ts_col),
					      PQgetvalue(res, shown - 1, id_col));
		json_write_string(&b, cur);
		free(cur);
	} else {
		buf_puts(&b, "null");
	}
	buf_putc(&b, '}');
	api_reply_json(r, 200, buf_cstr(&b));
	buf_free(&b);
}

/* ---- database ---------------------------------------------------------- */

/* No connection came within db_wait_timeout (or the wait queue was full). */
static void reply_db_unavailable(struct api_req *r, const char *message)
{
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", db_pool_retry_after_s(r->app->db));
	api_add_header(r, "Retry-After", secs);
	api_reply_error(r, 503, "database_unavailable", message, NULL);
}

static int is_safe_method(const char *m);

static void query_done(void *arg, PGresult *res, const char *errmsg)
{
	struct api_req *r = arg;
	api_result_fn cb = r->qcb;
	r->qcb = NULL;
	if (!res) {
		log_warn("api query: database unavailable", "request_id", r->c->request_id,
			 "error", errmsg ? errmsg : "", NULL);
		reply_db_unavailable(r, "the database is unavailable; try again shortly");
		return;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		cb(r, res);
		return;
	}
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && !strcmp(state, "23505")) {
		api_reply_error(r, 409, "conflict",
				r->conflict_msg ? r->conflict_msg : "the record already exists",
				NULL);
	} else if (state && !strcmp(state, "23503")) {
		api_reply_error(r, 422, "invalid_reference",
				"a referenced record does not exist", NULL);
	} else if (state && (!strcmp(state, "22P02") || !strcmp(state, "22007") ||
			     !strcmp(state, "22008") || !strcmp(state, "22003"))) {
		api_reply_error(r, 400, "invalid_input", "a value has an invalid format", NULL);
	} else {
		api_reply_internal(r, PQresultErrorMessage(res));
	}
}

void api_query(struct api_req *r, const char *sql, int nparams, const char *const *params,
	       api_result_fn cb)
{
	r->qcb = cb;
	/* GET and friends only read: safe to re-run if the connection drops */
	db_pool_query_flags(r->app->db, is_safe_method(r->c->method) ? DB_REPLAY : 0, sql, nparams,
			    params, query_done, r);
}

/* ---- query string ------------------------------------------------------ */

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
	char *first;      /* "query parameter status must be …" */
	int cursor_only;  /* the only problem is the cursor */
};

static void qproblems_free(struct api_qproblems *q)
{
	if (!q)
		return;
	api_problems_free(&q->p);
	buf_free(&q->names);
	free(q->first);
	free(q);
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
	buf_free(&m);
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

int api_query_int(struct api_req *r, const char *name, long long min, long long max,
		  long long def, long long *out)
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
		api_page_free(pg);
		return -1;
	}
	return 0;
}

void api_page_free(struct api_page *pg)
{
	free(pg->after_ts);
	free(pg->after_id);
	pg->after_ts = pg->after_id = NULL;
}

/* ---- the pipeline ------------------------------------------------------ */

static int is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1))
		return 0;
	char next = ct[sizeof(want) - 1];
	return next == '\0' || next == ';' || next == ' ';
}

/* "line L, column C: …" → numbers (0 when absent). */
static void json_err_pos(const char *msg, long *line, long *col)
{
	*line = *col = 0;
	const char *l = strstr(msg, "line ");
	const char *c = strstr(msg, "column ");
	if (l)
		*line = strtol(l + 5, NULL, 10);
	if (c)
		*col = strtol(c + 7, NULL, 10);
}

struct json *api_parse_json(struct api_req *r, const char *text, size_t len)
{
	static const struct json_limits lim = {.max_depth = API_JSON_MAX_DEPTH,
					       .max_members = API_JSON_MAX_MEMBERS,
					       .max_items = API_JSON_MAX_ITEMS};
	struct err e;
	int over = 0;
	struct json *doc = json_parse_limited(text, len, &lim, &over, &e);
	if (doc)
		return doc;
	long line, col;
	json_err_pos(e.msg, &line, &col);
	char *msg = over ? xasprintf("request body is over a limit: %s (limits: %d members per "
				     "object, %d items per array, nesting %d deep)",
				     e.msg, API_JSON_MAX_MEMBERS, API_JSON_MAX_ITEMS,
				     API_JSON_MAX_DEPTH)
			 : xasprintf("request body is not valid JSON: %s", e.msg);
	struct buf d;
	buf_init(&d);
	buf_printf(&d, "[{\"field\":\"body\",\"message\":");
	json_write_string(&d, e.msg);
	buf_printf(&d, ",\"line\":%ld,\"column\":%ld}]", line, col);
	api_reply_error(r, over ? 413 : 400, over ? "json_limit_exceeded" : "malformed_json", msg,
			buf_cstr(&d));
	buf_free(&d);
	free(msg);
	return NULL;
}

static int read_body(struct api_req *r)
{
	struct evhttp_request *req = r->c->req;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	size_t max = r->ep->max_body ? r->ep->max_body : (size_t)r->app->cfg->max_body_bytes;
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (n > max) {
		char *msg = xasprintf("request body is larger than %zu bytes", max);
		api_reply_error(r, 413, "body_too_large", msg, NULL);
		free(msg);
		return -1;
	}
	if ((ct || n) && !is_json_type(ct)) {
		api_reply_error(r, 415, "unsupported_media_type",
				"the request body must be JSON (Content-Type: application/json)",
				NULL);
		return -1;
	}
	if (n == 0) {
		api_reply_error(r, 400, "empty_body", "a JSON object is required as the body",
				NULL);
		return -1;
	}
	const char *text = (const char *)evbuffer_pullup(in, -1);
	struct json *doc = api_parse_json(r, text, n); /* NULL: replied, r is gone */
	if (!doc)
		return -1;
	r->body = doc;
	struct api_problems p;
	api_problems_init(&p);
	if (api_validate(r->body, r->ep->body, NULL, &p)) {
		api_reply_problems(r, &p);
		return -1;
	}
	api_problems_free(&p);
	return 0;
}

static int check_query(struct api_req *r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->c->req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	r->query = xcalloc(1, sizeof(*r->query));
	TAILQ_INIT(r->query);
	if (q && evhttp_parse_query_str(q, r->query)) {
		api_reply_error(r, 400, "invalid_query", "the query string is malformed", NULL);
		return -1;
	}
	struct api_problems p;
	api_problems_init(&p);
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, r->query, next)
	{
		const char *const *ok = r->ep->query;
		while (ok && *ok && strcmp(*ok, kv->key))
			ok++;
		if (!ok || !*ok)
			api_problem(&p, kv->key, "unknown query parameter");
	}
	if (p.n) {
		char *details = api_problems_json(&p);
		api_reply_error(r, 400, "unknown_parameter",
				"the query string has parameters this endpoint does not accept",
				details);
		free(details);
		api_problems_free(&p);
		return -1;
	}
	api_problems_free(&p);
	return 0;
}

static unsigned principal_bit(const struct principal *p)
{
	if (p->kind == PRINCIPAL_API_KEY)
		return API_ALLOW_API_KEY;
	switch (p->role) {
	case API_ROLE_ADMIN: return API_ALLOW_ADMIN;
	case API_ROLE_AGENCY_ADMIN: return API_ALLOW_AGENCY_ADMIN;
	case API_ROLE_SUPPORT: return API_ALLOW_SUPPORT;
	default: return 0;
	}
}

/* Everything after authentication. */
static void proceed(struct api_req *r)
{
	const struct api_endpoint *ep = r->ep;
	if (!(ep->allow & API_ALLOW_PUBLIC)) {
		if (ep->agency_scoped &&
		    (!api_is_uuid(api_param(r, 0)) || !api_agency_in_scope(&r->who, api_param(r, 0)))) {
			api_reply_not_found(r, "agency");
			return;
		}
		if (!(ep->allow & principal_bit(&r->who))) {
			api_reply_error(r, 403, "forbidden",
					"your role may not do this (see the access table in "
					"docs/openapi.yaml)",
					NULL);
			return;
		}
	}
	if (!ep->raw_params)
		for (int i = 0; i < r->c->nparams; i++)
			if (!api_is_uuid(r->c->params[i])) {
				api_reply_error(r, 404, "not_found", "no such object (ids are UUIDs)",
						NULL);
				return;
			}
	if (check_query(r))
		return;
	if (ep->body && read_body(r))
		return;
	r->fn(r);
}

static void reply_unauthenticated(struct api_req *r, const char *msg)
{
	api_add_header(r, "WWW-Authenticate", "Bearer realm=\"ghl-agent\"");
	api_reply_error(r, 401, "unauthenticated", msg, NULL);
}

static int is_safe_method(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

static const char session_sql[] =
	"WITH s AS (SELECT id, user_id, csrf_token_hash, last_seen_at FROM sessions"
	"  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()),"
	" t AS (UPDATE sessions SET last_seen_at = now() FROM s WHERE sessions.id = s.id"
	"  AND s.last_seen_at < now() - interval '60 seconds')"
	" SELECT s.id, u.id, u.role::text, u.email, s.csrf_token_hash,"
	"  COALESCE((SELECT string_agg(ua.agency_id::text, ',') FROM user_agencies ua"
	"   JOIN agencies a ON a.id = ua.agency_id AND a.deleted_at IS NULL"
	"   WHERE ua.user_id = u.id), '')"
	" FROM s JOIN users u ON u.id = s.user_id";

static const char api_key_sql[] =
	"WITH k AS (SELECT k.id, k.agency_id, k.last_used_at FROM api_keys k"
	"  JOIN agencies a ON a.id = k.agency_id AND a.deleted_at IS NULL"
	"  WHERE k.key_hash = $1 AND k.revoked_at IS NULL),"
	" t AS (UPDATE api_keys SET last_used_at = now() FROM k WHERE api_keys.id = k.id"
	"  AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds'))"
	" SELECT id, agency_id FROM k";

static void session_found(void *arg, PGresult *res, const char *errmsg)
{
	struct api_req *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("session lookup failed", "request_id", r->c->request_id, "error",
			 res ? PQresultErrorMessage(res) : errmsg, NULL);
		reply_db_unavailable(r, "cannot check credentials right now; try again shortly");
		return;
	}
	if (PQntuples(res) != 1) {
		reply_unauthenticated(r, "the session is invalid, expired or logged out; log in "
					 "again");
		return;
	}
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_SESSION;
	snprintf(p->session_id, sizeof(p->session_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(p->user_id, sizeof(p->user_id), "%s", PQgetvalue(res, 0, 1));
	p->role = api_role_parse(PQgetvalue(res, 0, 2));
	p->email = xstrdup(PQgetvalue(res, 0, 3));
	if (p->role == API_ROLE_AGENCY_ADMIN) {
		const char *s = PQgetvalue(res, 0, 5);
		while (*s) {
			const char *comma = strchr(s, ',');
			size_t n = comma ? (size_t)(comma - s) : strlen(s);
			principal_add_agency(p, s, n);
			s += n + (comma ? 1 : 0);
		}
	}
	if (p->via_cookie && !is_safe_method(r->c->method)) {
		const char *tok = evhttp_find_header(evhttp_request_get_input_headers(r->c->req),
						     "X-CSRF-Token");
		char h[65];
		if (!tok || (auth_secret_hash(tok, h), !crypto_str_eq_ct(h, PQgetvalue(res, 0, 4)))) {
			api_reply_error(r, 403, "csrf_failed",
					"a cookie session needs the X-CSRF-Token header with the "
					"csrf_token from login",
					NULL);
			return;
		}
	}
	proceed(r);
}

/* ---- API key cache ------------------------------------------------------ */

/* A small direct-mapped cache of valid API keys (by the SHA-256 of the key),
 * so machine submissions skip the lookup round trip. An entry lives
 * API_KEY_CACHE_TTL_MS; revoking a key or deleting an agency through this
 * process clears the cache at once (api_key_cache_clear), other processes
 * notice within the TTL. Only hits are cached: an unknown key always asks
 * the database. */
#define API_KEY_CACHE_SLOTS 256

struct key_entry {
	char hash[65];
	char key_id[API_UUID_LEN];
	char agency_id[API_UUID_LEN];
	int64_t expires_ms;
};

struct api_key_cache {
	struct key_entry slot[API_KEY_CACHE_SLOTS];
};

static struct key_entry *key_slot(struct api_state *st, const char *hash)
{
	if (!st || !st->key_cache)
		return NULL;
	unsigned long i = strtoul((char[]){hash[0], hash[1], hash[2], hash[3], 0}, NULL, 16);
	return &st->key_cache->slot[i % API_KEY_CACHE_SLOTS];
}

void api_key_cache_clear(struct app *app)
{
	struct api_state *st = app->api;
	if (st && st->key_cache)
		memset(st->key_cache, 0, sizeof(*st->key_cache));
}

/* Fills r->who from the cache: 1 on a hit. */
static int key_cached(struct api_req *r, const char *hash)
{
	struct key_entry *k = key_slot(r->app->api, hash);
	if (!k || strcmp(k->hash, hash) || k->expires_ms <= now_monotonic_ms())
		return 0;
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_API_KEY;
	snprintf(p->api_key_id, sizeof(p->api_key_id), "%s", k->key_id);
	principal_add_agency(p, k->agency_id, strlen(k->agency_id));
	return 1;
}

static void key_remember(struct api_req *r, const char *hash)
{
	struct key_entry *k = key_slot(r->app->api, hash);
	if (!k)
		return;
	snprintf(k->hash, sizeof(k->hash), "%s", hash);
	snprintf(k->key_id, sizeof(k->key_id), "%s", r->who.api_key_id);
	snprintf(k->agency_id, sizeof(k->agency_id), "%s", r->who.agency_ids[0]);
	k->expires_ms = now_monotonic_ms() + API_KEY_CACHE_TTL_MS;
}

static void api_key_found(void *arg, PGresult *res, const char *errmsg)
{
	struct api_req *r = arg;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("api key lookup failed", "request_id", r->c->request_id, "error",
			 res ? PQresultErrorMessage(res) : errmsg, NULL);
		reply_db_unavailable(r, "cannot check credentials right now; try again shortly");
		return;
	}
	if (PQntuples(res) != 1) {
		reply_unauthenticated(r, "the API key is invalid or revoked");
		return;
	}
	struct principal *p = &r->who;
	p->kind = PRINCIPAL_API_KEY;
	snprintf(p->api_key_id, sizeof(p->api_key_id), "%s", PQgetvalue(res, 0, 0));
	const char *agency = PQgetvalue(res, 0, 1);
	principal_add_agency(p, agency, strlen(agency));
	key_remember(r, r->key_hash);
	proceed(r);
}

char *api_cookie_value(const char *header, const char *name)
{
	size_t nl = strlen(name);
	const char *p = header;
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nl && !strncmp(p, name, nl) && p[nl] == '=')
			return xstrndup(p + nl + 1, len - nl - 1);
		p = end;
	}
	return NULL;
}

void api_handle(struct http_ctx *c, const struct api_endpoint *ep, api_handler_fn fn)
{
	struct api_req *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->app = c->app;
	r->ep = ep;
	r->fn = fn;
	if (ep->allow & API_ALLOW_PUBLIC) {
		proceed(r);
		return;
	}
	struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
	const char *authz = evhttp_find_header(in, "Authorization");
	char *token = NULL;
	if (authz) {
		if (strncasecmp(authz, "Bearer ", 7) || !authz[7]) {
			reply_unauthenticated(r, "the Authorization header must be \"Bearer "
						 "<token or API key>\"");
			return;
		}
		token = xstrdup(authz + 7);
	} else {
		const char *cookies = evhttp_find_header(in, "Cookie");
		token = cookies ? api_cookie_value(cookies, SESSION_COOKIE) : NULL;
		r->who.via_cookie = token != NULL;
	}
	if (!token || !*token || strlen(token) > 256) {
		free(token);
		reply_unauthenticated(r, "authentication required: log in (POST /api/v1/auth/login) "
					 "or send Authorization: Bearer <token or API key>");
		return;
	}
	char hash[65];
	auth_secret_hash(token, hash);
	const char *params[] = {hash};
	int is_key = auth_is_api_key(token);
	crypto_wipe(token, strlen(token));
	free(token);
	if (is_key && !r->who.via_cookie) {
		if (key_cached(r, hash)) {
			proceed(r);
			return;
		}
		snprintf(r->key_hash, sizeof(r->key_hash), "%s", hash);
		db_pool_query_flags(r->app->db, DB_REPLAY, api_key_sql, 1, params, api_key_found,
				    r);
	} else {
		db_pool_query_flags(r->app->db, DB_REPLAY, session_sql, 1, params, session_found,
				    r);
	}
}

/* ---- module state ------------------------------------------------------ */

int api_settings_accept_objects(void *arg, const struct json *settings,
				struct api_problems *out)
{
	(void)arg;
	if (!settings || settings->type != JSON_OBJECT) {
		api_problem(out, "settings", "expected an object, got %s",
			    settings ? json_type_name(settings->type) : "nothing");
		return -1;
	}
	return 0;
}

#define THROTTLE_MAX_KEYS 100000

int api_start(struct app *app, struct err *e)
{
	struct api_state *s = xcalloc(1, sizeof(*s));
	s->pool = auth_pool_new(app->base, (int)app->cfg->auth_workers, e);
	if (!s->pool) {
		free(s);
		return -1;
	}
	s->throttle_account = throttle_new(THROTTLE_MAX_KEYS);
	s->throttle_address = throttle_new(THROTTLE_MAX_KEYS);
	s->validate_settings = api_settings_accept_objects;
	s->key_cache = xcalloc(1, sizeof(*s->key_cache));
	app->api = s;
	return 0;
}

void api_stop(struct app *app)
{
	struct api_state *s = app->api;
	if (!s)
		return;
	auth_pool_free(s->pool);
	throttle_free(s->throttle_account);
	throttle_free(s->throttle_address);
	free(s->key_cache);
	free(s);
	app->api = NULL;
}
