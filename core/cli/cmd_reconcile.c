/* cmd_reconcile.c — see cmd_reconcile.h. */
#include "cmd_reconcile.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "ghl_side.h"
#include "json.h"
#include "log.h"
#include "reconcile.h"

struct outcome {
	struct event_base *base;
	struct reconcile_report rep;
	char *error;
	int done;
};

static void on_done(void *arg, const struct reconcile_report *r, const char *error)
{
	struct outcome *o = arg;
	o->rep = *r;
	o->error = error ? xstrdup(error) : NULL;
	o->done = 1;
	event_base_loopbreak(o->base);
}

/* The sweep on a loop of its own: pool, GHL client and agency tokens. */
static int sweep(struct config *cfg, const char *agency, struct outcome *o)
{
	struct app app;
	struct err e;
	memset(&app, 0, sizeof(app));
	app.cfg = cfg;
	app.base = event_base_new();
	o->base = app.base;
	app.db = db_pool_new(app.base, cfg->database_url, 2, cfg->db_reconnect_max_ms);
	db_pool_set_wait(app.db, cfg->db_wait_timeout_ms, (int)cfg->db_wait_queue);
	int rc = 0;
	struct reconciler *r = NULL;
	if (ghl_setup(&app, &e)) {
		o->error = xstrdup(e.msg);
		rc = -1;
	} else {
		r = reconciler_new(&app);
		struct reconcile_opts opts = {.agency_id = agency,
					      .window_ms = cfg->reconcile_window_ms,
					      .concurrency = (int)cfg->reconcile_concurrency};
		reconciler_run(r, &opts, on_done, o);
		while (!o->done && event_base_dispatch(app.base) == 0)
			;
		if (!o->done)
			o->error = xstrdup("the sweep did not finish (the event loop stopped)");
		rc = o->error ? -1 : 0;
	}
	app.stopping = 1;
	ghl_teardown(&app);
	app.db = db_pool_free(app.db);
	reconciler_free(r);
	event_base_free(app.base);
	return rc;
}

static const char sql_list[] =
	"SELECT d.job_id::text, d.agency_id::text, d.kind, d.detail,"
	" to_char(d.first_seen, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" to_char(d.last_seen, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	" FROM job_drift d WHERE d.resolved_at IS NULL"
	" AND ($1::uuid IS NULL OR d.agency_id = $1::uuid) ORDER BY d.first_seen, d.id LIMIT 10000";

static void print_json(const struct reconcile_report *r, PGresult *res)
{
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "jobs");
	jw_int(&w, r->jobs);
	jw_key(&w, "unchecked");
	jw_int(&w, r->unchecked);
	jw_key(&w, "opened");
	jw_int(&w, r->opened);
	jw_key(&w, "resolved");
	jw_int(&w, r->resolved);
	jw_key(&w, "open");
	jw_array_begin(&w);
	static const char *const keys[] = {"job_id", "agency_id",  "kind",
					   "detail", "first_seen", "last_seen"};
	for (int i = 0; i < PQntuples(res); i++) {
		jw_object_begin(&w);
		for (int k = 0; k < 6; k++) {
			jw_key(&w, keys[k]);
			jw_string(&w, PQgetvalue(res, i, k));
		}
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
	printf("%s\n", buf_cstr(&b));
	buf_clear(&b);
}

int cmd_reconcile(struct config *cfg, int argc, char **argv)
{
	const char *agency = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--agency") && i + 1 < argc) {
			agency = argv[++i];
			if (!api_is_uuid(agency)) {
				fprintf(stderr,
					"ghl-agent reconcile: --agency: \"%s\" is not an agency id "
					"(a UUID, as GET /api/v1/agencies lists them)\n",
					agency);
				return 2;
			}
		} else {
			fprintf(stderr, "ghl-agent reconcile: %s \"%s\"\n",
				strcmp(argv[i], "--agency") ? "unknown argument"
							    : "an agency id must follow",
				argv[i]);
			return 2;
		}
	}
	struct outcome o;
	memset(&o, 0, sizeof(o));
	if (sweep(cfg, agency, &o)) {
		fprintf(stderr, "ghl-agent reconcile: %s\n", o.error ? o.error : "failed");
		free(o.error);
		return 1;
	}
	struct err e;
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent reconcile: %s\n", e.msg);
		return 1;
	}
	const char *p[] = {agency};
	PGresult *res = PQexecParams(conn, sql_list, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "ghl-agent reconcile: %s", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		return 1;
	}
	int n = PQntuples(res);
	if (json) {
		print_json(&o.rep, res);
	} else {
		printf("checked %lld completed job(s)%s: %lld drift opened, %lld resolved, %lld job(s) "
		       "not fully checked; open drift: %d\n",
		       o.rep.jobs, agency ? " of the agency" : "", o.rep.opened, o.rep.resolved,
		       o.rep.unchecked, n);
		for (int i = 0; i < n; i++)
			printf("  job %s  %-16s  since %s  %s\n", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 4), PQgetvalue(res, i, 3));
	}
	PQclear(res);
	PQfinish(conn);
	return n ? 3 : 0;
}
