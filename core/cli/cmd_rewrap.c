/* cmd_rewrap.c — `ghl-agent rewrap [--dry-run]` (see cmd_rewrap.h). */
#include "cmd_rewrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agency_tokens.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "ghl_side.h"
#include "vault.h"

struct rewrap_counts {
	long agencies;
	long rewrapped;	 /* values re-encrypted (or that would be, in a dry run) */
	long current;	 /* already under the newest key */
	long not_vault;	 /* empty or placeholder: not a vault value */
	long unreadable; /* decryption failed */
	long failed;	 /* agencies whose transaction failed */
};

/* Check one stored value and re-encrypt it when it is under an older key or
 * not yet bound to its row (a legacy "v<id>:" value). Returns a malloc'd new
 * value, NULL when it stays as is (counted), and sets *bad when it does not
 * decrypt for this row and column (wrong key, tampered, or moved here from
 * another row). */
static char *rewrap_value(const struct vault *v, const char *agency, const char *column,
			  const char *what, const char *stored, struct rewrap_counts *n, int *bad)
{
	int need = vault_needs_rewrap(v, stored);
	if (need < 0) {
		n->not_vault++;
		return NULL;
	}
	struct err e;
	char *plain = vault_decrypt(v, stored, agency, column, &e);
	if (!plain) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s: %s\n", agency, what, e.msg);
		n->unreadable++;
		*bad = 1;
		return NULL;
	}
	if (need == 0) {
		secret_free(plain);
		n->current++;
		return NULL;
	}
	char *out = vault_encrypt(v, plain, agency, column, &e);
	secret_free(plain);
	if (!out) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s: %s\n", agency, what, e.msg);
		*bad = 1;
		return NULL;
	}
	n->rewrapped++;
	return out;
}

static const char sql_lock[] =
	"SELECT oauth_access_token_encrypted, oauth_refresh_token_encrypted FROM agencies"
	" WHERE id::text = $1 FOR UPDATE";
static const char sql_store[] =
	"UPDATE agencies SET oauth_access_token_encrypted = $2, oauth_refresh_token_encrypted = $3"
	" WHERE id::text = $1";

/* One agency, in its own transaction. 0, or -1 when it failed. */
static int rewrap_agency(PGconn *conn, const struct vault *v, const char *id, int dry_run,
			 struct rewrap_counts *n)
{
	struct err e;
	int rc = -1, bad = 0;
	char *access = NULL, *refresh = NULL;
	PGresult *r = NULL;
	if (db_exec(conn, "BEGIN", &e)) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s\n", id, e.msg);
		return -1;
	}
	const char *p1[] = {id};
	r = db_query(conn, sql_lock, 1, p1, &e);
	if (!r) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s\n", id, e.msg);
		goto out_rollback;
	}
	if (PQntuples(r) == 1) { /* 0: deleted meanwhile */
		access = rewrap_value(v, id, AGENCY_TOKENS_COL_ACCESS, "access token",
				      PQgetvalue(r, 0, 0), n, &bad);
		refresh = rewrap_value(v, id, AGENCY_TOKENS_COL_REFRESH, "refresh token",
				       PQgetvalue(r, 0, 1), n, &bad);
	}
	if (dry_run || (!access && !refresh)) {
		rc = bad ? -1 : 0;
		goto out_rollback;
	}
	const char *p3[] = {id, access ? access : PQgetvalue(r, 0, 0),
			    refresh ? refresh : PQgetvalue(r, 0, 1)};
	PGresult *u = db_query(conn, sql_store, 3, p3, &e);
	if (!u) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s\n", id, e.msg);
		goto out_rollback;
	}
	PQclear(u);
	if (db_exec(conn, "COMMIT", &e)) {
		fprintf(stderr, "ghl-agent rewrap: agency %s: %s\n", id, e.msg);
		goto out_rollback;
	}
	rc = bad ? -1 : 0;
	goto out_free;
out_rollback:
	db_exec(conn, "ROLLBACK", NULL);
out_free:
	PQclear(r);
	free(access);
	free(refresh);
	return rc;
}

int cmd_rewrap(struct config *cfg, int argc, char **argv)
{
	int dry_run = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = 1;
		} else {
			fprintf(stderr,
				"ghl-agent rewrap: unknown argument \"%s\"\n(expected "
				"nothing or --dry-run)\n",
				argv[i]);
			return 2;
		}
	}
	struct err e;
	int rc = 1;
	PGresult *ids = NULL;
	struct vault *v = ghl_load_vault(cfg, &e);
	if (!v) {
		fprintf(stderr, "ghl-agent rewrap: %s\n", e.msg);
		return 1;
	}
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent rewrap: %s\n", e.msg);
		goto out;
	}
	ids = db_query(conn, "SELECT id::text FROM agencies ORDER BY created_at, id", 0, NULL, &e);
	if (!ids) {
		fprintf(stderr, "ghl-agent rewrap: %s\n", e.msg);
		goto out;
	}
	struct rewrap_counts n = {0};
	for (int i = 0; i < PQntuples(ids); i++) {
		n.agencies++;
		if (rewrap_agency(conn, v, PQgetvalue(ids, i, 0), dry_run, &n))
			n.failed++;
	}
	printf("%s%ld agencies: %ld token(s) %s under key %d, %ld already under it, "
	       "%ld not encrypted values (skipped), %ld unreadable\n",
	       dry_run ? "dry run: " : "", n.agencies, n.rewrapped,
	       dry_run ? "would be re-encrypted" : "re-encrypted", vault_newest_id(v), n.current,
	       n.not_vault, n.unreadable);
	if (n.failed)
		fprintf(stderr,
			"ghl-agent rewrap: %ld agenc%s not fully rewrapped (see above)\n"
			"hint: every key id still in use must be listed in token_keys\n",
			n.failed, n.failed == 1 ? "y" : "ies");
	rc = n.failed ? 1 : 0;
out:
	PQclear(ids);
	if (conn)
		PQfinish(conn);
	vault_free(v);
	return rc;
}
