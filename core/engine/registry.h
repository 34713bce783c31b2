/* registry.h — the step registry: every step the agent can run, from C
 * plugins (plugin_loader.c) and Lua scripts (core/lua/lua_host.c), in one
 * namespace. A step implementation is reference-counted so a job in
 * flight keeps the version it started with across a reload. */
#ifndef GHL_REGISTRY_H
#define GHL_REGISTRY_H

#include <stddef.h>

#include "ghl_step.h"
#include "util.h"

struct json;
struct step_impl;

enum step_kind { STEP_KIND_C, STEP_KIND_LUA };

/* What a kind of step does; a run (step_host.c) calls these. */
struct step_ops {
	/* One call of the state machine (see ghl_step.h): GHL_STEP_DONE/WAIT/FAIL.
	 * With compensate set, it runs the step's compensate instead. */
	int (*run)(struct step_impl *impl, ghl_step_ctx *ctx, int compensate);
	/* Last reference gone: free kind-specific data. */
	void (*release)(struct step_impl *impl);
};

struct step_impl {
	char *name;
	char *version;
	char *description;
	char *source;	     /* plugin file or script path */
	struct json *schema; /* config schema; NULL = anything */
	enum step_kind kind;
	const struct step_ops *ops;
	const struct ghl_step_def *cdef; /* STEP_KIND_C */
	void *data;	    /* kind-specific (C: the code it lives in; Lua: the script) */
	int has_compensate; /* can undo itself (pipelines with rollback) */
	int refs;
	/* The client-data fields the step needs (its descriptor's client_fields:
	 * C ghl_step_def.client_fields, Lua `client_fields = {…}`); a job
	 * without one of them is refused at submission. */
	char **client_fields;
	size_t nclient_fields;
};

struct step_refusal {
	char *source;
	char *reason;
};

/* A plugin file as the loader last read it (plugin_loader.c): a reload
 * skips the files whose identity and modification time did not change. */
struct step_file {
	char *path;
	unsigned long long dev, ino, size;
	long long mtime_ns;
};

struct step_registry {
	struct step_impl **steps;
	size_t n, cap;
	struct step_refusal *refusals;
	size_t nrefusals;
	struct step_file *files;
	size_t nfiles;
};

struct step_registry *step_registry_new(void);
struct step_registry *step_registry_free(struct step_registry *r);

/* Register impl, taking over the caller's reference. A duplicate name is
 * refused with a message naming both sources; impl is then released. */
int step_registry_add(struct step_registry *r, struct step_impl *impl, struct err *e);

/* Replace a step of the same name (reload); the old one lives on while
 * runs hold references. Adds when absent. */
void step_registry_replace(struct step_registry *r, struct step_impl *impl);

void step_registry_refuse(struct step_registry *r, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct step_impl *step_registry_find(const struct step_registry *r, const char *name);

/* Names of every step, comma-separated, for "known steps: …" hints (malloc'd). */
char *step_registry_names(const struct step_registry *r);

/* Copy a NULL-terminated list of field names (NULL: none) into impl. */
void step_impl_set_client_fields(struct step_impl *impl, const char *const *fields);

struct step_impl *step_impl_ref(struct step_impl *impl);
void step_impl_unref(struct step_impl *impl);

#endif
