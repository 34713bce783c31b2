/* pipeline.h — per-agency pipelines: parse and validate
 * {"pipeline":[{"step":"X","config":{…},"on_error":"fail"|"continue",
 *   "when":"client.plan == 'pro'"}…],
 *  "max_retries":N,"max_concurrent_jobs":N} from agencies.settings_json or
 * the `default_pipeline` config key, against the registered steps and each
 * step's config schema. */
#ifndef GHL_PIPELINE_H
#define GHL_PIPELINE_H

#include <stddef.h>

#include "util.h"

struct json;
struct step_registry;

/* Validate settings (an object; NULL counts as {}): appends
 * {"field":"pipeline[2].config.role","message":"…"} problems and returns
 * how many. Keys other than pipeline, max_retries, max_concurrent_jobs and
 * on_failure are refused, each by name. */
size_t pipeline_validate(const struct step_registry *r, const struct json *settings,
			 struct json *problems);

/* Same, with a one-line summary of the first problem in e (for logs and
 * the CLI): `pipeline[3].step: unknown step "CREATE_LOCATON" (known steps: …)`,
 * `pipeline[3].when: expected a value at column 12` (predicate.h). */
int pipeline_check(const struct step_registry *r, const struct json *settings, struct err *e);

/* The client-data fields a pipeline (an array of steps) needs: the union
 * of its steps' client_fields, skipping steps with on_error "continue" (they
 * may fail without failing the job), in order of first need; a step with a
 * `when` counts (whether it will run is known only at run time):
 * [{"field":"first_name","steps":["CREATE_USER"]}, …]. Unknown steps add
 * nothing. Returns a new array (caller frees). */
struct json *pipeline_client_fields(const struct step_registry *r, const struct json *pipeline);

/* The same for an agency: its settings_json (text or NULL), else the
 * default_pipeline (text). */
struct json *pipeline_agency_client_fields(const struct step_registry *r, const char *settings_text,
					   const char *default_text);

/* Append a problem {"field":"<prefix>first_name","message":"required by step
 * CREATE_USER of the agency's pipeline<suffix>"} for every field of needs
 * (pipeline_client_fields' answer) that client lacks (absent or null), unless
 * problems already names that field. prefix is e.g. "client_data." or
 * "rows[3].client_data."; suffix NULL or e.g. " (line 4)". Returns how many. */
size_t pipeline_missing_client_fields(const struct json *needs, const struct json *client,
				      const char *prefix, const char *suffix,
				      struct json *problems);

/* Secrets in settings are write-only. A key of a step's config (at any
 * depth) is secret when it is named secret, password, token or api_key, or
 * ends in _secret, _password or _token; reads show PIPELINE_MASK instead. */
#define PIPELINE_MASK "********"

/* Replace every secret's value in settings (an object or NULL) by PIPELINE_MASK. */
void pipeline_mask_secrets(struct json *settings);

/* Settings being saved may carry PIPELINE_MASK where a read showed one: each
 * becomes the value stored at the same key of the stored step at the same
 * index with the same name, else of the only stored step of that name. A mask
 * with nothing to keep adds a problem ("pipeline[1].config.secret"). Returns
 * the number of problems added. */
size_t pipeline_keep_secrets(struct json *settings, const struct json *stored,
			     struct json *problems);

/* The pipeline array a new job runs: settings.pipeline when present, else
 * the default's. Returns a new array (caller frees) or NULL. */
struct json *pipeline_effective(const struct json *agency_settings,
				const struct json *default_settings);

#endif
