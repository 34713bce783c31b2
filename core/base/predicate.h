/* predicate.h — the `when` condition of a pipeline step: a small, safe
 * expression over the job's client data, the outputs of earlier steps and the
 * job, e.g. `client.country in ["US","CA"] and not exists(client.phone)`.
 *
 * Grammar (keywords lower case; whitespace between tokens is free):
 *   expr    := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | compare
 *   compare := operand [("=="|"!="|"<"|"<="|">"|">=") operand | "in" list]
 *   operand := literal | path | "exists" "(" path ")" | "(" expr ")"
 *   list    := "[" [operand ("," operand)*] "]" | path (an array)
 *   literal := "text" | 'text' (no escapes) | number | true | false | null
 *   path    := root ("." name)*   root: client | outputs | job;
 *              name: [A-Za-z_][A-Za-z0-9_]* or digits (an array index);
 *              the first name below client is a client-data field
 *              (client_data.h; e.g. client.custom_values.plan), below job
 *              one of id, agency_id, company_id, snapshot, attempt, retry_count
 * A path that leads nowhere is null; exists(p) is true when p holds a value
 * other than null. == and != compare kind and value (no conversions: 1 is
 * not "1"); < <= > >= compare two numbers or two strings (bytewise) and are
 * false for anything else. A condition (the whole expression, an operand of
 * and/or/not) is true only when it is the boolean true.
 *
 * The text is at most PREDICATE_MAX_LEN bytes and nests at most
 * PREDICATE_MAX_DEPTH deep. Parsing and evaluation are one pass over the
 * text: no allocation, no state kept, so a predicate is checked at save time
 * and evaluated from the same text at run time. Fuzzed (tests/fuzz). */
#ifndef GHL_PREDICATE_H
#define GHL_PREDICATE_H

#include <stddef.h>

#include "util.h"

struct json;

#define PREDICATE_MAX_LEN 1000
#define PREDICATE_MAX_DEPTH 32

/* What the paths' roots stand for; any may be NULL (its paths are null). */
struct predicate_roots {
	const struct json *client;
	const struct json *outputs;
	const struct json *job;
};

/* Check text[0..len) without evaluating it. 0, or ERR_INVALID with e->msg
 * like "expected a value at column 12" (columns count bytes from 1). */
int predicate_check(const char *text, size_t len, struct err *e);

/* Evaluate text[0..len) against roots: 1 (true), 0 (false), or ERR_INVALID
 * with e->msg as predicate_check's. */
int predicate_eval(const char *text, size_t len, const struct predicate_roots *roots,
		   struct err *e);

#endif
