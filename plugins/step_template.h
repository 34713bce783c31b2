/* step_template.h — the "{{ path }}" templates of the built-in steps
 * (SET_CUSTOM_VALUES' values, TASK's title and checklist), for plugins that
 * include only ghl_step.h of the agent. Header-only: each plugin passes its
 * host table.
 *
 * "{{ a.b[0] }}" is replaced by the value at that path: keys joined by '.',
 * array indexes in brackets. A path starting with "client." reads the
 * client's data, "outputs." the outputs of earlier steps; any other path is
 * the client's data (SET_CUSTOM_VALUES' "{{city}}"). A string is put as it
 * is, null and absent as "", anything else as its JSON. */
#ifndef GHL_STEP_TEMPLATE_H
#define GHL_STEP_TEMPLATE_H

#include <string.h>

#include "ghl_step.h"

#define STEP_TEMPLATE_MAX 8192 /* bytes of expanded text; the rest is left as it is */
#define STEP_TEMPLATE_MAX_KEYS 16

/* The text of src's value at path (see above). */
__attribute__((unused)) static const char *step_text_at(const struct ghl_host_api *h,
							ghl_step_ctx *ctx, const char *src,
							const char *const *path)
{
	switch (h->get_type(ctx, src, path)) {
	case GHL_TYPE_STRING: return h->get_string(ctx, src, path);
	case GHL_TYPE_ABSENT:
	case GHL_TYPE_NULL: return "";
	default: return h->get_json(ctx, src, path);
	}
}

/* The value named by a template's "a.b[0]" (len bytes at p). */
__attribute__((unused)) static const char *step_template_value(const struct ghl_host_api *h,
							       ghl_step_ctx *ctx, const char *p,
							       size_t len)
{
	const char *keys[STEP_TEMPLATE_MAX_KEYS + 1];
	size_t n = 0;
	const char *end = p + len;
	const char *src = GHL_SRC_CLIENT;
	if (len > 7 && !strncmp(p, "client.", 7)) {
		p += 7;
	} else if (len > 8 && !strncmp(p, "outputs.", 8)) {
		src = GHL_SRC_OUTPUTS;
		p += 8;
	}
	while (p < end && n < STEP_TEMPLATE_MAX_KEYS) {
		size_t k = strcspn(p, ".[]");
		if (p + k > end)
			k = (size_t)(end - p);
		if (k)
			keys[n++] = h->format(ctx, "%.*s", (int)k, p);
		p += k + (p + k < end);
	}
	keys[n] = NULL;
	return n ? step_text_at(h, ctx, src, keys) : "";
}

/* tmpl with each "{{ path }}" replaced (in the host's per-call arena). */
__attribute__((unused)) static const char *step_template_expand(const struct ghl_host_api *h,
								ghl_step_ctx *ctx, const char *tmpl)
{
	const char *out = "";
	const char *p = tmpl;
	const char *open;
	while ((open = strstr(p, "{{")) != NULL) {
		const char *close = strstr(open + 2, "}}");
		if (!close)
			break;
		const char *k = open + 2, *e = close;
		while (k < e && *k == ' ')
			k++;
		while (e > k && e[-1] == ' ')
			e--;
		const char *v = step_template_value(h, ctx, k, (size_t)(e - k));
		out = h->format(ctx, "%s%.*s%s", out, (int)(open - p), p, v);
		p = close + 2;
		if (strlen(out) > STEP_TEMPLATE_MAX)
			break;
	}
	return h->format(ctx, "%s%s", out, p);
}

#endif
