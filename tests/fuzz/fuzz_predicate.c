/* fuzz_predicate.c — libFuzzer target for core/base/predicate.c (a pipeline
 * step's `when`).
 *
 * Invariants: checking and evaluating never crash, leak or read outside the
 * text; the answer is 1, 0 or ERR_INVALID, and the same text is refused by the
 * check exactly when evaluation refuses it, with the same message; a refusal
 * names a column inside the text (or just after it), or the length limit;
 * evaluating twice gives the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "predicate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char roots_text[] =
	"{\"client\":{\"name\":\"Acme\",\"plan\":\"pro\",\"country\":\"US\",\"phone\":null,"
	"\"seats\":5,\"tags\":[\"a\",1,true,null,{\"x\":[1]}],\"address\":{\"city\":\"Austin\"}},"
	"\"outputs\":{\"user_reused\":false,\"location_id\":\"loc_1\"},"
	"\"job\":{\"id\":\"j1\",\"attempt\":1,\"snapshot\":null}}";

static void check_msg(const struct err *e, size_t size)
{
	const char *at = strstr(e->msg, " at column ");
	if (!at) {
		if (strcmp(e->msg, "longer than 1000 characters") || size <= PREDICATE_MAX_LEN)
			abort();
		return;
	}
	long col = strtol(at + strlen(" at column "), NULL, 10);
	if (col < 1 || (size_t)col > size + 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct json *all = json_parse(roots_text, strlen(roots_text), JSON_DEFAULT_MAX_DEPTH, NULL);
	struct predicate_roots roots = {json_get(all, "client"), json_get(all, "outputs"),
					json_get(all, "job")};
	struct err ce = {0}, ee = {0};
	int c = predicate_check(text, size, &ce);
	int v = predicate_eval(text, size, &roots, &ee);
	int v2 = predicate_eval(text, size, &roots, NULL);
	if (c != 0 && c != ERR_INVALID)
		abort();
	if (v != 0 && v != 1 && v != ERR_INVALID)
		abort();
	if (v != v2 || (c == ERR_INVALID) != (v == ERR_INVALID))
		abort();
	if (c == ERR_INVALID) {
		if (strcmp(ce.msg, ee.msg) || ce.code != ERR_INVALID)
			abort();
		check_msg(&ce, size);
	}
	json_free(all);
	return 0;
}
