/* sim_pushes.c — GET /snapshots/snapshot-status/{snapshotId} (GHL's "Get
 * Snapshot Push between Dates", agency token): the pushes of one snapshot
 * into the company's locations that started between `from` and `to`.
 *
 * Query (GHL's OpenAPI lists all as required): companyId; from and to as
 * "MM-DD-YYYY hh:mm AM" (GHL's example "10-10-2022 12:00 AM"; read as UTC,
 * `to` inclusive to the end of its minute); lastDoc, the id of the last push
 * of the previous page (empty or absent: the first page); limit (default 10,
 * at most 1000). Answer: {"data": [{"id", "locationId", "status",
 * "dateAdded"}]} oldest first, `status` "processing" or "completed" as in the
 * per-location endpoint, `dateAdded` as GHL's example "10/28/2022, 6:24:54 PM".
 * An unknown snapshot is refused with 400 like the other snapshot routes; a
 * bad date or limit with 422.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

/* "MM-DD-YYYY hh:mm AM" → ms since the epoch (UTC); -1 when malformed. */
static int64_t parse_when(const char *s)
{
	int mo, d, y, h, mi, n = 0;
	char ampm[3] = {0};
	if (!s ||
	    sscanf(s, "%2d-%2d-%4d %2d:%2d %2[AaPp]%*[Mm]%n", &mo, &d, &y, &h, &mi, ampm, &n) !=
		    6 ||
	    s[n] != '\0')
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970 || h < 1 || h > 12 || mi < 0 ||
	    mi > 59)
		return -1;
	int pm = ampm[0] == 'P' || ampm[0] == 'p';
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h % 12 + (pm ? 12 : 0);
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000;
}

static void date_added(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	int h = tm.tm_hour % 12;
	snprintf(out, 40, "%d/%d/%d, %d:%02d:%02d %s", tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
		 h ? h : 12, tm.tm_min, tm.tm_sec, tm.tm_hour < 12 ? "AM" : "PM");
}

static int by_start(const void *a, const void *b)
{
	const struct sim_location *x = *(const struct sim_location *const *)a;
	const struct sim_location *y = *(const struct sim_location *const *)b;
	if (x->push_start_ms != y->push_start_ms)
		return x->push_start_ms < y->push_start_ms ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void sim_h_snapshot_pushes(struct sim_ctx *c)
{
	struct sim *s = c->s;
	const char *snap = c->seg[2];
	const char *company = sim_query(c, "companyId");
	const char *last = sim_query(c, "lastDoc");
	const char *lim = sim_query(c, "limit");
	int64_t from = parse_when(sim_query(c, "from"));
	int64_t to = parse_when(sim_query(c, "to"));
	long long limit = 10;
	struct vec msgs = {0};
	if (!company || !*company)
		vec_push(&msgs, xstrdup("companyId should not be empty"));
	if (from < 0)
		vec_push(&msgs, xstrdup("from must be a date like 10-10-2022 12:00 AM"));
	if (to < 0)
		vec_push(&msgs, xstrdup("to must be a date like 12-18-2023 11:59 PM"));
	if (lim && *lim && str_to_ll(lim, 1, 1000, &limit) != 0)
		vec_push(&msgs, xstrdup("limit must be a number between 1 and 1000"));
	if (msgs.n) {
		sim_error_422(c, &msgs);
		sim_msgs_free(&msgs);
		return;
	}
	if (sim_check_company(c, company) != 0)
		return;
	if (!sim_snapshot_get(s, company, snap)) {
		sim_error(c, 400, "Invalid snapshotId: no such snapshot for this company");
		return;
	}
	struct vec hits = {0};
	for (size_t i = 0; i < s->store.location_list.n; i++) {
		struct sim_location *loc = s->store.location_list.v[i];
		if (str_eq(loc->company_id, company) && loc->snapshot_id &&
		    str_eq(loc->snapshot_id, snap) && loc->push_start_ms >= from &&
		    loc->push_start_ms < to + 60000)
			vec_push(&hits, loc);
	}
	if (hits.n > 1)
		qsort(hits.v, hits.n, sizeof(void *), by_start);
	size_t start = 0;
	for (size_t i = 0; last && *last && i < hits.n; i++)
		if (str_eq(((struct sim_location *)hits.v[i])->push_id, last))
			start = i + 1;
	int64_t now = now_wall_ms();
	struct jw w;
	sim_json_begin(c, &w, 200);
	jw_key(&w, "data");
	jw_array_begin(&w);
	for (size_t i = start; i < hits.n && (long long)(i - start) < limit; i++) {
		const struct sim_location *loc = hits.v[i];
		char when[40];
		date_added(loc->push_start_ms, when);
		jw_object_begin(&w);
		jw_key(&w, "id");
		jw_string(&w, loc->push_id);
		jw_key(&w, "locationId");
		jw_string(&w, loc->id);
		jw_key(&w, "status");
		jw_string(&w, now < loc->push_done_ms ? "processing"
			      : loc->push_failed      ? "failed"
						      : "completed");
		jw_key(&w, "dateAdded");
		jw_string(&w, when);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	sim_json_end(c, &w);
	vec_free(&hits);
}
