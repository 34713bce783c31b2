/* ensure.c — "these named things exist in the location", the engine of
 * CREATE_CUSTOM_FIELDS and CREATE_CALENDARS (struct gl_kind says what and
 * where). Find before create, by name (case-insensitive, as GHL compares
 * names): one GET lists what is there, then one POST per config item not
 * found; a 400 "already …" answer (a race, or an earlier attempt GHL had not
 * listed yet) lists again and takes the item found. So a retry after a crash
 * between a POST and the journal write reuses what the crashed attempt made.
 * Outputs: ids_out (name → id) and created_out (the names this run created);
 * compensate deletes only those, one DELETE per call, 404 counting as done. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "golive.h"

#define MAX_ITEMS 50

enum { PH_START = 0, PH_LISTED, PH_CREATED, PH_RELISTED };
enum { PH_UNDO_START = 0, PH_DELETED };

/* Per-run state: the id of each config item (NULL: not there yet), whether
 * this run created it, and the item being created. */
struct run {
	size_t n, cur;
	char *ids[MAX_ITEMS];
	int created[MAX_ITEMS];
};

static void run_free(void *p)
{
	struct run *r = p;
	for (size_t i = 0; r && i < r->n; i++)
		free(r->ids[i]);
	free(r);
}

const char *gl_item(ghl_step_ctx *ctx, const struct gl_kind *k, size_t i, const char *key)
{
	return gl_str(ctx, GHL_SRC_CONFIG, GHL_PATH(k->config_key, gl_ix(ctx, i), key));
}

static const char *name_key(const struct gl_kind *k)
{
	return k->name_key ? k->name_key : "name";
}

#define NAME(i) gl_item(ctx, k, (i), name_key(k))

static int list(ghl_step_ctx *ctx, const struct gl_kind *k, int phase)
{
	const char *query = k->list_query ? k->list_query(ctx) : NULL;
	host->log(ctx, GHL_LOG_INFO, "GET %s%s%s (what an earlier attempt made)", k->list_path(ctx),
		  query ? "?" : "", query ? query : "");
	return gl_send(ctx, phase, "GET", k->list_path(ctx), query, NULL, k->token);
}

/* Takes the ids of the items still missing from the listing in the response. */
static void match_listing(ghl_step_ctx *ctx, const struct gl_kind *k, struct run *r)
{
	size_t n = host->get_count(ctx, GHL_SRC_RESPONSE, GHL_PATH(k->list_key));
	for (size_t j = 0; j < n; j++) {
		const char *ix = gl_ix(ctx, j);
		const char *name = gl_str(ctx, GHL_SRC_RESPONSE,
					  GHL_PATH(k->list_key, ix, name_key(k)));
		const char *id = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH(k->list_key, ix, "id"));
		for (size_t i = 0; name && id && i < r->n; i++)
			if (!r->ids[i] && strcasecmp(NAME(i), name) == 0) {
				r->ids[i] = gl_dup(id);
				host->log(ctx, GHL_LOG_INFO, "%s \"%s\" exists: %s (reused)",
					  k->what, name, id);
			}
	}
}

static int finish(ghl_step_ctx *ctx, const struct gl_kind *k, struct run *r)
{
	ghl_json *ids = host->json_new(ctx);
	ghl_json *made = host->json_new(ctx);
	host->json_object(ids);
	host->json_array(made);
	for (size_t i = 0; i < r->n; i++) {
		host->json_key(ids, NAME(i));
		host->json_string(ids, r->ids[i]);
		if (r->created[i])
			host->json_string(made, NAME(i));
	}
	host->json_end(ids);
	host->json_end(made);
	const char *a = host->json_text(ids), *b = host->json_text(made);
	if (!a || !b)
		return host->fail(ctx, 0, "could not build the outputs (see the log)");
	host->set_output(ctx, k->ids_out, a);
	host->set_output(ctx, k->created_out, b);
	return GHL_STEP_DONE;
}

/* Creates the next item still missing, or finishes. */
static int next(ghl_step_ctx *ctx, const struct gl_kind *k, struct run *r)
{
	while (r->cur < r->n && r->ids[r->cur])
		r->cur++;
	if (r->cur == r->n)
		return finish(ctx, k, r);
	const char *body = k->body(ctx, r->cur);
	if (!body)
		return host->fail(ctx, 0, "could not build %s \"%s\" (see the log)", k->what,
				  NAME(r->cur));
	host->log(ctx, GHL_LOG_INFO, "POST %s \"%s\"", k->create_path(ctx), NAME(r->cur));
	return gl_send(ctx, PH_CREATED, "POST", k->create_path(ctx), NULL, body, k->token);
}

static int created(ghl_step_ctx *ctx, const struct gl_kind *k, struct run *r)
{
	if (!gl_ok(ctx, host->format(ctx, "POST %s", k->what))) {
		const char *msg = gl_message_has(ctx, 400, "already");
		if (msg) {
			host->log(ctx, GHL_LOG_INFO, "GHL: %s; listing again", msg);
			return list(ctx, k, PH_RELISTED);
		}
		return host->fail_from_response(
			ctx, host->format(ctx, "creating %s \"%s\"", k->what, NAME(r->cur)));
	}
	const char *id = gl_str(ctx, GHL_SRC_RESPONSE, GHL_PATH(k->created_key, "id"));
	if (!id)
		return host->fail(ctx, 1, "creating %s \"%s\": GHL answered without an id", k->what,
				  NAME(r->cur));
	r->ids[r->cur] = gl_dup(id);
	r->created[r->cur] = 1;
	return next(ctx, k, r);
}

/* Names present and distinct (the schema cannot say so). */
static int check_names(ghl_step_ctx *ctx, const struct gl_kind *k, struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (!NAME(i))
			return host->fail(ctx, 0, "config %s[%zu].%s is empty", k->config_key, i,
					  name_key(k));
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(NAME(i), NAME(j)) == 0)
				return host->fail(
					ctx, 0, "config %s[%zu].%s \"%s\" repeats %s[%zu]",
					k->config_key, i, name_key(k), NAME(i), k->config_key, j);
	}
	return 0;
}

static int start(ghl_step_ctx *ctx, const struct gl_kind *k)
{
	if (!GL_LOCATION_ID(ctx))
		return host->fail(ctx, 0, "no location_id: CREATE_LOCATION must run before %s",
				  k->step);
	size_t n = host->get_count(ctx, GHL_SRC_CONFIG, GHL_PATH(k->config_key));
	if (n == 0 || n > MAX_ITEMS)
		return host->fail(ctx, 0, "config %s must hold 1 to %d items", k->config_key,
				  MAX_ITEMS);
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		return host->fail(ctx, 1, "out of memory");
	host->set_state(ctx, r, run_free);
	r->n = n;
	if (check_names(ctx, k, r) != 0)
		return GHL_STEP_FAIL;
	if (k->check) {
		int rc = k->check(ctx);
		if (rc != GHL_STEP_DONE)
			return rc;
	}
	return list(ctx, k, PH_LISTED);
}

int gl_ensure_run(ghl_step_ctx *ctx, const struct gl_kind *k)
{
	struct run *r = host->state(ctx);
	switch (host->phase(ctx)) {
	case PH_LISTED:
	case PH_RELISTED:
		if (!gl_ok(ctx, host->format(ctx, "GET %s list", k->what)))
			return host->fail_from_response(ctx,
							host->format(ctx, "listing %ss", k->what));
		match_listing(ctx, k, r);
		if (host->phase(ctx) == PH_RELISTED && !r->ids[r->cur])
			return host->fail(ctx, 1, "GHL says %s \"%s\" exists but does not list it",
					  k->what, NAME(r->cur));
		return next(ctx, k, r);
	case PH_CREATED: return created(ctx, k, r);
	default: return start(ctx, k);
	}
}

int gl_ensure_compensate(ghl_step_ctx *ctx, const struct gl_kind *k)
{
	size_t *i = host->state_alloc(ctx, sizeof(*i));
	const char *made_key = k->created_out;
	const char *ids_key = k->ids_out;
	if (host->phase(ctx) == PH_DELETED) {
		int st = host->response_status(ctx);
		if (st != 200 && st != 404)
			return host->fail_from_response(
				ctx, host->format(ctx, "deleting a %s", k->what));
		(*i)++;
	}
	size_t n = host->get_count(ctx, GHL_SRC_OUTPUTS, GHL_PATH(made_key));
	for (; *i < n; (*i)++) {
		const char *name = gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH(made_key, gl_ix(ctx, *i)));
		const char *id = name ? gl_str(ctx, GHL_SRC_OUTPUTS, GHL_PATH(ids_key, name))
				      : NULL;
		if (!id)
			continue;
		host->log(ctx, GHL_LOG_INFO, "DELETE %s \"%s\" %s (rollback)", k->what, name, id);
		return gl_send(ctx, PH_DELETED, "DELETE", k->delete_path(ctx, id), NULL, NULL,
			       k->token);
	}
	if (host->get_count(ctx, GHL_SRC_OUTPUTS, GHL_PATH(ids_key)) > n)
		host->log(ctx, GHL_LOG_INFO, "kept the %ss this job found rather than made",
			  k->what);
	return GHL_STEP_DONE;
}
