/* cmd_user.c — `ghl-agent user add`; see cmd_user.h. */
#include "cmd_user.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "api.h"
#include "passwords.h"
#include "config.h"
#include "crypto.h"
#include "db.h"

struct add_args {
	const char *email;
	const char *role;
	const char **agencies;
	int nagencies;
	int password_stdin;
};

/* Read one line from f without its line ending; NULL at EOF. Malloc'd. */
static char *read_line(FILE *f)
{
	struct buf b;
	buf_init(&b);
	int ch, any = 0;
	while ((ch = fgetc(f)) != EOF) {
		any = 1;
		if (ch == '\n')
			break;
		buf_putc(&b, (char)ch);
		if (b.len > AUTH_PASSWORD_MAX + 1)
			break;
	}
	if (!any) {
		buf_clear(&b);
		return NULL;
	}
	if (b.len && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	return buf_take(&b);
}


/* Prompt on the terminal with echo off. */
static char *prompt_secret(const char *prompt)
{
	struct termios old, quiet;
	int restore = 0;
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	char *line = read_line(stdin);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return line;
}

static char *get_password(const struct add_args *a)
{
	if (a->password_stdin || !isatty(STDIN_FILENO)) {
		char *pw = read_line(stdin);
		if (!pw)
			fprintf(stderr, "ghl-agent user add: no password on stdin\n");
		return pw;
	}
	char *pw = prompt_secret("Password: ");
	if (!pw)
		return NULL;
	struct err e;
	if (auth_password_policy(pw, &e)) {
		fprintf(stderr, "ghl-agent user add: %s\n", e.msg);
		secret_free(pw);
		return NULL;
	}
	char *again = prompt_secret("Repeat password: ");
	if (!again || strcmp(pw, again)) {
		fprintf(stderr, "ghl-agent user add: the passwords do not match\n");
		secret_free(pw);
		pw = NULL;
	}
	secret_free(again);
	return pw;
}

static int parse_args(int argc, char **argv, struct add_args *a)
{
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = NULL;
		const char *names[] = {"--email", "--role", "--agency"};
		int which = -1;
		for (int k = 0; k < 3; k++) {
			size_t n = strlen(names[k]);
			if (!strncmp(arg, names[k], n) && (arg[n] == '\0' || arg[n] == '=')) {
				which = k;
				if (arg[n] == '=')
					val = arg + n + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					fprintf(stderr, "ghl-agent user add: %s needs a value\n",
						names[k]);
					return -1;
				}
			}
		}
		if (which == 0) {
			a->email = val;
		} else if (which == 1) {
			a->role = val;
		} else if (which == 2) {
			a->agencies = xrealloc(a->agencies,
					       (size_t)(a->nagencies + 1) * sizeof(char *));
			a->agencies[a->nagencies++] = val;
		} else if (!strcmp(arg, "--password-stdin")) {
			a->password_stdin = 1;
		} else {
			fprintf(stderr, "ghl-agent user add: unknown argument \"%s\"\n", arg);
			return -1;
		}
	}
	if (!a->email || !strchr(a->email, '@') || strlen(a->email) > 255) {
		fprintf(stderr, "ghl-agent user add: --email EMAIL is required (name@example.com, "
				"at most 255 characters)\n");
		return -1;
	}
	if (!a->role || api_role_parse(a->role) == API_ROLE_NONE) {
		fprintf(stderr,
			"ghl-agent user add: --role must be ADMIN, AGENCY_ADMIN or SUPPORT\n");
		return -1;
	}
	for (int k = 0; k < a->nagencies; k++)
		if (!api_is_uuid(a->agencies[k])) {
			fprintf(stderr,
				"ghl-agent user add: --agency \"%s\" is not an agency id (a "
				"UUID)\n",
				a->agencies[k]);
			return -1;
		}
	if (!strcmp(a->role, "AGENCY_ADMIN") && a->nagencies == 0)
		fprintf(stderr,
			"ghl-agent user add: note: an AGENCY_ADMIN without --agency sees no "
			"agency until linked (PATCH /api/v1/users/{id})\n");
	return 0;
}

static int insert_user(PGconn *conn, const struct add_args *a, const char *hash)
{
	struct err e;
	char *email = xstrdup(a->email);
	for (char *p = email; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	int rc = 1;
	if (db_exec(conn, "BEGIN", &e))
		goto out_err;
	const char *params[] = {email, hash, a->role};
	PGresult *res = db_query(conn,
				 "INSERT INTO users (email, password_hash, role)"
				 " VALUES ($1, $2, $3::user_role) RETURNING id",
				 3, params, &e);
	if (!res)
		goto out_rollback;
	char *id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	for (int k = 0; k < a->nagencies; k++) {
		const char *lp[] = {id, a->agencies[k]};
		res = db_query(conn,
			       "INSERT INTO user_agencies (user_id, agency_id) VALUES ($1, $2)"
			       " ON CONFLICT DO NOTHING",
			       2, lp, &e);
		if (!res) {
			free(id);
			goto out_rollback;
		}
		PQclear(res);
	}
	if (db_exec(conn, "COMMIT", &e)) {
		free(id);
		goto out_err;
	}
	printf("created user %s <%s> (%s)\n", id, email, a->role);
	free(id);
	rc = 0;
	goto out;
out_rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
out_err:
	if (strstr(e.msg, "23505"))
		fprintf(stderr, "ghl-agent user add: a user with this email already exists (%s)\n",
			email);
	else if (strstr(e.msg, "23503"))
		fprintf(stderr, "ghl-agent user add: agency not found (an --agency id names no "
				"agency)\n");
	else if (strstr(e.msg, "42P01"))
		fprintf(stderr, "ghl-agent user add: the database has no schema yet; run "
				"`ghl-agent migrate` first\n");
	else
		fprintf(stderr, "ghl-agent user add: %s\n", e.msg);
out:
	free(email);
	return rc;
}

int cmd_user(struct config *cfg, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "add")) {
		fprintf(stderr, "ghl-agent user: expected add%s%s%s\n", argc >= 2 ? ", got \"" : "",
			argc >= 2 ? argv[1] : "", argc >= 2 ? "\"" : "");
		return 2;
	}
	struct add_args a;
	memset(&a, 0, sizeof(a));
	int rc = 2;
	char *pw = NULL, *hash = NULL;
	PGconn *conn = NULL;
	struct err e;
	if (parse_args(argc, argv, &a))
		goto out;
	pw = get_password(&a);
	if (!pw)
		goto out;
	if (auth_password_policy(pw, &e)) {
		fprintf(stderr, "ghl-agent user add: %s\n", e.msg);
		goto out;
	}
	rc = 1;
	conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent user add: %s\n", e.msg);
		goto out;
	}
	if (auth_password_hash(pw, (int)cfg->bcrypt_cost, &hash, &e)) {
		fprintf(stderr, "ghl-agent user add: %s\n", e.msg);
		goto out;
	}
	rc = insert_user(conn, &a, hash);
out:
	if (conn)
		PQfinish(conn);
	secret_free(hash);
	secret_free(pw);
	free(a.agencies);
	return rc;
}
