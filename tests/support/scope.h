/* scope.h — the access-scope check of listing endpoints: which ids a caller
 * sees in a list, a report or an export, compared with what the database says
 * that caller may see. Every listing endpoint has a row in the scope matrix of
 * tests/integration/test_api_scope.c, which checks it through tl_scope_check
 * for every role (README "How we test"). */
#ifndef GHL_TEST_SCOPE_H
#define GHL_TEST_SCOPE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "util.h"

/* A caller of the API. */
struct tl_caller {
	const char *name;     /* for messages: "AGENCY_ADMIN of A and Z" */
	const char *token;    /* session token or API key, sent as Bearer */
	const char *agencies; /* the agencies it may see: a uuid[] literal "{…}" */
};

/* What one check saw, so a test can refuse a vacuous row (nothing foreign to
 * leak, nothing visible to miss). */
struct tl_scope_counts {
	size_t got;	/* ids the endpoint answered */
	size_t visible; /* ids the caller may see */
	size_t foreign; /* ids that exist and the caller may not see */
};

/* GET base+path as token and every further page (cursor= appended while the
 * answer has a next_cursor), collecting the string field `field` of each
 * element of "items" ("list.field": of each element of the array "list",
 * for a report); an export (a text/csv answer) is one page, and field
 * names its column. Returns a NULL-terminated vector (tl_strv_free) and
 * *status 200; otherwise NULL, *status the failing page's status (0 when the
 * answer was not a page of items) and, when err is not NULL, a description
 * appended to it. */
char **tl_list_ids(const char *base, const char *token, const char *path, const char *field,
		   long *status, struct buf *err);

/* The first column of every row of sql, run with $1 = param (may be NULL;
 * sql may ignore it). NULL-terminated, malloc'd; fails the test on an SQL
 * error. */
char **tl_sql_ids(PGconn *db, const char *sql, const char *param);

int tl_strv_has(char *const *v, const char *s);
size_t tl_strv_len(char *const *v);
void tl_strv_free(char **v);

/* The scope assertion. GET path (every page) as `who` must answer
 * want_status. With 200, the ids in `field` must be exactly those visible_sql
 * returns for who->agencies ($1, uuid[]), none twice, and none of the other
 * ids all_sql returns: such an id is reported as a LEAK. Each problem is one
 * line appended to fails; returns their number. counts may be NULL. */
int tl_scope_check(struct buf *fails, const char *base, PGconn *db, const struct tl_caller *who,
		   const char *path, const char *field, const char *all_sql,
		   const char *visible_sql, long want_status, struct tl_scope_counts *counts);

/* Fail the test when fails holds problems: all of them go to stderr (Check
 * caps a message's length), the first ones into the failure message. */
void tl_scope_assert_none(struct buf *fails, const char *what);

#endif
