/* request_log.c — see request_log.h. */
#include "request_log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "json.h"
#include "util.h"

int request_log_secret_name(const char *k)
{
	static const char *const parts[] = {
		"token",   "password",	    "passwd",	  "secret",	 "apikey",    "api_key",
		"api-key", "authorization", "credential", "private_key", "signature", NULL};
	char low[128];
	size_t n = 0;
	for (; k[n] && n < sizeof(low) - 1; n++)
		low[n] = (char)tolower((unsigned char)k[n]);
	low[n] = '\0';
	for (const char *const *p = parts; *p; p++)
		if (strstr(low, *p))
			return 1;
	/* "key", "client_key", "secretKey"… but not "keyword" */
	return n >= 3 && !strcmp(low + n - 3, "key");
}

void request_log_mask(struct json *v)
{
	if (!v)
		return;
	if (v->type == JSON_ARRAY) {
		for (size_t i = 0; i < v->u.arr.n; i++)
			request_log_mask(v->u.arr.items[i]);
		return;
	}
	if (v->type != JSON_OBJECT)
		return;
	for (size_t i = 0; i < v->u.obj.n; i++) {
		if (request_log_secret_name(v->u.obj.keys[i]) &&
		    v->u.obj.vals[i]->type != JSON_NULL) {
			json_free(v->u.obj.vals[i]);
			v->u.obj.vals[i] = json_new_string(REQUEST_LOG_MASK);
		} else {
			request_log_mask(v->u.obj.vals[i]);
		}
	}
}

/* text cut to the cap on a UTF-8 boundary, with a note of the full size */
static void put_capped(struct jw *w, const char *text)
{
	size_t n = strlen(text);
	if (n <= REQUEST_LOG_BODY_CAP) {
		jw_string(w, text);
		return;
	}
	size_t cut = REQUEST_LOG_BODY_CAP;
	while (cut && ((unsigned char)text[cut] & 0xC0) == 0x80)
		cut--;
	struct buf b;
	buf_init(&b);
	buf_append(&b, text, cut);
	buf_printf(&b, "… (cut: %zu bytes in all)", n);
	jw_string(w, buf_cstr(&b));
	buf_clear(&b);
}

static void put_body(struct jw *w, const struct json *body)
{
	if (!body) {
		jw_null(w);
		return;
	}
	struct json *copy = json_clone(body);
	request_log_mask(copy);
	char *text = json_to_string(copy);
	put_capped(w, text);
	free(text);
	json_free(copy);
}

/* path?query with the values of secret parameters masked */
static char *masked_path(const char *path, const char *query)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, path ? path : "");
	if (query && *query) {
		buf_putc(&b, '?');
		const char *p = query;
		while (*p) {
			size_t len = strcspn(p, "&");
			const char *eq = memchr(p, '=', len);
			size_t name_len = eq ? (size_t)(eq - p) : len;
			char *name = xstrndup(p, name_len);
			if (eq && request_log_secret_name(name)) {
				buf_append(&b, p, name_len + 1);
				buf_puts(&b, REQUEST_LOG_MASK);
			} else {
				buf_append(&b, p, len);
			}
			free(name);
			p += len;
			if (*p)
				buf_putc(&b, *p++);
		}
	}
	return buf_take(&b);
}

char *request_log_record_json(const struct request_record *r)
{
	struct buf b;
	buf_init(&b);
	struct jw w;
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "job_id");
	jw_string(&w, r->job_id);
	jw_key(&w, "step_index");
	jw_int(&w, r->step_index);
	jw_key(&w, "attempt");
	jw_int(&w, r->attempt);
	jw_key(&w, "compensate");
	jw_bool(&w, r->compensate);
	jw_key(&w, "method");
	jw_string(&w, r->method ? r->method : "?");
	char *path = masked_path(r->path, r->query);
	jw_key(&w, "path");
	put_capped(&w, path);
	free(path);
	jw_key(&w, "status");
	jw_int(&w, r->status);
	jw_key(&w, "duration_ms");
	jw_int(&w, r->duration_ms);
	jw_key(&w, "trace_id");
	jw_string(&w, r->trace_id);
	jw_key(&w, "error");
	if (r->error)
		put_capped(&w, r->error);
	else
		jw_null(&w);
	jw_key(&w, "request_body");
	struct json *req = NULL;
	if (r->request_body) {
		struct err e;
		req = json_parse(r->request_body, strlen(r->request_body), JSON_DEFAULT_MAX_DEPTH,
				 &e);
		if (!req) { /* not JSON: nothing of it is kept, it could be anything */
			char note[64];
			snprintf(note, sizeof(note), "(not JSON: %zu bytes)",
				 strlen(r->request_body));
			jw_string(&w, note);
		}
	}
	if (req || !r->request_body)
		put_body(&w, req);
	json_free(req);
	jw_key(&w, "response_body");
	put_body(&w, r->response_body);
	jw_object_end(&w);
	return buf_take(&b);
}

void request_log_write(struct journal *j, const struct request_record *r)
{
	if (!j)
		return;
	char *rec = request_log_record_json(r);
	journal_request(j, r->job_id, rec);
	free(rec);
}
