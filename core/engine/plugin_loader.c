/* plugin_loader.c — C step plugins into the registry; see plugin_loader.h. */
#include "plugin_loader.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "registry.h"
#include "schema.h"

/* The smallest structs a plugin may be built with: ABI 1.0's. */
#define PLUGIN_SIZE_1_0 (offsetof(struct ghl_plugin, nsteps) + sizeof(size_t))
#define STEP_DEF_SIZE_1_0 (offsetof(struct ghl_step_def, compensate) + sizeof(void (*)(void)))
#define MAX_STEPS 256
#define MAX_CLIENT_FIELDS 32

/* A mapped plugin file, shared by the steps it registered. */
struct plugin_so {
	void *handle;
	int memfd; /* the private copy a reloaded version runs from, or -1 */
	int refs;  /* one per step_impl */
	char *path;
};

/* A C step's kind data: its definition as the agent's struct (members the
 * plugin's header lacked are zeros) and the code it lives in. */
struct c_step {
	struct ghl_step_def def;
	struct plugin_so *so; /* NULL: linked into the program */
};

/* One plugin being loaded, for refusals. */
struct load {
	struct step_registry *r;
	const char *source;
	int keeps_old; /* a reload while a version of source is registered */
	int from_file; /* a .so, which may override a step linked into the program */
};

static size_t refuse(const struct load *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static size_t refuse(const struct load *ld, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	step_registry_refuse(ld->r, ld->source, "%s%s", msg,
			     ld->keeps_old ? " (the running version stays)" : "");
	return 0;
}

static void so_unref(struct plugin_so *so)
{
	if (!so || --so->refs > 0)
		return;
	log_debug("plugin unloaded", "file", so->path, NULL);
	dlclose(so->handle);
	if (so->memfd >= 0)
		close(so->memfd);
	free(so->path);
	free(so);
}

static int c_run(struct step_impl *impl, ghl_step_ctx *ctx, int compensate)
{
	if (compensate)
		return impl->cdef->compensate ? impl->cdef->compensate(ctx) : GHL_STEP_DONE;
	return impl->cdef->run(ctx);
}

static void c_release(struct step_impl *impl)
{
	struct c_step *cs = impl->data;
	impl->data = NULL;
	impl->cdef = NULL;
	so_unref(cs->so);
	free(cs);
}

static const struct step_ops c_ops = {c_run, c_release};

/* A C step linked into the program (plugin_loader_add_static)? */
static int linked_in(const struct step_impl *impl)
{
	return impl->kind == STEP_KIND_C && impl->ops == &c_ops &&
	       ((const struct c_step *)impl->data)->so == NULL;
}

static int registered_from(const struct step_registry *r, const char *source)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->steps[i]->kind == STEP_KIND_C && !strcmp(r->steps[i]->source, source))
			return 1;
	return 0;
}

/* Are the descriptor's sizes ABI 1.0's or more and the agent's or less?
 * 0, or -1 refused. */
static int check_sizes(const struct load *ld, const struct ghl_plugin *p)
{
	if (p->plugin_size < PLUGIN_SIZE_1_0 || p->step_def_size < STEP_DEF_SIZE_1_0) {
		refuse(ld,
		       "struct sizes smaller than ABI 1.0's (plugin %u/%u, at least %zu/%zu): "
		       "not built against ghl_step.h",
		       p->plugin_size, p->step_def_size, PLUGIN_SIZE_1_0, STEP_DEF_SIZE_1_0);
		return -1;
	}
	if (p->plugin_size > sizeof(struct ghl_plugin) ||
	    p->step_def_size > sizeof(struct ghl_step_def)) {
		refuse(ld,
		       "struct sizes differ from the agent's (plugin %u/%u, agent %zu/%zu): "
		       "larger than this agent knows; rebuild against its ghl_step.h",
		       p->plugin_size, p->step_def_size, sizeof(struct ghl_plugin),
		       sizeof(struct ghl_step_def));
		return -1;
	}
	return 0;
}

/* Check every step of pc (defs: its steps as the agent's structs) before
 * registering any; schemas[i] gets each parsed config schema. 0 or refused. */
static int check_steps(const struct load *ld, const struct ghl_step_def *defs, size_t n,
		       struct json **schemas)
{
	for (size_t i = 0; i < n; i++) {
		const struct ghl_step_def *d = &defs[i];
		struct err e;
		if (!d->name || !*d->name || !d->run) {
			refuse(ld, "step %zu has no name or no run()", i);
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(defs[j].name, d->name)) {
				refuse(ld, "step name \"%s\" appears twice", d->name);
				return -1;
			}
		}
		const struct step_impl *old = step_registry_find(ld->r, d->name);
		if (old &&
		    !(ld->keeps_old && old->kind == STEP_KIND_C &&
		      !strcmp(old->source, ld->source)) &&
		    !(ld->from_file && linked_in(old))) {
			refuse(ld, "duplicate step name \"%s\": already registered by %s", d->name,
			       old->source);
			return -1;
		}
		for (size_t k = 0; d->client_fields && d->client_fields[k]; k++) {
			if (k >= MAX_CLIENT_FIELDS || !*d->client_fields[k]) {
				refuse(ld,
				       "step %s: client_fields holds an empty name or more than "
				       "%d names (is it NULL-terminated?)",
				       d->name, MAX_CLIENT_FIELDS);
				return -1;
			}
		}
		if (d->config_schema) {
			schemas[i] = json_parse(d->config_schema, strlen(d->config_schema),
						JSON_DEFAULT_MAX_DEPTH, &e);
			if (!schemas[i] || schema_check(schemas[i], &e)) {
				refuse(ld, "step %s: bad config schema: %s", d->name, e.msg);
				return -1;
			}
		}
	}
	return 0;
}

static void add_step(const struct load *ld, const struct ghl_step_def *d, struct json *schema,
		     struct plugin_so *so)
{
	struct c_step *cs = xcalloc(1, sizeof(*cs));
	cs->def = *d;
	cs->so = so;
	if (so)
		so->refs++;
	struct step_impl *impl = xcalloc(1, sizeof(*impl));
	impl->name = xstrdup(d->name);
	impl->version = xstrdup(d->version ? d->version : "0");
	impl->description = xstrdup(d->description ? d->description : "");
	impl->source = xstrdup(ld->source);
	impl->schema = schema;
	impl->kind = STEP_KIND_C;
	impl->ops = &c_ops;
	impl->data = cs;
	impl->cdef = &cs->def;
	impl->has_compensate = d->compensate != NULL;
	impl->refs = 1;
	step_impl_set_client_fields(impl, d->client_fields);
	const struct step_impl *old = step_registry_find(ld->r, d->name);
	if (old && linked_in(old) && so)
		log_info("plugin overrides a built-in step", "step", d->name, "file", ld->source,
			 "built_in", old->source, NULL);
	if (ld->keeps_old || old) { /* a reload, or a .so over a built-in (checked) */
		step_registry_replace(ld->r, impl);
	} else {
		struct err e;
		step_registry_add(ld->r, impl, &e); /* names were checked */
	}
}

/* Check the descriptor entry() returns and register its steps, each holding
 * a reference on so (NULL for a linked-in plugin). All or nothing. */
static size_t register_plugin(const struct load *ld, ghl_plugin_entry_fn entry, const char *sym,
			      struct plugin_so *so, const struct ghl_host_api *host)
{
	const struct ghl_plugin *p = entry();
	if (!p)
		return refuse(ld, "%s() returned NULL", sym);
	if (p->abi_major != GHL_STEP_ABI_MAJOR)
		return refuse(ld,
			      "ABI major version %u, the agent speaks %u: rebuild the plugin "
			      "against this agent's ghl_step.h",
			      p->abi_major, GHL_STEP_ABI_MAJOR);
	if (p->abi_minor > GHL_STEP_ABI_MINOR)
		return refuse(ld,
			      "ABI minor version %u is newer than the agent's %u: upgrade the "
			      "agent or rebuild the plugin",
			      p->abi_minor, GHL_STEP_ABI_MINOR);
	if (check_sizes(ld, p))
		return 0;
	/* the plugin's structs, grown to the agent's with zeros (nginx's padding idea) */
	struct ghl_plugin pc;
	memset(&pc, 0, sizeof(pc));
	memcpy(&pc, p, p->plugin_size);
	if (!pc.steps || pc.nsteps == 0)
		return refuse(ld, "registers no steps");
	if (pc.nsteps > MAX_STEPS)
		return refuse(ld, "registers %zu steps; at most %d", pc.nsteps, MAX_STEPS);
	struct ghl_step_def *defs = xcalloc(pc.nsteps, sizeof(*defs));
	for (size_t i = 0; i < pc.nsteps; i++)
		memcpy(&defs[i], (const char *)pc.steps + i * p->step_def_size, p->step_def_size);
	struct json **schemas = xcalloc(pc.nsteps, sizeof(*schemas));
	size_t ok = 0;
	if (check_steps(ld, defs, pc.nsteps, schemas))
		goto out_free_schemas;
	if (pc.init) {
		char msg[256] = "";
		if (pc.init(host, msg, sizeof(msg)) != 0) {
			refuse(ld, "init() failed: %s", msg[0] ? msg : "no reason given");
			goto out_free_schemas;
		}
	}
	for (size_t i = 0; i < pc.nsteps; i++) {
		add_step(ld, &defs[i], schemas[i], so);
		schemas[i] = NULL;
	}
	ok = pc.nsteps;
	log_info(ld->keeps_old ? "plugin reloaded" : "plugin loaded", "file", ld->source, "plugin",
		 pc.name ? pc.name : "?", "version", pc.version ? pc.version : "?", NULL);
out_free_schemas:
	for (size_t i = 0; i < pc.nsteps; i++)
		json_free(schemas[i]);
	free(schemas);
	free(defs);
	return ok;
}

/* ghl_plugin_entry_<stem> of path's file, else ghl_plugin_entry. *sym names
 * the one found (or the per-plugin one); the caller frees it. */
static ghl_plugin_entry_fn find_entry(void *h, const char *path, char **sym)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	*sym = xasprintf("%s_%.*s", GHL_PLUGIN_ENTRY, (int)strcspn(base, "."), base);
	for (char *c = *sym + strlen(GHL_PLUGIN_ENTRY); *c; c++)
		if (!isalnum((unsigned char)*c))
			*c = '_';
	ghl_plugin_entry_fn entry;
	*(void **)(&entry) = dlsym(h, *sym);
	if (!entry) {
		*(void **)(&entry) = dlsym(h, GHL_PLUGIN_ENTRY);
		if (entry) {
			free(*sym);
			*sym = xstrdup(GHL_PLUGIN_ENTRY);
		}
	}
	return entry;
}

/* dlopen a private copy of path: glibc hands back the mapped object for a
 * name it has loaded, and the running version must stay as it is. */
static void *open_copy(const char *path, int *memfd, struct err *e)
{
	*memfd = -1;
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		err_set(e, "cannot open: %m");
		return NULL;
	}
	int fd = memfd_create("ghl-plugin", MFD_CLOEXEC);
	if (fd < 0) {
		err_set(e, "memfd_create: %m");
		close(in);
		return NULL;
	}
	char chunk[65536];
	ssize_t n;
	while ((n = read(in, chunk, sizeof(chunk))) > 0)
		if (write(fd, chunk, (size_t)n) != n)
			n = -1;
	close(in);
	if (n < 0) {
		err_set(e, "copying the file: %m");
		close(fd);
		return NULL;
	}
	char name[64];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		err_set(e, "not a loadable shared object: %s", dlerror());
		close(fd);
		return NULL;
	}
	*memfd = fd; /* kept open while mapped: the name stays unique */
	return h;
}

/* Where reloads look: has path changed since it was last read? Records it. */
static int file_changed(struct step_registry *r, const char *path, const struct stat *st)
{
	struct step_file now = {NULL, (unsigned long long)st->st_dev,
				(unsigned long long)st->st_ino, (unsigned long long)st->st_size,
				(long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec};
	for (size_t i = 0; i < r->nfiles; i++) {
		struct step_file *f = &r->files[i];
		if (strcmp(f->path, path))
			continue;
		int changed = f->dev != now.dev || f->ino != now.ino || f->size != now.size ||
			      f->mtime_ns != now.mtime_ns;
		now.path = f->path;
		*f = now;
		return changed;
	}
	r->files = xrealloc(r->files, (r->nfiles + 1) * sizeof(*r->files));
	now.path = xstrdup(path);
	r->files[r->nfiles++] = now;
	return 1;
}

static size_t load_file(struct step_registry *r, const char *path, const struct ghl_host_api *host,
			int reload)
{
	struct load ld = {r, path, reload && registered_from(r, path), 1};
	struct stat st;
	if (stat(path, &st))
		return refuse(&ld, "cannot read: %m");
	if (!file_changed(r, path, &st) && reload)
		return 0;
	struct plugin_so *so = xcalloc(1, sizeof(*so));
	so->memfd = -1;
	so->path = xstrdup(path);
	so->refs = 1; /* ours until the steps hold it */
	struct err e;
	so->handle = ld.keeps_old ? open_copy(path, &so->memfd, &e)
				  : dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!so->handle) {
		if (!ld.keeps_old)
			err_set(&e, "not a loadable shared object: %s", dlerror());
		refuse(&ld, "%s", e.msg);
		free(so->path);
		free(so);
		return 0;
	}
	char *sym;
	ghl_plugin_entry_fn entry = find_entry(so->handle, path, &sym);
	size_t n = entry ? register_plugin(&ld, entry, sym, so, host)
			 : refuse(&ld, "missing entry point %s() (or %s())", GHL_PLUGIN_ENTRY, sym);
	free(sym);
	so_unref(so); /* unmapped here when nothing was registered */
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t load_dir(struct step_registry *r, const char *dir, const struct ghl_host_api *host,
		       int reload)
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
		total += load_file(r, path, host, reload);
		free(path);
		free(names[i]);
	}
	free(names);
	return total;
}

size_t plugin_loader_load_dir(struct step_registry *r, const char *dir,
			      const struct ghl_host_api *host)
{
	return load_dir(r, dir, host, 0);
}

size_t plugin_loader_reload_dir(struct step_registry *r, const char *dir,
				const struct ghl_host_api *host)
{
	return load_dir(r, dir, host, 1);
}

size_t plugin_loader_load_file(struct step_registry *r, const char *path,
			       const struct ghl_host_api *host)
{
	return load_file(r, path, host, 0);
}

size_t plugin_loader_add_static(struct step_registry *r, const char *source,
				ghl_plugin_entry_fn entry, const struct ghl_host_api *host)
{
	struct load ld = {r, source, 0, 0};
	return register_plugin(&ld, entry, "the entry", NULL, host);
}
