/* registry.c — the step registry (see registry.h). */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

struct step_registry *step_registry_new(void)
{
	return xcalloc(1, sizeof(struct step_registry));
}

struct step_impl *step_impl_ref(struct step_impl *impl)
{
	impl->refs++;
	return impl;
}

void step_impl_unref(struct step_impl *impl)
{
	if (!impl || --impl->refs > 0)
		return;
	if (impl->ops && impl->ops->release)
		impl->ops->release(impl);
	free(impl->name);
	free(impl->version);
	free(impl->description);
	free(impl->source);
	json_free(impl->schema);
	for (size_t i = 0; i < impl->nclient_fields; i++)
		free(impl->client_fields[i]);
	free(impl->client_fields);
	free(impl);
}

void step_impl_set_client_fields(struct step_impl *impl, const char *const *fields)
{
	size_t n = 0;
	while (fields && fields[n])
		n++;
	for (size_t i = 0; i < impl->nclient_fields; i++)
		free(impl->client_fields[i]);
	free(impl->client_fields);
	impl->client_fields = n ? xcalloc(n, sizeof(char *)) : NULL;
	for (size_t i = 0; i < n; i++)
		impl->client_fields[i] = xstrdup(fields[i]);
	impl->nclient_fields = n;
}

struct step_registry *step_registry_free(struct step_registry *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		step_impl_unref(r->steps[i]);
	free(r->steps);
	for (size_t i = 0; i < r->nrefusals; i++) {
		free(r->refusals[i].source);
		free(r->refusals[i].reason);
	}
	free(r->refusals);
	for (size_t i = 0; i < r->nfiles; i++)
		free(r->files[i].path);
	free(r->files);
	free(r);
	return NULL;
}

void step_registry_refuse(struct step_registry *r, const char *source, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r->refusals = xrealloc(r->refusals, (r->nrefusals + 1) * sizeof(*r->refusals));
	r->refusals[r->nrefusals].source = xstrdup(source);
	r->refusals[r->nrefusals].reason = xstrdup(buf_cstr(&b));
	r->nrefusals++;
	log_warn("step refused", "source", source, "reason", buf_cstr(&b), NULL);
	buf_clear(&b);
}

struct step_impl *step_registry_find(const struct step_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->steps[i]->name, name))
			return r->steps[i];
	return NULL;
}

int step_registry_add(struct step_registry *r, struct step_impl *impl, struct err *e)
{
	struct step_impl *old = step_registry_find(r, impl->name);
	if (old) {
		err_set(e, "duplicate step name \"%s\": already registered by %s", impl->name,
			old->source);
		step_impl_unref(impl);
		return -1;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->steps = xrealloc(r->steps, r->cap * sizeof(*r->steps));
	}
	r->steps[r->n++] = impl; /* the caller's reference becomes the registry's */
	return 0;
}

void step_registry_replace(struct step_registry *r, struct step_impl *impl)
{
	for (size_t i = 0; i < r->n; i++) {
		if (!strcmp(r->steps[i]->name, impl->name)) {
			step_impl_unref(r->steps[i]);
			r->steps[i] = impl;
			return;
		}
	}
	struct err e;
	step_registry_add(r, impl, &e);
}

char *step_registry_names(const struct step_registry *r)
{
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < r->n; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", r->steps[i]->name);
	return buf_take(&b);
}
