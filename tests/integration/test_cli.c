/* test_cli.c — the command line speaks like the API (issue 18): bad
 * arguments exit 2 with the command's usage, refused operations exit 1 with
 * the API's words (never a raw SQL error), `step run` checks --config against
 * the step's config_schema as a pipeline does, demo mode refuses to reach the
 * real GHL unless told to, and `plugins` prints aligned, relative paths. */
#include <unistd.h>

#include "ghl_harness.h"

static char *dsn;

#define AGENCY "11111111-2222-4333-8444-555555555555"
#define ABSENT "5c1f0a4e-9b2d-4e8f-a1c3-7d6e5f4a3b2c"

/* ghl-agent ARGS… with DATABASE_URL and the extra KEY=VALUE entries; the exit
 * code, and stdout+stderr in *out. */
static int agent(char **out, const char *const *extra, const char *const *args)
{
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *env[16];
	int n = 0;
	env[n++] = env_dsn;
	for (int i = 0; extra && extra[i] && n < 15; i++)
		env[n++] = (char *)extra[i];
	env[n] = NULL;
	char *argv[24];
	int k = 0;
	argv[k++] = (char *)tl_env("GHL_AGENT_BIN");
	for (int i = 0; args[i] && k < 23; i++)
		argv[k++] = (char *)args[i];
	argv[k] = NULL;
	int rc = tl_run(argv, env, out);
	free(env_dsn);
	return rc;
}

static void expect(int want_rc, const char *want_text, const char *const *extra,
		   const char *const *args)
{
	char *out;
	int rc = agent(&out, extra, args);
	ck_assert_msg(rc == want_rc && strstr(out, want_text),
		      "ghl-agent %s %s: exit %d (want %d), output lacks \"%s\":\n%s", args[0],
		      args[1] ? args[1] : "", rc, want_rc, want_text, out);
	ck_assert_msg(!strstr(out, "SQLSTATE") && !strstr(out, "invalid input syntax"),
		      "a raw SQL error reached the user: %s", out);
	free(out);
}

static char *job_in(PGconn *c, const char *status)
{
	return tl_sqlf(c,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json, status)"
		       " VALUES ('" AGENCY "', '{\"name\":\"A\",\"email\":\"a@x.example\"}', '%s')"
		       " RETURNING id",
		       status);
}

START_TEST(arguments_first_then_refusals_in_the_apis_words)
{
	/* bad arguments: 2, the message, then the command's usage */
	expect(2, "Usage: ghl-agent version", NULL, (const char *[]){"version", "extra", NULL});
	expect(2, "unknown command \"nosuch\"", NULL, (const char *[]){"help", "nosuch", NULL});
	expect(2, "Usage: ghl-agent [--config PATH] job submit", NULL,
	       (const char *[]){"job", NULL});
	expect(2, "\"5c1f\" is not a job id", NULL,
	       (const char *[]){"job", "cancel", "5c1f", NULL});
	expect(2, "Usage: ghl-agent [--config PATH] job submit", NULL,
	       (const char *[]){"job", "show", "5c1f", NULL});
	expect(2, "--agency \"x\" is not an id", NULL,
	       (const char *[]){"job", "submit", "--agency", "x", "--client-json", "-", NULL});
	expect(2, "takes no arguments, got \"now\"", NULL, (const char *[]){"serve", "now", NULL});
	expect(2, "unknown argument \"--all\"", NULL, (const char *[]){"archive", "--all", NULL});

	/* refusals: 1, in the API's words */
	PGconn *c = tl_connect(dsn);
	tl_execf(c, "INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,"
		    " oauth_refresh_token_encrypted, token_expires_at) VALUES ('" AGENCY "', 'Cli',"
		    " 'co-cli', 'x', 'y', now() + interval '1 day')");
	expect(1, "job not found", NULL, (const char *[]){"job", "show", ABSENT, NULL});
	expect(1, "job not found", NULL, (const char *[]){"job", "cancel", ABSENT, NULL});
	char *done = job_in(c, "COMPLETED");
	expect(1, "the job is already COMPLETED", NULL,
	       (const char *[]){"job", "cancel", done, NULL});
	char *pending = job_in(c, "PENDING");
	expect(0, "cancelled", NULL, (const char *[]){"job", "cancel", pending, NULL});
	char *st = tl_sqlf(c, "SELECT status FROM provisioning_jobs WHERE id = '%s'", pending);
	ck_assert_str_eq(st, "CANCELLED");
	expect(1, "the job is already CANCELLED", NULL,
	       (const char *[]){"job", "cancel", pending, NULL});
	expect(0, "status    COMPLETED", NULL, (const char *[]){"job", "show", done, NULL});
	expect(0, "status    CANCELLED", NULL, (const char *[]){"job", "show", pending, NULL});
	/* a running job being cancelled: show says it stops after its current step */
	char *running = job_in(c, "IN_PROGRESS");
	tl_execf(c, "UPDATE provisioning_jobs SET cancel_requested = true WHERE id = '%s'",
		 running);
	expect(0, "status    IN_PROGRESS (cancel requested: stops after its current step)", NULL,
	       (const char *[]){"job", "show", running, NULL});
	char *client = tl_write_temp("cli-client", "{\"name\":\"A\",\"email\":\"a@x.example\"}");
	expect(1, "agency not found", NULL,
	       (const char *[]){"job", "submit", "--agency", ABSENT, "--client-json", client,
				NULL});
	char *bad_client = tl_write_temp("cli-client", "{\"name\":\"A\"}");
	/* every problem, the fields the default pipeline's CREATE_USER needs among them */
	expect(1,
	       "the request has 3 invalid fields:\n  client_data.email: required\n"
	       "  client_data.first_name: required by step CREATE_USER of the agency's pipeline",
	       NULL,
	       (const char *[]){"job", "submit", "--agency", AGENCY, "--client-json", bad_client,
				NULL});
	unlink(client);
	unlink(bad_client);
	free(client);
	free(bad_client);
	free(st);
	free(done);
	free(pending);
	free(running);
	PQfinish(c);
}
END_TEST

/* The README's Lua step, configured wrongly: refused before it runs, with
 * every problem named as a pipeline would name it. */
START_TEST(step_run_checks_the_config_schema)
{
	char *script = xasprintf("%s/steps/location_tag.lua", tl_env("GHL_SOURCE_DIR"));
	char *client = tl_write_temp("cli-client", "{\"name\":\"A\",\"email\":\"a@x.example\"}");
	const char *args[] = {"step",
			      "run",
			      script,
			      "--client-json",
			      client,
			      "--config",
			      "{\"nam\":\"vip\",\"name\":\"\"}",
			      NULL};
	const char *env[] = {"GHL_AGENT_DEMO=on", "GHL_AGENT_GHL_API_BASE=http://127.0.0.1:9",
			     "GHL_AGENT_GHL_OAUTH_AUTHORIZE_URL=http://127.0.0.1:9/", NULL};
	char *out;
	ck_assert_int_eq(agent(&out, env, args), 2);
	ck_assert_msg(strstr(out, "--config.nam: unknown field") && strstr(out, "--config.name:") &&
			      strstr(out, "(step location_tag)") && strstr(out, "Usage:") &&
			      !strstr(out, "status:"),
		      "%s", out);
	free(out);
	args[6] = "[1]";
	expect(2, "--config must be a JSON object", env, args);
	unlink(client);
	free(client);
	free(script);
}
END_TEST

/* With demo = on and no GHL URL, the GHL side refuses to start rather than
 * talk to the real GHL; with the URLs set, it would go on. */
START_TEST(demo_mode_never_defaults_to_the_real_ghl)
{
	PGconn *c = tl_connect(dsn);
	tl_execf(c, "INSERT INTO agencies (name, ghl_agency_id, oauth_access_token_encrypted,"
		    " oauth_refresh_token_encrypted, token_expires_at) VALUES ('Demo', 'co-demo',"
		    " 'x', 'y', now() + interval '1 day') ON CONFLICT DO NOTHING");
	char *id = tl_sql_value(c, "SELECT id FROM agencies WHERE ghl_agency_id = 'co-demo'");
	PQfinish(c);
	char *script = xasprintf("%s/steps/location_tag.lua", tl_env("GHL_SOURCE_DIR"));
	char *client = tl_write_temp("cli-client", "{\"name\":\"A\",\"email\":\"a@x.example\"}");
	const char *args[] = {"step", "run", script, "--client-json", client, "--agency", id, NULL};
	const char *none[] = {"GHL_AGENT_DEMO=on", NULL};
	expect(1, "demo mode: ghl_api_base is not set", none, args);
	const char *half[] = {"GHL_AGENT_DEMO=on", "GHL_AGENT_GHL_API_BASE=http://127.0.0.1:9",
			      NULL};
	expect(1, "demo mode: ghl_oauth_authorize_url is not set", half, args);
	unlink(client);
	free(client);
	free(script);
	free(id);
}
END_TEST

/* `plugins`: columns as wide as the longest name, paths below the current
 * directory shown relative (as the README shows them). */
START_TEST(plugins_relative_and_aligned)
{
	ck_assert_int_eq(chdir(tl_env("GHL_SOURCE_DIR")), 0);
	char *out;
	ck_assert_int_eq(agent(&out, NULL, (const char *[]){"plugins", NULL}), 0);
	ck_assert_msg(strstr(out, " Lua  steps/location_tag.lua\n"), "%s", out);
	/* every step row has its KIND column at the header's offset */
	const char *hdr = strstr(out, "KIND");
	ck_assert_ptr_nonnull(hdr);
	size_t col = (size_t)(hdr - out);
	const char *row = strstr(out, "custom_values_from_template ");
	ck_assert_msg(row, "%s", out);
	const char *line = strstr(out, "location_tag ");
	ck_assert_msg(line && !strncmp(line + col, "Lua ", 4) && !strncmp(row + col, "Lua ", 4),
		      "misaligned:\n%s", out);
	free(out);
}
END_TEST

static void setup(void)
{
	dsn = tl_create_migrated_db("cli");
}

static void teardown(void)
{
	tl_drop_db(dsn);
	free(dsn);
}

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *t = tcase_create("cli");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, arguments_first_then_refusals_in_the_apis_words);
	tcase_add_test(t, step_run_checks_the_config_schema);
	tcase_add_test(t, demo_mode_never_defaults_to_the_real_ghl);
	tcase_add_test(t, plugins_relative_and_aligned);
	suite_add_tcase(s, t);
	return tl_run_suite(s);
}
