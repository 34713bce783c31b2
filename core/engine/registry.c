/* registry.c — step registry and the C plugin loader (see registry.h). */
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "schema.h"

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
	free(impl);
}

void step_registry_free(struct step_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		step_impl_unref(r->steps[i]);
	free(r->steps);
	for (size_t i = 0; i < r->nrefusals; i++) {
		free(r->refusals[i].source);
		free(r->refusals[i].reason);
	}
	free(r->refusals);
	/* Plugins stay mapped: runs elsewhere may still point into them until
	 * exit, and unloading code that is running would be fatal. */
	free(r->handles);
	free(r);
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
	buf_free(&b);
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

/* ---- C plugins ---------------------------------------------------------- */

static int c_run(struct step_impl *impl, ghl_step_ctx *ctx, int compensate)
{
	if (compensate)
		return impl->cdef->compensate ? impl->cdef->compensate(ctx) : GHL_STEP_DONE;
	return impl->cdef->run(ctx);
}

static const struct step_ops c_ops = {c_run, NULL, NULL};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Check one plugin's descriptor; register its steps. */
static size_t load_plugin(struct step_registry *r, const char *path,
			  const struct ghl_host_api *host)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		step_registry_refuse(r, path, "not a loadable shared object: %s", dlerror());
		return 0;
	}
	ghl_plugin_entry_fn entry;
	*(void **)(&entry) = dlsym(h, GHL_PLUGIN_ENTRY);
	if (!entry) {
		step_registry_refuse(r, path, "missing entry point %s()", GHL_PLUGIN_ENTRY);
		dlclose(h);
		return 0;
	}
	const struct ghl_plugin *p = entry();
	if (!p) {
		step_registry_refuse(r, path, "%s() returned NULL", GHL_PLUGIN_ENTRY);
		dlclose(h);
		return 0;
	}
	if (p->abi_major != GHL_STEP_ABI_MAJOR) {
		step_registry_refuse(r, path, "ABI major version %u, the agent speaks %u: rebuild "
					     "the plugin against this agent's ghl_step.h",
				     p->abi_major, GHL_STEP_ABI_MAJOR);
		dlclose(h);
		return 0;
	}
	if (p->abi_minor > GHL_STEP_ABI_MINOR) {
		step_registry_refuse(r, path, "ABI minor version %u is newer than the agent's %u: "
					     "upgrade the agent or rebuild the plugin",
				     p->abi_minor, GHL_STEP_ABI_MINOR);
		dlclose(h);
		return 0;
	}
	if (p->plugin_size != sizeof(struct ghl_plugin) ||
	    p->step_def_size != sizeof(struct ghl_step_def)) {
		step_registry_refuse(r, path, "struct sizes differ from the agent's (plugin %u/%u, "
					     "agent %zu/%zu): rebuild against this ghl_step.h",
				     p->plugin_size, p->step_def_size, sizeof(struct ghl_plugin),
				     sizeof(struct ghl_step_def));
		dlclose(h);
		return 0;
	}
	if (!p->steps || p->nsteps == 0) {
		step_registry_refuse(r, path, "registers no steps");
		dlclose(h);
		return 0;
	}
	/* Check every step before registering any: all or nothing. */
	struct json **schemas = xcalloc(p->nsteps, sizeof(*schemas));
	size_t ok = 0;
	for (size_t i = 0; i < p->nsteps; i++) {
		const struct ghl_step_def *d = &p->steps[i];
		struct err e;
		if (!d->name || !*d->name || !d->run) {
			step_registry_refuse(r, path, "step %zu has no name or no run()", i);
			goto out_refused;
		}
		if (step_registry_find(r, d->name)) {
			step_registry_refuse(r, path, "duplicate step name \"%s\": already registered "
						     "by %s", d->name,
					     step_registry_find(r, d->name)->source);
			goto out_refused;
		}
		if (d->config_schema) {
			schemas[i] = json_parse(d->config_schema, strlen(d->config_schema), 32, &e);
			if (!schemas[i] || schema_check(schemas[i], &e)) {
				step_registry_refuse(r, path, "step %s: bad config schema: %s", d->name,
						     e.msg);
				goto out_refused;
			}
		}
	}
	if (p->init) {
		char msg[256] = "";
		if (p->init(host, msg, sizeof(msg)) != 0) {
			step_registry_refuse(r, path, "init() failed: %s", msg[0] ? msg : "no reason given");
			goto out_refused;
		}
	}
	for (size_t i = 0; i < p->nsteps; i++) {
		const struct ghl_step_def *d = &p->steps[i];
		struct step_impl *impl = xcalloc(1, sizeof(*impl));
		impl->name = xstrdup(d->name);
		impl->version = xstrdup(d->version ? d->version : "0");
		impl->description = xstrdup(d->description ? d->description : "");
		impl->source = xstrdup(path);
		impl->schema = schemas[i];
		impl->kind = STEP_KIND_C;
		impl->ops = &c_ops;
		impl->cdef = d;
		impl->has_compensate = d->compensate != NULL;
		impl->refs = 1;
		struct err e;
		if (step_registry_add(r, impl, &e) == 0)
			ok++;
	}
	free(schemas);
	r->handles = xrealloc(r->handles, (r->nhandles + 1) * sizeof(void *));
	r->handles[r->nhandles++] = h;
	log_info("plugin loaded", "file", path, "plugin", p->name ? p->name : "?", NULL);
	return ok;
out_refused:
	for (size_t i = 0; i < p->nsteps; i++)
		json_free(schemas[i]);
	free(schemas);
	dlclose(h);
	return 0;
}

size_t step_registry_load_plugins(struct step_registry *r, const char *dir,
				  const struct ghl_host_api *host)
{
	DIR *d = opendir(dir);
	if (!d) {
		step_registry_refuse(r, dir, "cannot open plugin_dir: %m");
		return 0;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > 3 && !strcmp(de->d_name + l - 3, ".so")) {
			names = xrealloc(names, (n + 1) * sizeof(char *));
			names[n++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), cmp_str);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		total += load_plugin(r, path, host);
		free(path);
		free(names[i]);
	}
	free(names);
	return total;
}
