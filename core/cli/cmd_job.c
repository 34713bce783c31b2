/* cmd_job.c — job submission/inspection and plugin listing from the CLI. */
#include "cmd_job.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "db.h"
#include "job_submit.h"
#include "json.h"
#include "paths.h"
#include "registry.h"
#include "step_loader.h"

static int job_submit(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{"agency", required_argument, NULL, 'a'},
		{"client-json", required_argument, NULL, 'c'},
		{"snapshot", required_argument, NULL, 's'},
		{"idempotency-key", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	const char *agency = NULL, *file = NULL, *snapshot = NULL, *key = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': agency = optarg; break;
		case 'c': file = optarg; break;
		case 's': snapshot = optarg; break;
		case 'k': key = optarg; break;
		default: return 2; /* getopt named the option */
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ghl-agent job submit: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (!agency || !file) {
		fprintf(stderr, "ghl-agent job submit: --agency and --client-json are required\n");
		return 2;
	}
	if (!api_is_uuid(agency) || (snapshot && !api_is_uuid(snapshot))) {
		fprintf(stderr,
			"ghl-agent job submit: --%s \"%s\" is not an id (a UUID like "
			"f47ac10b-58cc-4372-a567-0e02b2c3d479)\n",
			api_is_uuid(agency) ? "snapshot" : "agency",
			api_is_uuid(agency) ? snapshot : agency);
		return 2;
	}
	struct err e;
	char *text;
	size_t len;
	if (file_read_all(!strcmp(file, "-") ? "/dev/stdin" : file, &text, &len, &e)) {
		fprintf(stderr, "ghl-agent job submit: %s\n", e.msg);
		return 2;
	}
	struct json *client = json_parse(text, len, JSON_DEFAULT_MAX_DEPTH, &e);
	free(text);
	if (!client) {
		fprintf(stderr, "ghl-agent job submit: %s: %s\n", file, e.msg);
		return 2;
	}
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent job submit: %s\n", e.msg);
		json_free(client);
		return 1;
	}
	struct json *problems = json_new_array();
	char *id = NULL;
	struct step_registry *steps = step_registry_new(); /* what the pipeline's steps need */
	step_loader_load_all(steps, cfg);
	enum job_submit_status st = jobs_submit_blocking(conn, steps, cfg->default_pipeline, agency,
							 client, snapshot, key, &id, problems, &e);
	step_registry_free(steps);
	int rc = 0;
	switch (st) {
	case JOB_CREATED:
	case JOB_EXISTING: printf("%s\n", id); break;
	case JOB_CONFLICT: /* the API's 409 idempotency_conflict */
		fprintf(stderr,
			"ghl-agent job submit: this Idempotency-Key was used with another "
			"request body (job %s); use a new key for a new job\n",
			id);
		rc = 1;
		break;
	case JOB_INVALID: /* the API's 404 for the agency, else its 422 */
		if (json_len(problems) == 1 &&
		    str_eq(json_get_str(json_at(problems, 0), "field"), "agency_id")) {
			fprintf(stderr, "ghl-agent job submit: agency not found\n");
		} else {
			fprintf(stderr,
				"ghl-agent job submit: the request has %zu invalid field%s:\n",
				json_len(problems), json_len(problems) > 1 ? "s" : "");
			for (size_t i = 0; i < json_len(problems); i++)
				fprintf(stderr, "  %s: %s\n",
					json_get_str(json_at(problems, i), "field"),
					json_get_str(json_at(problems, i), "message"));
		}
		rc = 1;
		break;
	case JOB_ERROR:
		fprintf(stderr, "ghl-agent job submit: %s\n", e.msg);
		rc = 1;
		break;
	}
	free(id);
	json_free(problems);
	json_free(client);
	PQfinish(conn);
	return rc;
}

/* The job id argument of show and cancel: 0, or 2 after saying what is wrong. */
static int check_job_id(const char *verb, const char *id)
{
	if (api_is_uuid(id))
		return 0;
	fprintf(stderr,
		"ghl-agent job %s: \"%s\" is not a job id (a UUID like "
		"5c1f0a4e-9b2d-4e8f-a1c3-7d6e5f4a3b2c)\n",
		verb, id);
	return 2;
}

static int job_show(struct config *cfg, const char *id)
{
	if (check_job_id("show", id))
		return 2;
	struct err e;
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent job show: %s\n", e.msg);
		return 1;
	}
	const char *params[1] = {id};
	PGresult *r = db_query(
		conn,
		"SELECT id, agency_id, status || CASE WHEN cancel_requested AND status"
		" = 'IN_PROGRESS' THEN ' (cancel requested: stops after its current"
		" step)' ELSE '' END, COALESCE(snapshot_id::text, '-'),"
		" COALESCE(location_id, '-'), COALESCE(retry_count, 0), attempt,"
		" COALESCE(error_message, '-'), created_at, updated_at,"
		" COALESCE(started_at::text, '-'), COALESCE(finished_at::text, '-'),"
		" client_data_json::text FROM provisioning_jobs"
		" WHERE id = $1::uuid",
		1, params, &e);
	if (!r || PQntuples(r) == 0) {
		fprintf(stderr, "ghl-agent job show: %s\n", r ? "job not found" : e.msg);
		PQclear(r);
		PQfinish(conn);
		return 1;
	}
	static const char *const labels[] = {
		"id",	 "agency",  "status",  "snapshot", "location", "retries", "attempts",
		"error", "created", "updated", "started",  "finished", "client"};
	for (int c = 0; c < 13; c++)
		printf("%-9s %s\n", labels[c], PQgetvalue(r, 0, c));
	PQclear(r);
	r = db_query(conn,
		     "SELECT \"timestamp\", step, status, COALESCE(details_json::text, '')"
		     " FROM provisioning_logs WHERE job_id = $1::uuid"
		     " ORDER BY \"timestamp\", created_at",
		     1, params, &e);
	if (r) {
		printf("\njournal (%d entries):\n", PQntuples(r));
		for (int i = 0; i < PQntuples(r); i++)
			printf("  %s  %-20s %-9s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
			       PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
		PQclear(r);
	}
	PQfinish(conn);
	return 0;
}

static int job_cancel(struct config *cfg, const char *id)
{
	if (check_job_id("cancel", id))
		return 2;
	struct err e;
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent job cancel: %s\n", e.msg);
		return 1;
	}
	/* no user, no key: the audit row names the agent itself */
	const char *params[3] = {id, NULL, NULL};
	PGresult *r = db_query(conn, jobs_cancel_sql, 3, params, &e);
	int rc = 0;
	if (!r) {
		fprintf(stderr, "ghl-agent job cancel: %s\n", e.msg);
		rc = 1;
	} else if (PQntuples(r) == 0) {
		fprintf(stderr, "ghl-agent job cancel: job not found\n");
		rc = 1;
	} else if (!strcmp(PQgetvalue(r, 0, 1), "cancelled")) {
		printf("cancelled\n");
	} else if (!strcmp(PQgetvalue(r, 0, 1), "requested")) {
		printf("cancel requested: the job stops after its current step\n");
	} else { /* the API's 409 invalid_state, in its words */
		fprintf(stderr, "ghl-agent job cancel: the job is already %s\n",
			PQgetvalue(r, 0, 0));
		rc = 1;
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

int cmd_job(struct config *cfg, int argc, char **argv)
{
	const char *verb = argc >= 2 ? argv[1] : "";
	if (!strcmp(verb, "submit"))
		return job_submit(cfg, argc - 1, argv + 1);
	if (strcmp(verb, "show") && strcmp(verb, "cancel")) {
		fprintf(stderr, "ghl-agent job: expected submit, show or cancel%s%s%s\n",
			*verb ? ", got \"" : "", verb, *verb ? "\"" : "");
		return 2;
	}
	if (argc != 3) {
		fprintf(stderr, "ghl-agent job %s: expected one job id\n", verb);
		return 2;
	}
	return !strcmp(verb, "show") ? job_show(cfg, argv[2]) : job_cancel(cfg, argv[2]);
}

/* path relative to the current directory when it lies below it (as the
 * README shows it: steps/location_tag.lua), else as is. */
static const char *shown_path(const char *path, const char *cwd)
{
	size_t n = strlen(cwd);
	if (n > 1 && !strncmp(path, cwd, n) && path[n] == '/')
		return path + n + 1;
	return path;
}

int cmd_plugins(struct config *cfg, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "ghl-agent plugins: takes no arguments, got \"%s\"\n", argv[1]);
		return 2;
	}
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	struct step_registry *r = step_registry_new();
	step_loader_load_all(r, cfg);
	int wn = (int)strlen("STEP"), wv = (int)strlen("VERSION");
	for (size_t i = 0; i < r->n; i++) {
		int n = (int)strlen(r->steps[i]->name), v = (int)strlen(r->steps[i]->version);
		wn = n > wn ? n : wn;
		wv = v > wv ? v : wv;
	}
	printf("%-*s %-*s %-4s %s\n", wn, "STEP", wv, "VERSION", "KIND", "SOURCE");
	for (size_t i = 0; i < r->n; i++) {
		struct step_impl *s = r->steps[i];
		printf("%-*s %-*s %-4s %s\n", wn, s->name, wv, s->version,
		       s->kind == STEP_KIND_C ? "C" : "Lua", shown_path(s->source, cwd));
		if (s->description && *s->description)
			printf("%-*s %s%s\n", wn, "", s->description,
			       s->has_compensate ? " (can undo: rollback)" : "");
	}
	if (r->nrefusals) {
		printf("\nrefused:\n");
		for (size_t i = 0; i < r->nrefusals; i++)
			printf("  %s: %s\n", shown_path(r->refusals[i].source, cwd),
			       r->refusals[i].reason);
	}
	step_registry_free(r);
	return 0;
}
