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
 * how many. Keys other than pipeline/max_retries/max_concurrent_jobs are the
 * agency's own business and left alone. */
size_t pipeline_validate(const struct step_registry *r, const struct json *settings,
			 struct json *problems);

/* Same, with a one-line summary of the first problem in e (for logs and
 * the CLI): `pipeline[3].step: unknown step "CREATE_LOCATON" (known steps: …)`. */
int pipeline_check(const struct step_registry *r, const struct json *settings, struct err *e);

/* The pipeline array a new job runs: settings.pipeline when present, else
 * the default's. Returns a new array (caller frees) or NULL. */
struct json *pipeline_effective(const struct json *agency_settings,
				const struct json *default_settings);

#endif
