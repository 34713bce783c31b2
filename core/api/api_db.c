/* api_db.c — an /api/v1 handler's database call: a parameterised query whose
 * failures are answered here (409, 422, 400, 500, 503). See api.h. */
#include "api_int.h"

#include <string.h>

#include "app.h"
#include "db.h"
#include "http.h"
#include "log.h"

static void query_done(void *arg, PGresult *res, const struct err *e)
{
	struct api_req *r = arg;
	api_result_fn cb = r->qcb;
	r->qcb = NULL;
	if (!res) {
		log_warn("api query: database unavailable", "request_id", r->c->request_id, "error",
			 e ? e->msg : "", NULL);
		api_reply_db_unavailable(r, "the database is unavailable; try again shortly");
		return;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		cb(r, res);
		return;
	}
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && !strcmp(state, "23505")) {
		api_reply_error(r, 409, "conflict",
				r->conflict_msg ? r->conflict_msg : "the record already exists",
				NULL);
	} else if (state && !strcmp(state, "23503")) {
		api_reply_error(r, 422, "invalid_reference", "a referenced record does not exist",
				NULL);
	} else if (state && (!strcmp(state, "22P02") || !strcmp(state, "22007") ||
			     !strcmp(state, "22008") || !strcmp(state, "22003"))) {
		api_reply_error(r, 400, "invalid_input", "a value has an invalid format", NULL);
	} else {
		api_reply_internal(r, PQresultErrorMessage(res));
	}
}

void api_query(struct api_req *r, const char *sql, int nparams, const char *const *params,
	       api_result_fn cb)
{
	r->qcb = cb;
	/* GET and friends only read: safe to re-run if the connection drops */
	db_pool_query_flags(r->app->db, api_is_safe_method(r->c->method) ? DB_REPLAY : 0, sql,
			    nparams, params, query_done, r);
}
