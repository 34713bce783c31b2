/* main.c — the ghl-agent command line: global options, then one command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_archive.h"
#include "cmd_job.h"
#include "cmd_reconcile.h"
#include "cmd_rewrap.h"
#include "cmd_step.h"
#include "cmd_user.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "cmd_serve.h"
#include "vault.h"

struct command {
	const char *name;
	int (*fn)(struct config *cfg, int argc, char **argv);
	const char *summary;
	const char *help;
};

static int cmd_serve(struct config *cfg, int argc, char **argv);
static int cmd_migrate(struct config *cfg, int argc, char **argv);
static int cmd_config(struct config *cfg, int argc, char **argv);
static int cmd_version(struct config *cfg, int argc, char **argv);
static int cmd_keygen(struct config *cfg, int argc, char **argv);

static const struct command commands[] = {
	{"serve", cmd_serve, "run the daemon (HTTP API, dashboard, scheduler)",
	 "Usage: ghl-agent [--config PATH] serve\n\n"
	 "Runs the agent on one event loop: the HTTP server on `listen`\n"
	 "(GET /healthz, GET /readyz, the API), the database connection and\n"
	 "background work. Logs go to stderr (log_format json|text).\n"
	 "Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests and\n"
	 "exit 0 within shutdown_timeout; SIGHUP reloads the config file (an\n"
	 "invalid file is reported and the running config is kept).\n"},
	{"migrate", cmd_migrate, "apply pending database migrations (or: migrate status)",
	 "Usage: ghl-agent [--config PATH] migrate [status]\n\n"
	 "Applies every pending migrations/*.sql file in name order, each in its\n"
	 "own transaction, recording version and SHA-256 checksum in\n"
	 "schema_migrations. An advisory lock makes concurrent runs wait for each\n"
	 "other. Refuses to run when an applied file was edited.\n\n"
	 "  migrate status   list applied and pending migrations (exit 0)\n\n"
	 "Environment: DATABASE_URL (or database_url in the config file).\n"},
	{"config", cmd_config, "print the effective configuration (secrets masked)",
	 "Usage: ghl-agent [--config PATH] config\n\n"
	 "Prints every key with its effective value and where it came from\n"
	 "(default, file:LINE or env:NAME). Passwords and secrets are masked.\n"
	 "Precedence: built-in default < config file < environment\n"
	 "(GHL_AGENT_<KEY>, DATABASE_URL for database_url).\n"},
	{"keygen", cmd_keygen, "print a new token encryption key (ID:BASE64KEY)",
	 "Usage: ghl-agent keygen [ID]\n\n"
	 "Prints a new random 256-bit key as ID:BASE64KEY (ID defaults to 1), for\n"
	 "token_keys (GHL_AGENT_TOKEN_KEYS). To rotate: append the new key with a\n"
	 "higher ID (\"1:old,2:new\"), restart, then run `ghl-agent rewrap`.\n"},
	{"rewrap", cmd_rewrap, "re-encrypt stored tokens under the newest key", CMD_REWRAP_HELP},
	{"user", cmd_user, "create a user: user add --email E --role ROLE", CMD_USER_HELP},
	{"job", cmd_job, "submit, show (with its journal) or cancel a provisioning job",
	 CMD_JOB_HELP},
	{"step", cmd_step, "run one step (Lua script or plugin .so) against the configured GHL",
	 CMD_STEP_HELP},
	{"archive", cmd_archive, "move finished jobs older than archive_after to the archive",
	 CMD_ARCHIVE_HELP},
	{"plugins", cmd_plugins, "list the registered steps and refused plugins", CMD_PLUGINS_HELP},
	{"reconcile", cmd_reconcile, "check completed jobs against GHL and record drift",
	 CMD_RECONCILE_HELP},
	{"version", cmd_version, "print the version", "Usage: ghl-agent version\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "Usage: ghl-agent [--config PATH] COMMAND [ARGS]\n\n"
		     "The GHL Provisioning Agent: creates GoHighLevel sub-accounts for\n"
		     "agencies through per-agency pipelines of steps.\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nOptions:\n"
		     "  -c, --config PATH  config file (also GHL_AGENT_CONFIG); see "
		     "config/ghl-agent.conf\n"
		     "  -h, --help         this help; `ghl-agent COMMAND --help` for a command\n"
		     "  -V, --version      print the version\n");
}

/* The rule of every command: bad arguments exit 2 after the command's own
 * message and then its usage lines (the help text up to its first blank line);
 * refused operations exit 1 with the API's words; success exits 0. */
static void print_usage_lines(FILE *out, const struct command *cmd)
{
	const char *end = strstr(cmd->help, "\n\n");
	int n = end ? (int)(end - cmd->help) : (int)strlen(cmd->help);
	if (n > 0 && cmd->help[n - 1] == '\n')
		n--;
	fprintf(out, "%.*s\n(`ghl-agent %s --help` says more)\n", n, cmd->help, cmd->name);
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

static int cmd_version(struct config *cfg, int argc, char **argv)
{
	(void)cfg;
	if (argc > 1) {
		fprintf(stderr, "ghl-agent version: takes no arguments, got \"%s\"\n", argv[1]);
		return 2;
	}
	printf("ghl-agent %s\n", GHL_VERSION);
	return 0;
}

static int cmd_keygen(struct config *cfg, int argc, char **argv)
{
	(void)cfg;
	long long id = 1;
	if (argc > 2 || (argc == 2 && str_to_ll(argv[1], 1, 1000000, &id))) {
		fprintf(stderr,
			"ghl-agent keygen: expected an optional key ID from 1 to 1000000\n");
		return 2;
	}
	char *spec = vault_generate_key_spec((int)id);
	if (!spec) {
		fprintf(stderr, "ghl-agent keygen: the random number generator failed\n");
		return 1;
	}
	printf("%s\n", spec);
	secret_free(spec);
	return 0;
}

static int cmd_config(struct config *cfg, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "ghl-agent config: takes no arguments, got \"%s\"\n", argv[1]);
		return 2;
	}
	struct buf b;
	buf_init(&b);
	config_print(cfg, &b);
	fputs(buf_cstr(&b), stdout);
	buf_clear(&b);
	return 0;
}

static int cmd_serve(struct config *cfg, int argc, char **argv)
{
	(void)argc; /* checked by main: serve owns cfg */
	(void)argv;
	return server_run(cfg);
}

static int cmd_migrate(struct config *cfg, int argc, char **argv)
{
	int status = 0;
	if (argc == 2 && !strcmp(argv[1], "status")) {
		status = 1;
	} else if (argc != 1) {
		fprintf(stderr,
			"ghl-agent migrate: unknown argument \"%s\" (expected nothing or "
			"\"status\")\n",
			argv[strcmp(argv[1], "status") ? 1 : 2]);
		return 2;
	}
	struct err e;
	struct migration_set set;
	int rc = migrate_load(cfg, &set, &e);
	if (rc) {
		fprintf(stderr, "ghl-agent migrate: %s\n", e.msg);
		return 1;
	}
	PGconn *conn = db_connect(cfg->database_url, &e);
	if (!conn) {
		fprintf(stderr, "ghl-agent migrate: %s\n", e.msg);
		migrate_set_clear(&set);
		return 1;
	}
	int n = 0;
	if (status) {
		rc = migrate_status(conn, &set, stdout, &n, &e);
	} else {
		rc = migrate_run(conn, &set, stdout, &n, &e);
		if (!rc)
			printf(n ? "%d migration(s) applied\n" : "database is up to date\n", n);
	}
	if (rc)
		fprintf(stderr, "ghl-agent migrate: %s\n", e.msg);
	PQfinish(conn);
	migrate_set_clear(&set);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("GHL_AGENT_CONFIG");
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	/* '+': stop at the first non-option (the command) */
	while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': return cmd_version(NULL, 0, NULL);
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	const struct command *cmd = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			cmd = &commands[i];
	if (!strcmp(name, "help")) {
		if (optind + 1 < argc) {
			for (size_t i = 0; i < NCOMMANDS; i++)
				if (!strcmp(commands[i].name, argv[optind + 1])) {
					fputs(commands[i].help, stdout);
					return 0;
				}
			fprintf(stderr, "ghl-agent help: unknown command \"%s\"\n\n",
				argv[optind + 1]);
			usage(stderr);
			return 2;
		}
		usage(stdout);
		return 0;
	}
	if (!cmd) {
		fprintf(stderr, "ghl-agent: unknown command \"%s\"\n\n", name);
		usage(stderr);
		return 2;
	}
	int cargc = argc - optind;
	char **cargv = argv + optind;
	if (wants_help(cargc, cargv)) {
		fputs(cmd->help, stdout);
		return 0;
	}
	struct err e;
	struct config *cfg = config_load(config_path, &e);
	if (!cfg) {
		fprintf(stderr, "ghl-agent: %s\n", e.msg);
		return 2;
	}
	if (cmd->fn == cmd_serve) {
		if (cargc > 1) {
			config_free(cfg);
			fprintf(stderr, "ghl-agent serve: takes no arguments, got \"%s\"\n",
				cargv[1]);
			print_usage_lines(stderr, cmd);
			return 2;
		}
		return cmd->fn(cfg, cargc, cargv); /* serve owns cfg */
	}
	/* one-shot commands print their own results; keep the log for errors */
	log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
	int rc = cmd->fn(cfg, cargc, cargv);
	config_free(cfg);
	if (rc == 2)
		print_usage_lines(stderr, cmd);
	return rc;
}
