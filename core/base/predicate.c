/* predicate.c — the `when` condition of a pipeline step: a one-pass recursive-descent
 * parser and evaluator over the text; see predicate.h. */
#include "predicate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_data.h"
#include "json.h"

#define NAME_MAX_LEN 64
#define NUMBER_MAX_LEN 63
#define STRINGIFY(x) #x
#define TEXT_OF(x) STRINGIFY(x)
#define DEPTH_TEXT TEXT_OF(PREDICATE_MAX_DEPTH) /* "32" */

enum tk { T_END, T_BAD, T_OPEN_STR, T_STR, T_NUM, T_NAME, T_LP, T_RP, T_LB, T_RB, T_COMMA, T_CMP };
enum cmp { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

struct tok {
	enum tk k;
	enum cmp op; /* T_CMP */
	size_t at, len;
};

enum vk { V_NULL, V_BOOL, V_NUM, V_STR, V_JSON /* an array or object a path led to */ };

struct val {
	enum vk k;
	int b;
	double n;
	const char *s;
	size_t slen;
	const struct json *j;
};

struct parser {
	const char *s;
	size_t len, pos;
	const struct predicate_roots *roots; /* NULL: check only, every path is null */
	int depth;
	struct err *e;
};

static int fail(struct parser *p, size_t at, const char *what)
{
	return err_setc(p->e, ERR_INVALID, "%s at column %zu", what, at + 1);
}

static int is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t digits(const struct parser *p, size_t i)
{
	while (i < p->len && is_digit(p->s[i]))
		i++;
	return i;
}

/* The token at p->pos (after skipping spaces, which moves p->pos); not taken. */
static void peek(struct parser *p, struct tok *t)
{
	while (p->pos < p->len && p->s[p->pos] && strchr(" \t\r\n", p->s[p->pos]))
		p->pos++;
	const char *s = p->s;
	size_t i = p->pos, n = p->len;
	t->at = i;
	t->len = 1;
	if (i >= n) {
		t->k = T_END;
		t->len = 0;
		return;
	}
	char c = s[i];
	static const char punct[] = "()[],";
	static const enum tk punct_k[] = {T_LP, T_RP, T_LB, T_RB, T_COMMA};
	const char *pc = c ? strchr(punct, c) : NULL;
	if (pc) {
		t->k = punct_k[pc - punct];
	} else if (c == '"' || c == '\'') {
		const char *end = memchr(s + i + 1, c, n - i - 1);
		t->k = end ? T_STR : T_OPEN_STR;
		t->len = end ? (size_t)(end - (s + i)) + 1 : n - i;
	} else if (is_digit(c) || (c == '-' && i + 1 < n && is_digit(s[i + 1]))) {
		size_t j = digits(p, i + (c == '-'));
		if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1]))
			j = digits(p, j + 1);
		if (j < n && (s[j] == 'e' || s[j] == 'E')) {
			size_t k = j + 1 + (j + 1 < n && (s[j + 1] == '+' || s[j + 1] == '-'));
			if (k < n && is_digit(s[k]))
				j = digits(p, k);
		}
		t->k = T_NUM;
		t->len = j - i;
	} else if (is_name_start(c)) {
		size_t j = i;
		while (j < n && is_name_char(s[j]))
			j++;
		t->k = T_NAME;
		t->len = j - i;
	} else if ((c == '=' || c == '!') && i + 1 < n && s[i + 1] == '=') {
		t->k = T_CMP;
		t->op = c == '=' ? C_EQ : C_NE;
		t->len = 2;
	} else if (c == '<' || c == '>') {
		int eq = i + 1 < n && s[i + 1] == '=';
		t->k = T_CMP;
		t->op = c == '<' ? (eq ? C_LE : C_LT) : (eq ? C_GE : C_GT);
		t->len = eq ? 2 : 1;
	} else {
		t->k = T_BAD;
	}
}

static int tok_is(const struct parser *p, const struct tok *t, const char *word)
{
	return t->k == T_NAME && t->len == strlen(word) && !memcmp(p->s + t->at, word, t->len);
}

static void take(struct parser *p, const struct tok *t)
{
	p->pos = t->at + t->len;
}

static struct val from_json(const struct json *j)
{
	struct val v = {.k = V_NULL};
	if (!j)
		return v;
	switch (j->type) {
	case JSON_NULL: break;
	case JSON_BOOL:
		v.k = V_BOOL;
		v.b = j->u.boolean;
		break;
	case JSON_NUMBER:
		v.k = V_NUM;
		v.n = j->u.num.d;
		break;
	case JSON_STRING:
		v.k = V_STR;
		v.s = j->u.str.s;
		v.slen = j->u.str.len;
		break;
	default: v.k = V_JSON; v.j = j;
	}
	return v;
}

static struct val boolean(int b)
{
	struct val v = {.k = V_BOOL, .b = b != 0};
	return v;
}

static int is_true(const struct val *v)
{
	return v->k == V_BOOL && v->b;
}

static int equal(const struct val *a, const struct val *b)
{
	if (a->k != b->k)
		return 0;
	switch (a->k) {
	case V_NULL: return 1;
	case V_BOOL: return a->b == b->b;
	case V_NUM: return a->n == b->n;
	case V_STR: return a->slen == b->slen && !memcmp(a->s, b->s, a->slen);
	default: return json_equal(a->j, b->j);
	}
}

static int compare(const struct val *a, const struct val *b, enum cmp op)
{
	if (op == C_EQ || op == C_NE)
		return equal(a, b) == (op == C_EQ);
	int c;
	if (a->k == V_NUM && b->k == V_NUM) {
		c = (a->n > b->n) - (a->n < b->n);
		if (c == 0 && a->n != b->n)
			return 0; /* NaN cannot come from JSON, but stay safe */
	} else if (a->k == V_STR && b->k == V_STR) {
		size_t m = a->slen < b->slen ? a->slen : b->slen;
		c = memcmp(a->s, b->s, m);
		if (c == 0)
			c = (a->slen > b->slen) - (a->slen < b->slen);
	} else {
		return 0;
	}
	switch (op) {
	case C_LT: return c < 0;
	case C_LE: return c <= 0;
	case C_GT: return c > 0;
	default: return c >= 0;
	}
}

/* The first name below client must be a client-data field (client_data.h),
 * below job one of the job document's keys (step_host.c's job_doc): a typo
 * would otherwise be a path that is always null. outputs are the steps'. */
static int known_field(struct parser *p, size_t root, const char *name, size_t at)
{
	static const char *const job_keys[] = {"id",	   "agency_id", "company_id",
					       "snapshot", "attempt",	"retry_count"};
	char what[256];
	if (root == 0) {
		if (client_data_field_known(name))
			return 0;
		snprintf(what, sizeof(what),
			 "unknown client field \"%s\" (client data has name, email, first_name, "
			 "last_name, phone, address, city, state, postal_code, country, website, "
			 "timezone, custom_values, tags, external_id)",
			 name);
		return fail(p, at, what);
	}
	for (size_t i = 0; i < sizeof(job_keys) / sizeof(job_keys[0]); i++)
		if (!strcmp(job_keys[i], name))
			return 0;
	snprintf(what, sizeof(what),
		 "unknown job field \"%s\" (job has id, agency_id, company_id, snapshot, "
		 "attempt, retry_count)",
		 name);
	return fail(p, at, what);
}

/* A path whose root name t was peeked: take it and its ".name" segments. */
static int path(struct parser *p, const struct tok *t, struct val *out)
{
	static const char *const roots[] = {"client", "outputs", "job"};
	size_t r = 0;
	while (r < 3 && !tok_is(p, t, roots[r]))
		r++;
	if (r == 3) {
		char what[128];
		snprintf(what, sizeof(what),
			 "unknown name \"%.*s\" (a path starts with client, outputs or job)",
			 (int)(t->len < 40 ? t->len : 40), p->s + t->at);
		return fail(p, t->at, what);
	}
	take(p, t);
	const struct json *cur = NULL;
	if (p->roots)
		cur = r == 0 ? p->roots->client : r == 1 ? p->roots->outputs : p->roots->job;
	for (int first = 1; p->pos < p->len && p->s[p->pos] == '.'; first = 0) {
		size_t at = ++p->pos, end = at;
		while (end < p->len && is_name_char(p->s[end]))
			end++;
		if (end == at)
			return fail(p, at, "expected a name after '.'");
		if (end - at > NAME_MAX_LEN)
			return fail(p, at, "a name longer than 64 characters");
		p->pos = end;
		char seg[NAME_MAX_LEN + 1];
		memcpy(seg, p->s + at, end - at);
		seg[end - at] = '\0';
		if (first && r != 1 && known_field(p, r, seg, at) < 0)
			return -1;
		if (cur && cur->type == JSON_OBJECT) {
			cur = json_get(cur, seg);
		} else if (cur && cur->type == JSON_ARRAY && digits(p, at) == end &&
			   end - at < 10) {
			cur = json_at(cur, (size_t)strtoul(seg, NULL, 10));
		} else {
			cur = NULL;
		}
	}
	*out = from_json(cur);
	return 0;
}

static int expr(struct parser *p, struct val *out);

/* Take the next token when it is a k; else fail with what. */
static int expect(struct parser *p, enum tk k, const char *what)
{
	struct tok t;
	peek(p, &t);
	if (t.k != k)
		return fail(p, t.at, what);
	take(p, &t);
	return 0;
}

/* A value: literal, path, exists(path) or a parenthesised expression. */
static int operand(struct parser *p, struct val *out)
{
	struct tok t;
	peek(p, &t);
	switch (t.k) {
	case T_STR:
		take(p, &t);
		out->k = V_STR;
		out->s = p->s + t.at + 1;
		out->slen = t.len - 2;
		return 0;
	case T_OPEN_STR: return fail(p, t.at, "unterminated string");
	case T_NUM: {
		if (t.len > NUMBER_MAX_LEN)
			return fail(p, t.at, "a number longer than 63 characters");
		char num[NUMBER_MAX_LEN + 1];
		memcpy(num, p->s + t.at, t.len);
		num[t.len] = '\0';
		double d = strtod(num, NULL);
		if (!isfinite(d))
			return fail(p, t.at, "a number out of range");
		take(p, &t);
		out->k = V_NUM;
		out->n = d;
		return 0;
	}
	case T_LP: take(p, &t); return expr(p, out) < 0 ? -1 : expect(p, T_RP, "expected ')'");
	case T_NAME:
		if (tok_is(p, &t, "true") || tok_is(p, &t, "false")) {
			take(p, &t);
			*out = boolean(tok_is(p, &t, "true"));
			return 0;
		}
		if (tok_is(p, &t, "null")) {
			take(p, &t);
			out->k = V_NULL;
			return 0;
		}
		if (tok_is(p, &t, "exists")) {
			take(p, &t);
			if (expect(p, T_LP, "expected '(' after exists") < 0)
				return -1;
			peek(p, &t);
			if (t.k != T_NAME)
				return fail(p, t.at, "expected a path inside exists()");
			struct val v;
			if (path(p, &t, &v) < 0)
				return -1;
			*out = boolean(v.k != V_NULL);
			return expect(p, T_RP, "expected ')'");
		}
		if (tok_is(p, &t, "and") || tok_is(p, &t, "or") || tok_is(p, &t, "not") ||
		    tok_is(p, &t, "in"))
			return fail(p, t.at, "expected a value");
		return path(p, &t, out);
	default: return fail(p, t.at, "expected a value");
	}
}

/* "in" was taken: is a among the list's values? */
static int in_list(struct parser *p, const struct val *a, struct val *out)
{
	struct tok t;
	peek(p, &t);
	int found = 0;
	if (t.k == T_NAME && !tok_is(p, &t, "exists")) {
		struct val list;
		if (path(p, &t, &list) < 0)
			return -1;
		const struct json *arr = list.k == V_JSON && list.j->type == JSON_ARRAY ? list.j
											: NULL;
		for (size_t i = 0; i < json_len(arr) && !found; i++) {
			struct val item = from_json(json_at(arr, i));
			found = equal(a, &item);
		}
		*out = boolean(found);
		return 0;
	}
	if (t.k != T_LB)
		return fail(p, t.at, "expected '[' or a path after in");
	take(p, &t);
	peek(p, &t);
	if (t.k == T_RB) {
		take(p, &t);
		*out = boolean(0);
		return 0;
	}
	for (;;) {
		struct val item;
		if (operand(p, &item) < 0)
			return -1;
		found |= equal(a, &item);
		peek(p, &t);
		if (t.k == T_RB)
			break;
		if (t.k != T_COMMA)
			return fail(p, t.at, "expected ',' or ']'");
		take(p, &t);
	}
	take(p, &t);
	*out = boolean(found);
	return 0;
}

static int comparison(struct parser *p, struct val *out)
{
	struct val a;
	if (operand(p, &a) < 0)
		return -1;
	struct tok t;
	peek(p, &t);
	if (t.k == T_CMP) {
		take(p, &t);
		struct val b;
		if (operand(p, &b) < 0)
			return -1;
		*out = boolean(compare(&a, &b, t.op));
		return 0;
	}
	if (tok_is(p, &t, "in")) {
		take(p, &t);
		return in_list(p, &a, out);
	}
	*out = a;
	return 0;
}

static int unary(struct parser *p, struct val *out)
{
	struct tok t;
	peek(p, &t);
	if (++p->depth > PREDICATE_MAX_DEPTH)
		return fail(p, t.at, "nested deeper than " DEPTH_TEXT);
	int rc;
	if (tok_is(p, &t, "not")) {
		take(p, &t);
		struct val v = {.k = V_NULL};
		rc = unary(p, &v);
		if (rc >= 0) /* v is unset when the operand did not parse */
			*out = boolean(!is_true(&v));
	} else {
		rc = comparison(p, out);
	}
	p->depth--;
	return rc;
}

/* The grammar's expr (level 0: and-terms joined by "or") and and (level 1:
 * unaries joined by "and"). */
static int logic(struct parser *p, struct val *out, int level)
{
	static const char *const ops[] = {"or", "and"};
	if ((level ? unary(p, out) : logic(p, out, 1)) < 0)
		return -1;
	struct tok t;
	for (peek(p, &t); tok_is(p, &t, ops[level]); peek(p, &t)) {
		take(p, &t);
		struct val b;
		if ((level ? unary(p, &b) : logic(p, &b, 1)) < 0)
			return -1;
		*out = boolean(level ? is_true(out) && is_true(&b) : is_true(out) || is_true(&b));
	}
	return 0;
}

static int expr(struct parser *p, struct val *out)
{
	return logic(p, out, 0);
}

int predicate_eval(const char *text, size_t len, const struct predicate_roots *roots, struct err *e)
{
	if (len > PREDICATE_MAX_LEN)
		return err_setc(e, ERR_INVALID, "longer than %d characters", PREDICATE_MAX_LEN);
	struct parser p = {.s = text ? text : "", .len = text ? len : 0, .roots = roots, .e = e};
	struct val v;
	if (expr(&p, &v) < 0)
		return ERR_INVALID;
	struct tok t;
	peek(&p, &t);
	if (t.k != T_END)
		return fail(&p, t.at, "expected and, or or the end");
	return is_true(&v);
}

int predicate_check(const char *text, size_t len, struct err *e)
{
	int rc = predicate_eval(text, len, NULL, e);
	return rc < 0 ? rc : 0;
}
