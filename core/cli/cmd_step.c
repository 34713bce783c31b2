/* cmd_step.c — `ghl-agent step run` (see cmd_step.h). */
#include "cmd_step.h"

#include <event2/event.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "ghl_side.h"
#include "json.h"
#include "pipeline.h"
#include "registry.h"
#include "runner.h"
#include "step_loader.h"

struct step_result {
	int done, ok;
	struct event_base *base;
};

static void print_log(const char *log_json)
{
	struct json *log = json_parse(log_json, strlen(log_json), JSON_DEFAULT_MAX_DEPTH, NULL);
	printf("log:%s\n", json_len(log) ? "" : " (empty)");
	for (size_t i = 0; i < json_len(log); i++)
		printf("  %-5s %s\n", json_get_str(json_at(log, i), "level"),
		       json_get_str(json_at(log, i), "message"));
	json_free(log);
}

static void on_done(void *arg, const char *status, const char *outputs, const char *log,
		    const char *error)
{
	struct step_result *res = arg;
	res->done = 1;
	res->ok = !strcmp(status, "COMPLETED");
	printf("status: %s\n", status);
	if (error)
		printf("error: %s\n", error);
	printf("outputs: %s\n", outputs ? outputs : "{}");
	print_log(log ? log : "[]");
	event_base_loopbreak(res->base);
}

/* agencies.id and ghl_agency_id of `agency`, or of the oldest connected one. */
static int find_agency(const struct config *cfg, const char *agency, char **id, char **company,
		       struct err *e)
{
	PGconn *conn = db_connect(cfg->database_url, e);
	if (!conn)
		return -1;
	const char
		*sql = agency ? "SELECT id::text, ghl_agency_id FROM agencies WHERE id = $1::uuid"
			      : "SELECT id::text, ghl_agency_id FROM agencies WHERE deleted_at IS "
				"NULL AND NOT needs_reconnect ORDER BY created_at LIMIT 1";
	const char *params[] = {agency};
	PGresult *r = PQexecParams(conn, sql, agency ? 1 : 0, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		db_result_error(r, sql, e);
	else if (PQntuples(r) == 0)
		err_set(e,
			agency ? "agency not found (%s)"
			       : "no connected agency%s; connect one "
				 "through /oauth/connect or pass --agency ID",
			agency ? agency : "");
	else {
		*id = xstrdup(PQgetvalue(r, 0, 0));
		*company = xstrdup(PQgetvalue(r, 0, 1));
		rc = 0;
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static struct json *parse_arg(const char *what, const char *text, struct err *e)
{
	struct json *j = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, e);
	if (!j)
		err_prefix(e, "%s: ", what);
	return j;
}

/* The step's config checked exactly as a pipeline's (pipeline_validate: the
 * step's config_schema), each problem printed with its --config path. */
static int check_config(struct step_impl *impl, const struct json *config)
{
	struct step_registry *r = step_registry_new();
	struct err e;
	if (step_registry_add(r, step_impl_ref(impl), &e)) { /* an empty registry: cannot fail */
		fprintf(stderr, "ghl-agent step run: %s\n", e.msg);
		step_registry_free(r);
		return -1;
	}
	struct json *settings = json_new_object(), *steps = json_new_array(),
		    *item = json_new_object(), *problems = json_new_array();
	json_object_set_take(item, "step", json_new_string(impl->name));
	json_object_set_take(item, "config", json_clone(config));
	json_array_push_take(steps, item);
	json_object_set_take(settings, "pipeline", steps);
	size_t n = pipeline_validate(r, settings, problems);
	if (n)
		fprintf(stderr,
			"ghl-agent step run: --config does not fit the config_schema of %s:\n",
			impl->name);
	static const char prefix[] = "pipeline[0].config";
	for (size_t i = 0; i < n; i++) {
		const char *f = json_get_str(json_at(problems, i), "field");
		if (f && !strncmp(f, prefix, sizeof(prefix) - 1))
			f += sizeof(prefix) - 1;
		fprintf(stderr, "  --config%s: %s\n", f ? f : "",
			json_get_str(json_at(problems, i), "message"));
	}
	json_free(problems);
	json_free(settings);
	step_registry_free(r);
	return n ? -1 : 0;
}

/* The client-data fields the step declares it needs (client_fields) are in
 * client, as a job submission requires; each missing one printed. */
static int check_client_fields(const struct step_impl *impl, const struct json *client)
{
	size_t missing = 0;
	for (size_t i = 0; i < impl->nclient_fields; i++) {
		const struct json *v = json_get(client, impl->client_fields[i]);
		if (v && v->type != JSON_NULL)
			continue;
		if (!missing++)
			fprintf(stderr,
				"ghl-agent step run: --client-json lacks what %s needs (a job "
				"without it is refused at submission):\n",
				impl->name);
		fprintf(stderr, "  client_data.%s: required by step %s\n", impl->client_fields[i],
			impl->name);
	}
	return missing ? -1 : 0;
}

static int step_run(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{"client-json", required_argument, NULL, 'c'},
		{"config", required_argument, NULL, 'j'},
		{"config-json", required_argument, NULL, 'j'},
		{"outputs", required_argument, NULL, 'o'},
		{"agency", required_argument, NULL, 'a'},
		{"step", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *client_file = NULL, *config_text = "{}", *outputs_text = "{}", *agency = NULL;
	const char *step = NULL;
	int ch;
	optind = 0; /* full re-initialisation: main parsed with "+" */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': client_file = optarg; break;
		case 'j': config_text = optarg; break;
		case 'o': outputs_text = optarg; break;
		case 'a': agency = optarg; break;
		case 's': step = optarg; break;
		default: return 2; /* getopt named the option */
		}
	}
	if (!client_file || optind != argc - 1) {
		fprintf(stderr, "ghl-agent step run: %s\n",
			optind < argc - 1 ? "one script FILE at most"
					  : "FILE and --client-json are required");
		return 2;
	}
	if (agency && !api_is_uuid(agency)) {
		fprintf(stderr,
			"ghl-agent step run: --agency \"%s\" is not an agency id (a UUID "
			"like f47ac10b-58cc-4372-a567-0e02b2c3d479)\n",
			agency);
		return 2;
	}
	const char *file = argv[optind];
	struct err e;
	int rc = 2;
	char *text = NULL, *agency_id = NULL, *company = NULL;
	size_t len;
	struct json *client = NULL, *config = NULL, *outputs = NULL;
	struct step_impl *impl = NULL;
	struct app app;
	memset(&app, 0, sizeof(app));
	if (file_read_all(!strcmp(client_file, "-") ? "/dev/stdin" : client_file, &text, &len, &e))
		goto out_usage;
	if (!(client = json_parse(text, len, JSON_DEFAULT_MAX_DEPTH, &e))) {
		err_prefix(&e, "%s: ", client_file);
		goto out_usage;
	}
	if (!(config = parse_arg("--config", config_text, &e)) ||
	    !(outputs = parse_arg("--outputs", outputs_text, &e)))
		goto out_usage;
	if (config->type != JSON_OBJECT || outputs->type != JSON_OBJECT) {
		err_set(&e, "%s must be a JSON object",
			config->type != JSON_OBJECT ? "--config" : "--outputs");
		goto out_usage;
	}
	rc = 1;
	impl = step_loader_load_file(file, step, cfg, &e);
	if (!impl)
		goto out_err;
	if (check_config(impl, config) || check_client_fields(impl, client)) {
		rc = 2;
		goto out;
	}
	if (find_agency(cfg, agency, &agency_id, &company, &e))
		goto out_err;
	app.cfg = cfg;
	app.base = event_base_new();
	app.db = db_pool_new(app.base, cfg->database_url, 2, cfg->db_reconnect_max_ms);
	if (ghl_setup(&app, &e))
		goto out_err;
	/* tokens come from the database: wait for the pool (serve's readyz does too) */
	int64_t deadline = now_monotonic_ms() + 10000;
	while (!db_pool_is_up(app.db) && now_monotonic_ms() < deadline) {
		event_base_loop(app.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(2000);
	}
	if (!db_pool_is_up(app.db)) {
		err_set(&e, "database not reachable: %s", db_pool_reason(app.db));
		goto out_err;
	}
	struct step_result res = {.base = app.base};
	printf("step: %s %s (%s), agency %s\n", impl->name, impl->version, file, agency_id);
	fflush(stdout);
	runner_run_once(&app, impl, agency_id, company, NULL, client, config, outputs, on_done,
			&res);
	if (!res.done)
		event_base_dispatch(app.base);
	rc = res.ok ? 0 : 1;
	goto out;
out_usage:
	fprintf(stderr, "ghl-agent step run: %s\n", e.msg);
	goto out;
out_err:
	fprintf(stderr, "ghl-agent step run: %s\n", e.msg);
out:
	if (app.base) {
		ghl_teardown(&app);
		db_pool_free(app.db);
		event_base_free(app.base);
	}
	step_impl_unref(impl);
	json_free(client);
	json_free(config);
	json_free(outputs);
	free(text);
	free(agency_id);
	free(company);
	return rc;
}

int cmd_step(struct config *cfg, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return step_run(cfg, argc - 1, argv + 1);
	fprintf(stderr, "ghl-agent step: expected run%s%s%s\n", argc >= 2 ? ", got \"" : "",
		argc >= 2 ? argv[1] : "", argc >= 2 ? "\"" : "");
	return 2;
}
