/* webhook_routes.c — POST /webhooks/ghl (see webhook_routes.h). */
#include "webhook_routes.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "app.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define MAX_WEBHOOK_BODY WEBHOOK_MAX_BODY
#define MAX_ID_LEN 255
#define MAX_TYPE_LEN 64

/* clang-format off */
#define NEEDS_CONNECT_REASON                                                                \
	"installed in GoHighLevel without an OAuth connection; connect the agency through " \
	"/oauth/connect"
/* clang-format on */

/* ---- timestamps ---------------------------------------------------------------- */

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

static int expect(const char **p, char ch)
{
	if (**p != ch)
		return -1;
	(*p)++;
	return 0;
}

int webhook_parse_timestamp(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return -1;
	long long n;
	if (!str_to_ll(s, 0, 99999999999999LL, &n)) {
		*ms = n < 100000000000LL ? n * 1000 : n; /* seconds before year 5138 */
		return 0;
	}
	const char *p = s;
	int Y, M, D, h, m, sec, frac = 0;
	if (digits(&p, 4, &Y) || expect(&p, '-') || digits(&p, 2, &M) || expect(&p, '-') ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &m) || expect(&p, ':') ||
	    digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				frac = frac * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (nd == 0)
			return -1;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om))
			return -1;
		off = sign * (oh * 60 + om);
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	struct tm tm = {0};
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
	return 0;
}

/* ---- statements ---------------------------------------------------------------- */

/* $1 webhook id, $2 type, $3 companyId, $4 locationId (, $5 reason). Each returns
 * (1 when the event is new, else 0; the agency id touched, or NULL). */
/* clang-format off */
#define EVENT_CTE                                                                         \
	"WITH ev AS (INSERT INTO webhook_events (webhook_id, type, company_id, location_id)" \
	" VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id) DO NOTHING RETURNING 1)"
/* clang-format on */

/* A webhook never brings a deleted agency back (only an ADMIN's OAuth
 * connection does): INSTALL of one is recorded and ignored. */
static const char sql_install[] = EVENT_CTE
	", ag AS ("
	"INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
	" oauth_refresh_token_encrypted, token_expires_at, needs_reconnect, reconnect_reason)"
	" SELECT $3, $3, '', '', LOCALTIMESTAMP, true, $5"
	" WHERE EXISTS (SELECT 1 FROM ev) AND $4::text IS NULL"
	" ON CONFLICT (ghl_agency_id) DO UPDATE SET"
	" needs_reconnect = agencies.needs_reconnect"
	"   OR agencies.oauth_refresh_token_encrypted = '',"
	" reconnect_reason = CASE WHEN agencies.oauth_refresh_token_encrypted = '' THEN $5"
	"   ELSE agencies.reconnect_reason END,"
	" updated_at = LOCALTIMESTAMP"
	" WHERE agencies.deleted_at IS NULL"
	" RETURNING id::text)"
	" SELECT (SELECT count(*) FROM ev), (SELECT id FROM ag)";

/* Deleted as by DELETE /agencies/{id}: API keys revoked, users unlinked. */
static const char sql_uninstall[] = EVENT_CTE
	", ag AS ("
	"UPDATE agencies SET deleted_at = LOCALTIMESTAMP, updated_at = LOCALTIMESTAMP"
	" WHERE ghl_agency_id = $3 AND $4::text IS NULL AND deleted_at IS NULL"
	" AND EXISTS (SELECT 1 FROM ev)"
	" RETURNING id),"
	" k AS (UPDATE api_keys SET revoked_at = now()"
	"  WHERE agency_id IN (SELECT id FROM ag) AND revoked_at IS NULL),"
	" u AS (DELETE FROM user_agencies WHERE agency_id IN (SELECT id FROM ag))"
	" SELECT (SELECT count(*) FROM ev), (SELECT id::text FROM ag)";

static const char sql_other[] = EVENT_CTE " SELECT (SELECT count(*) FROM ev), NULL::text";

/* Reconciliation between sweeps (core/engine/reconcile.h): the third column
 * counts the job_drift rows opened, seen again or resolved. Only COMPLETED
 * jobs of live agencies (of companyId, when given) at location $4. */
/* clang-format off */
#define DRIFT_JOBS                                                                          \
	" SELECT j.id, j.agency_id FROM provisioning_jobs j JOIN agencies a ON a.id = j.agency_id" \
	" WHERE j.location_id = $4 AND j.status = 'COMPLETED' AND a.deleted_at IS NULL"      \
	" AND ($3::text IS NULL OR a.ghl_agency_id = $3) AND EXISTS (SELECT 1 FROM ev)"
/* clang-format on */

/* UNINSTALL of a location: app_uninstalled on its jobs. */
static const char sql_loc_uninstall[] = EVENT_CTE
	", d AS (INSERT INTO job_drift (job_id, agency_id, kind, detail)"
	" SELECT x.id, x.agency_id, 'app_uninstalled',"
	"  'GHL: the app was uninstalled from location ' || $4 FROM (" DRIFT_JOBS ") x"
	" ON CONFLICT (job_id, kind) WHERE resolved_at IS NULL"
	" DO UPDATE SET last_seen = LOCALTIMESTAMP RETURNING 1)"
	" SELECT (SELECT count(*) FROM ev), NULL::text, (SELECT count(*) FROM d)";

/* Resolves the open drift of kind $5 at the location: INSTALL of a location
 * (app_uninstalled), LocationCreate / LocationUpdate (location_missing: GHL
 * shows the location). */
static const char sql_loc_resolve[] = EVENT_CTE
	", d AS (UPDATE job_drift SET resolved_at = LOCALTIMESTAMP"
	" WHERE resolved_at IS NULL AND kind = $5 AND job_id IN (SELECT id FROM (" DRIFT_JOBS ") x)"
	" RETURNING 1)"
	" SELECT (SELECT count(*) FROM ev), NULL::text, (SELECT count(*) FROM d)";

/* ---- handler ------------------------------------------------------------------- */

struct delivery {
	struct http_ctx *c;
	char *type;
	char *webhook_id;
	char *company;
	char *location;
};

static void delivery_free(struct delivery *d)
{
	free(d->type);
	free(d->webhook_id);
	free(d->company);
	free(d->location);
	free(d);
}

/* 503 with Retry-After (GHL redelivers; the header tells any other sender when). */
static void reply_unavailable(struct http_ctx *c, int retry_s, const char *code,
			      const char *message)
{
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", retry_s > 0 ? retry_s : 1);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", secs);
	http_reply_error(c, 503, code, message, NULL);
}

static void on_recorded(void *arg, PGresult *res, const struct err *e)
{
	struct delivery *d = arg;
	struct http_ctx *c = d->c;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *why = db_why(res, e);
		log_error("webhook: cannot record", "webhook_id", d->webhook_id, "type", d->type,
			  "error", why, NULL);
		reply_unavailable(c, db_pool_retry_after_s(((struct app *)c->app)->db),
				  "database_unavailable",
				  "the webhook could not be recorded; deliver it again later");
		delivery_free(d);
		return;
	}
	int fresh = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	if (!fresh) {
		log_warn("webhook: replayed webhookId refused", "webhook_id", d->webhook_id, "type",
			 d->type, NULL);
		http_reply_error(c, 409, "webhook_replayed",
				 "this webhookId was already received; the delivery is ignored",
				 NULL);
		delivery_free(d);
		return;
	}
	const char *agency = PQntuples(res) == 1 && !PQgetisnull(res, 0, 1) &&
					     (str_eq(d->type, "INSTALL") ||
					      str_eq(d->type, "UNINSTALL"))
				     ? PQgetvalue(res, 0, 1)
				     : NULL;
	int drift = PQnfields(res) > 2 && strcmp(PQgetvalue(res, 0, 2), "0") != 0;
	const char *status = agency || drift ? "processed" : "ignored";
	if (str_eq(d->type, "UNINSTALL") && agency) {
		api_key_cache_clear(c->app);
		log_warn("agency uninstalled the app: soft-deleted, API keys revoked, users "
			 "unlinked",
			 "agency_id", agency, "ghl_agency_id", d->company, "webhook_id",
			 d->webhook_id, NULL);
	} else if (str_eq(d->type, "INSTALL") && agency)
		log_info("agency installed the app", "agency_id", agency, "ghl_agency_id",
			 d->company, "webhook_id", d->webhook_id, NULL);
	else if (str_eq(d->type, "INSTALL") && d->company && !d->location)
		log_warn("webhook: INSTALL of a deleted agency ignored (an ADMIN reconnects it "
			 "through /oauth/connect)",
			 "ghl_agency_id", d->company, "webhook_id", d->webhook_id, NULL);
	else
		log_info(drift ? "webhook recorded; job drift updated" : "webhook recorded", "type",
			 d->type, "ghl_agency_id", d->company, "location_id", d->location,
			 "webhook_id", d->webhook_id, NULL);
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_object_begin(&w);
	jw_key(&w, "status");
	jw_string(&w, status);
	jw_key(&w, "type");
	jw_string(&w, d->type);
	jw_key(&w, "webhook_id");
	jw_string(&w, d->webhook_id);
	jw_key(&w, "agency_id");
	jw_string(&w, agency);
	jw_object_end(&w);
	http_reply_json(c, 200, buf_cstr(&b));
	buf_clear(&b);
	delivery_free(d);
}

/* 0 when the body carries a valid signature under a configured key. */
static int verify(const struct config *cfg, struct evhttp_request *req, const char *body,
		  size_t len, struct err *e)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *ed = evhttp_find_header(h, "x-ghl-signature");
	const char *rsa = evhttp_find_header(h, "x-wh-signature");
	const char *ed_key = cfg->webhook_ed25519_public_key;
	const char *rsa_key = cfg->webhook_rsa_public_key;
	if (ed && ed_key[0]) {
		if (crypto_verify_ed25519(ed_key, body, len, ed, e) == 0)
			return 0;
		err_prefix(e, "x-ghl-signature");
		if (!rsa || !rsa_key[0])
			return -1;
	}
	if (rsa && rsa_key[0]) {
		if (crypto_verify_rsa_sha256(rsa_key, body, len, rsa, e) == 0)
			return 0;
		return err_prefix(e, "x-wh-signature");
	}
	if (ed || rsa)
		return err_set(e,
			       "the delivery is signed with %s, for which no public key is "
			       "configured",
			       ed ? "x-ghl-signature (Ed25519)" : "x-wh-signature (RSA)");
	return err_set(e, "the delivery carries neither x-ghl-signature nor x-wh-signature");
}

static int short_str(const char *s, size_t max)
{
	return !s || strlen(s) <= max;
}

static void h_webhook(struct http_ctx *c)
{
	struct app *app = c->app;
	const struct config *cfg = app->cfg;
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(in);
	struct err e;
	if (len > MAX_WEBHOOK_BODY) {
		http_reply_error(c, 413, "payload_too_large",
				 "webhook bodies are limited to 64 KiB", NULL);
		return;
	}
	if (!cfg->webhook_ed25519_public_key[0] && !cfg->webhook_rsa_public_key[0]) {
		log_error("webhook refused: no webhook public key is configured", NULL);
		reply_unavailable(c, 60, "webhook_keys_missing",
				  "no webhook public key is configured; set "
				  "webhook_ed25519_public_key (and/or webhook_rsa_public_key)");
		return;
	}
	char *body = xmalloc(len + 1);
	evbuffer_copyout(in, body, len);
	body[len] = '\0';
	struct json *j = NULL;
	if (verify(cfg, c->req, body, len, &e)) {
		log_warn("webhook refused: bad signature", "request_id", c->request_id, "reason",
			 e.msg, NULL);
		http_reply_error(c, 401, "invalid_signature", e.msg, NULL);
		goto out;
	}
	j = json_parse(body, len, JSON_DEFAULT_MAX_DEPTH, &e);
	if (!j || j->type != JSON_OBJECT) {
		http_reply_error(c, 400, "invalid_json",
				 j ? "the webhook body is not a JSON object" : e.msg, NULL);
		goto out;
	}
	const char *type = json_get_str(j, "type");
	const char *company = json_get_str(j, "companyId");
	const char *location = json_get_str(j, "locationId");
	const char *wid = json_get_str(j, "webhookId");
	int loc_event = type && (str_eq(type, "LocationCreate") || str_eq(type, "LocationUpdate"));
	if (loc_event && !location)
		location = json_get_str(j, "id"); /* {type, id, companyId, name, email} */
	if (!type || !*type || !short_str(type, MAX_TYPE_LEN) || !short_str(company, MAX_ID_LEN) ||
	    !short_str(location, MAX_ID_LEN) || !short_str(wid, MAX_ID_LEN)) {
		http_reply_error(c, 400, "invalid_webhook",
				 "type is required; type, companyId, locationId and webhookId must "
				 "be strings of reasonable length",
				 NULL);
		goto out;
	}
	struct json *ts = json_get(j, "timestamp");
	if (!ts) {
		log_warn("webhook refused: no timestamp", "request_id", c->request_id, "webhook_id",
			 wid, NULL);
		http_reply_error(c, 400, "invalid_webhook",
				 "timestamp is required (without it the delivery's age cannot be "
				 "checked, so it could be replayed later)",
				 NULL);
		goto out;
	}
	{
		int64_t when = 0;
		char num[32];
		const char *text = NULL;
		if (ts->type == JSON_STRING) {
			text = ts->u.str.s;
		} else if (ts->type == JSON_NUMBER && ts->u.num.is_int) {
			snprintf(num, sizeof(num), "%lld", (long long)ts->u.num.i);
			text = num;
		}
		if (!text || webhook_parse_timestamp(text, &when)) {
			http_reply_error(c, 400, "invalid_webhook", "timestamp is not a valid time",
					 NULL);
			goto out;
		}
		int64_t age = now_wall_ms() - when;
		if (age > cfg->webhook_max_age_ms || -age > cfg->webhook_max_age_ms) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "the webhook timestamp is %lld s %s; at most %lld s are accepted",
				 (long long)(age < 0 ? -age : age) / 1000,
				 age < 0 ? "in the future" : "old", cfg->webhook_max_age_ms / 1000);
			log_warn("webhook refused: stale timestamp", "request_id", c->request_id,
				 "webhook_id", wid, "detail", msg, NULL);
			http_reply_error(c, 400, "webhook_stale", msg, NULL);
			goto out;
		}
	}
	struct delivery *d = xcalloc(1, sizeof(*d));
	d->c = c;
	d->type = xstrdup(type);
	d->company = company ? xstrdup(company) : NULL;
	d->location = location ? xstrdup(location) : NULL;
	if (wid && *wid) {
		d->webhook_id = xstrdup(wid);
	} else {
		char hex[CRYPTO_SHA256_HEX_LEN];
		crypto_sha256_hex(body, len, hex);
		d->webhook_id = xasprintf("sha256:%s", hex);
	}
	const char *sql = sql_other;
	int np = 4;
	const char *p5 = NEEDS_CONNECT_REASON;
	if (location && (str_eq(type, "INSTALL") || loc_event)) {
		sql = sql_loc_resolve;
		np = 5;
		p5 = loc_event ? "location_missing" : "app_uninstalled";
	} else if (str_eq(type, "UNINSTALL") && location) {
		sql = sql_loc_uninstall;
	} else if (str_eq(type, "INSTALL") && company) {
		sql = sql_install;
		np = 5;
	} else if (str_eq(type, "UNINSTALL") && company) {
		sql = sql_uninstall;
	}
	const char *p[] = {d->webhook_id, d->type, d->company, d->location, p5};
	db_pool_query(app->db, sql, np, p, on_recorded, d);
out:
	json_free(j);
	free(body);
}

static const struct http_route webhook_routes[] = {
	{"POST", "/webhooks/ghl", h_webhook},
};

const struct route_table webhook_route_table = {webhook_routes,
						sizeof(webhook_routes) / sizeof(webhook_routes[0])};
