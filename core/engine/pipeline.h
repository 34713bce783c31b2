/* pipeline.h — per-agency pipelines: parse and validate
 * {"pipeline":[{"step":"X","config":{…},"on_error":"fail"|"continue"}…],
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
 * the CLI): `pipeline[3].step: unknown step "CREATE_LOCATON" (known steps: …)`. */
int pipeline_check(const struct step_registry *r, const struct json *settings, struct err *e);

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
