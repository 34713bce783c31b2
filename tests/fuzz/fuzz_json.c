/* fuzz_json.c — libFuzzer target for core/base/json.c.
 *
 * Invariants: parsing never crashes or leaks; whatever parses, serialises to
 * text that parses again to an equal tree; a clone is equal and serialises
 * identically.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	struct json *v, *w, *c;
	char *s, *s2;

	v = json_parse((const char *)data, size, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!v)
		return 0;
	s = json_to_string(v);
	w = json_parse(s, strlen(s), JSON_DEFAULT_MAX_DEPTH, &e);
	if (!w || !json_equal(v, w) || !json_equal(w, v))
		abort();
	c = json_clone(v);
	s2 = json_to_string(c);
	if (!json_equal(v, c) || strcmp(s, s2) != 0)
		abort();
	free(s);
	free(s2);
	json_free(c);
	json_free(w);
	json_free(v);
	return 0;
}
