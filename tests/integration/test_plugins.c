/* test_plugins.c — the plugin loader: each refusal named with file and
 * reason, the agent running on without the refused plugins; the out-of-tree
 * example (docs/examples/plugin/custom_field.c) built against the installed
 * header and run by the installed agent against ghl-sim (create, reuse,
 * rollback); plugins reloaded on SIGHUP; `step run` of a plugin. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ghl_harness.h"
#include "testlib.h"
#include "util.h"

static char *make_plugin_dir(void)
{
	char tmpl[] = "/tmp/ghl-plugins-XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl));
	const char *b = tl_env("GHL_BUILD_DIR");
	char *cmd = xasprintf("cp %s/plugins/noop.so %s/test-plugins/*.so %s/ && "
			      "echo 'not an ELF file' > %s/text.so",
			      b, b, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	return dir;
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static void expect(const char *out, const char *dir, const char *file, const char *reason)
{
	char *needle = xasprintf("%s/%s: %s", dir, file, reason);
	ck_assert_msg(strstr(out, needle), "missing refusal \"%s\" in:\n%s", needle, out);
	free(needle);
}

START_TEST(each_refusal_names_file_and_reason)
{
	char *dir = make_plugin_dir();
	char *env_dir = xasprintf("GHL_AGENT_PLUGIN_DIR=%s", dir);
	char *env[] = {env_dir, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"plugins", NULL};
	char *out;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	expect(out, dir, "bad_major.so", "ABI major version 2, the agent speaks 1");
	expect(out, dir, "bad_minor.so", "ABI minor version 4 is newer than the agent's 3");
	expect(out, dir, "bad_size.so", "struct sizes differ from the agent's");
	expect(out, dir, "no_entry.so", "missing entry point ghl_plugin_entry()");
	expect(out, dir, "init_fails.so", "init() failed: missing licence file /etc/example.lic");
	expect(out, dir, "zz_dup_name.so", "duplicate step name \"NOOP\": already registered by");
	expect(out, dir, "bad_schema.so", "step BAD_SCHEMA: bad config schema");
	expect(out, dir, "small_def.so", "struct sizes smaller than ABI 1.0's");
	expect(out, dir, "text.so", "not a loadable shared object");
	/* the good ones are there, the refused ones are not */
	ck_assert_msg(strstr(out, "NOOP ") && strstr(out, "EXTRA_ONE") && strstr(out, "EXTRA_TWO"),
		      "%s", out);
	/* built against the ABI 1.0 header: smaller structs, still loaded */
	ck_assert_msg(strstr(out, "ABI_1_0 ") && !strstr(out, "abi_1_0.so:"), "%s", out);
	ck_assert_msg(!strstr(out, "BAD_MAJOR ") && !strstr(out, "INIT_FAILS "), "%s", out);
	free(out);

	/* the daemon runs on without them and says why in its log */
	char *dsn = tl_create_db("plugins");
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	int port = tl_free_port();
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", port);
	char *serve_env[] = {
		env_dir,
		env_dsn,
		env_listen,
		(char *)"GHL_AGENT_TOKEN_KEYS=1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		(char *)"GHL_AGENT_DEFAULT_PIPELINE={\"pipeline\":[{\"step\":\"NOOP\"}]}",
		NULL};
	char *serve[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	char *migrate[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
	char *migrate_env[] = {env_dsn, NULL};
	ck_assert_msg(tl_run(migrate, migrate_env, &out) == 0, "migrate: %s", out);
	free(out);
	char log[] = "/tmp/ghl-plugins-log-XXXXXX";
	close(mkstemp(log));
	pid_t pid = tl_spawn(serve, serve_env, log);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	tl_wait_ready(base, pid, log, TL_DAEMON_TIMEOUT_MS);
	char *text = tl_read_file(log);
	ck_assert_msg(strstr(text, "step refused") && strstr(text, "init_fails.so"), "%s", text);
	free(text);
	tl_stop(pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", log);
	unlink(log);

	/* a default pipeline naming an unknown step stops the start with a hint */
	char *bad_env[] = {
		env_dir,
		env_dsn,
		env_listen,
		(char *)"GHL_AGENT_TOKEN_KEYS=1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		(char *)"GHL_AGENT_DEFAULT_PIPELINE={\"pipeline\":[{\"step\":\"NOPE\"}]}",
		NULL};
	ck_assert_int_eq(tl_run(serve, bad_env, &out), 1);
	ck_assert_msg(strstr(out, "default_pipeline") && strstr(out, "pipeline[0].step") &&
			      strstr(out, "unknown step \\\"NOPE\\\"") &&
			      strstr(out, "known steps"),
		      "%s", out);
	free(out);
	free(env_listen);
	free(env_dsn);
	tl_drop_db(dsn);
	free(dsn);
	free(env_dir);
	rm_rf(dir);
	free(dir);
}
END_TEST

/* The 8 built-ins are linked into ghl-agent: with an empty plugin_dir (or
 * none) they are all there and the default pipeline validates, so the daemon
 * starts; a .so in plugin_dir with a step of a built-in's name replaces it
 * (zz_dup_name.so's NOOP 9), where two plugin files of one name still clash. */
START_TEST(builtins_are_linked_in_and_a_so_overrides_them)
{
	char tmpl[] = "/tmp/ghl-plugins-XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl));
	char *env_dir = xasprintf("GHL_AGENT_PLUGIN_DIR=%s", dir);
	char *env[] = {env_dir, NULL};
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"plugins", NULL};
	char *out;
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	static const char *const builtins[] = {"CREATE_CONTACT    ",
					       "built-in create_contact",
					       "CREATE_LOCATION",
					       "CREATE_USER",
					       "NOOP",
					       "NOTIFY_WEBHOOK",
					       "SET_CUSTOM_VALUES",
					       "VALIDATE_SNAPSHOT",
					       "WAIT_FOR_SNAPSHOT",
					       "built-in wait_for_snapshot"};
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		ck_assert_msg(strstr(out, builtins[i]), "%s missing:\n%s", builtins[i], out);
	ck_assert_msg(!strstr(out, ".so"), "%s", out);
	free(out);

	/* the daemon starts on them: the default pipeline names only built-ins */
	char *dsn = tl_create_db("plugins");
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *migrate[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", NULL};
	char *migrate_env[] = {env_dsn, NULL};
	ck_assert_msg(tl_run(migrate, migrate_env, &out) == 0, "migrate: %s", out);
	free(out);
	int port = tl_free_port();
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", port);
	char *serve_env[] = {
		env_dir, env_dsn, env_listen,
		(char *)"GHL_AGENT_TOKEN_KEYS=1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		NULL};
	char *serve[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	char log[] = "/tmp/ghl-plugins-log-XXXXXX";
	close(mkstemp(log));
	pid_t pid = tl_spawn(serve, serve_env, log);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	tl_wait_ready(base, pid, log, TL_DAEMON_TIMEOUT_MS);
	tl_stop(pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", log);
	unlink(log);
	tl_drop_db(dsn);
	free(dsn);
	free(env_listen);
	free(env_dsn);

	/* a .so of a built-in's step name overrides it; a second .so of it clashes */
	const char *b = tl_env("GHL_BUILD_DIR");
	char *cmd = xasprintf("cp %s/test-plugins/zz_dup_name.so %s/", b, dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	ck_assert_msg(strstr(out, "zz_dup_name.so") && !strstr(out, "built-in noop") &&
			      !strstr(out, "duplicate"),
		      "%s", out);
	free(out);
	cmd = xasprintf("cp %s/plugins/noop.so %s/", b, dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	expect(out, dir, "zz_dup_name.so", "duplicate step name \"NOOP\": already registered by");
	free(out);
	free(env_dir);
	rm_rf(dir);
	free(dir);
}
END_TEST

/* A new database migrated by the agent bin, holding one connected agency
 * (id) whose pipeline is the JSON array steps; *dsn is malloc'd. */
static PGconn *agency_db(const char *bin, const char *id, const char *steps, char **dsn)
{
	*dsn = tl_create_db("plugins");
	char *env_dsn = xasprintf("DATABASE_URL=%s", *dsn);
	char *env[] = {env_dsn, NULL};
	char *argv[] = {(char *)bin, (char *)"migrate", NULL};
	char *out;
	ck_assert_msg(tl_run(argv, env, &out) == 0, "migrate: %s", out);
	free(out);
	free(env_dsn);
	PGconn *c = tl_connect(*dsn);
	tl_execf(c,
		 "INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted, "
		 "oauth_refresh_token_encrypted, token_expires_at, settings_json) VALUES ('%s', "
		 "'Plugins', 'plugins-co', 'x', 'x', now() + interval '1 day', "
		 "'{\"pipeline\":%s}')",
		 id, steps);
	return c;
}

static int sh(const char *cmd, char **out)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
	return tl_run(argv, NULL, out);
}

START_TEST(out_of_tree_plugin_against_installed_header)
{
	char tmpl[] = "/tmp/ghl-install-XXXXXX";
	char *prefix = xstrdup(mkdtemp(tmpl));
	char *out;
	char *cmd = xasprintf("cmake --install '%s' --prefix '%s'", tl_env("GHL_BUILD_DIR"),
			      prefix);
	ck_assert_msg(sh(cmd, &out) == 0, "install: %s", out);
	free(out);
	free(cmd);
	/* build the example with only the installed header, found by pkg-config */
	cmd = xasprintf("export PKG_CONFIG_PATH='%s/share/pkgconfig'; "
			"cc $(pkg-config --cflags ghl-agent-plugin) -Wall -Wextra -Werror -shared "
			"-fPIC -o \"$(pkg-config --variable=plugindir ghl-agent-plugin)/"
			"custom_field.so\" '%s/docs/examples/plugin/custom_field.c' 2>&1 && "
			"pkg-config --cflags ghl-agent-plugin",
			prefix, tl_env("GHL_SOURCE_DIR"));
	int rc = sh(cmd, &out);
	ck_assert_msg(rc == 0, "building the example: %s", out);
	/* the flags name the installed header's directory, <prefix>/include/ghl-agent */
	const char *inc = strstr(out, "-I");
	ck_assert_msg(inc, "no -I in pkg-config's cflags: %s", out);
	char *dir = xstrndup(inc + 2, strcspn(inc + 2, " \n"));
	char *real_dir = realpath(dir, NULL), *real_prefix = realpath(prefix, NULL);
	ck_assert_msg(real_dir && real_prefix, "-I%s or %s does not exist", dir, prefix);
	char *want = xasprintf("%s/include/ghl-agent", real_prefix);
	ck_assert_str_eq(real_dir, want);
	char *hdr = xasprintf("%s/ghl_step.h", real_dir);
	ck_assert_msg(access(hdr, R_OK) == 0, "%s is not installed", hdr);
	free(hdr);
	free(want);
	free(real_prefix);
	free(real_dir);
	free(dir);
	free(out);
	free(cmd);

	/* the installed agent finds its built-in plugins and the new one */
	char *bin = xasprintf("%s/bin/ghl-agent", prefix);
	char *argv[] = {bin, (char *)"plugins", NULL};
	char *env[] = {(char *)"GHL_AGENT_PLUGIN_DIR=", NULL};
	ck_assert_int_eq(tl_run(argv, env, &out), 0);
	ck_assert_msg(strstr(out, "CREATE_CUSTOM_FIELD") && strstr(out, "CREATE_LOCATION") &&
			      strstr(out, prefix) && !strstr(out, "refused"),
		      "%s", out);
	free(out);

	/* ... and runs it against a GHL (ghl-sim): the harness starts the installed agent */
	char *build_bin = xstrdup(tl_env("GHL_AGENT_BIN"));
	setenv("GHL_AGENT_BIN", bin, 1);
	struct hsim sim;
	hsim_start(&sim, NULL);
	char *dsn = tl_create_db("plugins_oot");
	hmigrate(dsn); /* with the installed migrations */
	PGconn *c = tl_connect(dsn);
	struct hagent agent;
	const char *extra[] = {"GHL_AGENT_PLUGIN_DIR=", "GHL_AGENT_POLL_INTERVAL=100ms", NULL};
	hagent_start(&agent, dsn, &sim, extra);
	char *agency = hconnect_agency(&agent, c, "co-oot-example");
	tl_execf(c,
		 "UPDATE agencies SET settings_json = '{\"pipeline\":["
		 "{\"step\":\"CREATE_LOCATION\",\"config\":{\"find_existing\":\"always\"}},"
		 "{\"step\":\"CREATE_CUSTOM_FIELD\","
		 "\"config\":{\"name\":\"Preferred dentist\"}}]}' WHERE id = '%s'",
		 agency);
	const char *client = "{\"name\":\"Acme Dental\",\"email\":\"owner@acme.example\","
			     "\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}";
	char *job = hjob_add(c, agency, client, NULL);
	hjob_assert_completed(c, job, agent.log);
	char *loc = tl_sqlf(c, "SELECT location_id FROM provisioning_jobs WHERE id = '%s'", job);
	char *field = hjob_output(c, job, "CREATE_CUSTOM_FIELD", "custom_field_id");
	char *v = hjob_output(c, job, "CREATE_CUSTOM_FIELD", "custom_field_reused");
	ck_assert_str_eq(v, "false");
	free(v);
	v = hjob_output(c, job, "CREATE_CUSTOM_FIELD", "custom_field_key");
	ck_assert_str_eq(v, "contact.preferred_dentist");
	free(v);
	struct json *state = hsim_admin(&sim, "GET", "state", NULL);
	struct json *fields = NULL;
	for (size_t i = 0; i < json_len(json_get(state, "locations")); i++)
		if (str_eq(json_get_str(json_at(json_get(state, "locations"), i), "id"), loc))
			fields = json_get(json_at(json_get(state, "locations"), i), "customFields");
	ck_assert_msg(json_len(fields) == 1, "custom fields of %s: %zu", loc, json_len(fields));
	ck_assert_str_eq(json_get_str(json_at(fields, 0), "id"), field);
	ck_assert_str_eq(json_get_str(json_at(fields, 0), "name"), "Preferred dentist");
	ck_assert_str_eq(json_get_str(json_at(fields, 0), "dataType"), "TEXT");
	json_free(state);

	/* the same client again: location and field are found, not made twice */
	char *again = hjob_add(c, agency, client, NULL);
	hjob_assert_completed(c, again, agent.log);
	v = hjob_output(c, again, "CREATE_CUSTOM_FIELD", "custom_field_id");
	ck_assert_str_eq(v, field);
	free(v);
	v = hjob_output(c, again, "CREATE_CUSTOM_FIELD", "custom_field_reused");
	ck_assert_str_eq(v, "true");
	free(v);
	ck_assert_int_eq(hsim_stat(&sim, "locations_created"), 1);

	/* a later step fails for good: rollback deletes the field this job made */
	tl_execf(c,
		 "UPDATE agencies SET settings_json = '{\"max_retries\":0,\"on_failure\":"
		 "\"rollback\",\"pipeline\":[{\"step\":\"CREATE_LOCATION\"},"
		 "{\"step\":\"CREATE_CUSTOM_FIELD\",\"config\":{\"name\":\"Recall date\","
		 "\"data_type\":\"DATE\"}},{\"step\":\"NOTIFY_WEBHOOK\",\"config\":"
		 "{\"url\":\"http://127.0.0.1:1/hook\",\"secret\":\"0123456789abcdef\"}}]}' "
		 "WHERE id = '%s'",
		 agency);
	char *doomed = hjob_add(c, agency, "{\"name\":\"Gone Soon\",\"email\":\"x@gone.example\"}",
				NULL);
	char *st = hjob_wait(c, doomed, 30000, agent.log);
	ck_assert_str_eq(st, "FAILED");
	char *err = tl_sqlf(c, "SELECT error_message FROM provisioning_jobs WHERE id = '%s'",
			    doomed);
	ck_assert_msg(strstr(err, "undid CREATE_CUSTOM_FIELD") &&
			      strstr(err, "undid CREATE_LOCATION"),
		      "%s", err);
	struct json *stats = hsim_admin(&sim, "GET", "stats", NULL);
	int64_t deleted = 0;
	json_get_int(json_get(json_get(stats, "requests"),
			      "DELETE /locations/{locationId}/customFields/{id}"),
		     "200", &deleted);
	ck_assert_int_eq(deleted, 1);
	json_free(stats);
	free(err);
	free(st);
	free(doomed);

	hagent_stop(&agent);
	unlink(agent.log);
	hsim_stop(&sim);
	setenv("GHL_AGENT_BIN", build_bin, 1);
	free(build_bin);
	free(again);
	free(field);
	free(loc);
	free(job);
	free(agency);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
	free(bin);
	rm_rf(prefix);
	free(prefix);
}
END_TEST

/* ---- reload on SIGHUP, and `step run` of a plugin ---- */

#define KEYS "GHL_AGENT_TOKEN_KEYS=1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* Install build/test-plugins/reload/<version>.so as dir/reload_probe.so the
 * way a deploy should: a new file renamed over the old one. */
static void install_probe(const char *dir, const char *version)
{
	char *cmd = xasprintf("cp '%s/test-plugins/reload/%s.so' '%s/.new.so' && "
			      "mv '%s/.new.so' '%s/reload_probe.so'",
			      tl_env("GHL_BUILD_DIR"), version, dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static char *probe_job(PGconn *c, int sleep_ms)
{
	return tl_sqlf(c,
		       "INSERT INTO provisioning_jobs (agency_id, client_data_json) VALUES "
		       "('22222222-2222-4222-8222-222222222222', '{\"name\":\"Probe\","
		       "\"email\":\"p@probe.example\",\"sleep_ms\":%d}') RETURNING id",
		       sleep_ms);
}

/* Wait for the job to end; returns the version RELOAD_PROBE ran with. */
static char *probe_version(PGconn *c, const char *job, const char *log)
{
	char *st = NULL;
	for (int i = 0; i < 300; i++) {
		free(st);
		st = tl_sqlf(c, "SELECT status FROM provisioning_jobs WHERE id = '%s'", job);
		if (!strcmp(st, "COMPLETED") || !strcmp(st, "FAILED"))
			break;
		usleep(50000);
	}
	ck_assert_msg(!strcmp(st, "COMPLETED"), "job %s %s; log: %s", job, st,
		      tl_log_tail(log, 4000));
	free(st);
	return tl_sqlf(c,
		       "SELECT details_json->'outputs'->>'version' FROM provisioning_logs "
		       "WHERE job_id = '%s' AND step = 'RELOAD_PROBE' AND status = 'COMPLETED'",
		       job);
}

/* Does the process map a file whose path contains needle? */
static int maps_contain(pid_t pid, const char *needle)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	char *maps = tl_read_file(path);
	int found = strstr(maps, needle) != NULL;
	free(maps);
	return found;
}

START_TEST(plugins_reload_on_sighup)
{
	char tmpl[] = "/tmp/ghl-reload-XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl));
	install_probe(dir, "reload_v1");
	char *dsn;
	PGconn *c = agency_db(tl_env("GHL_AGENT_BIN"), "22222222-2222-4222-8222-222222222222",
			      "[{\"step\":\"RELOAD_PROBE\"}]", &dsn);
	char *env_dsn = xasprintf("DATABASE_URL=%s", dsn);
	char *out;
	char *env_dir = xasprintf("GHL_AGENT_PLUGIN_DIR=%s", dir);
	int port = tl_free_port();
	char *env_listen = xasprintf("GHL_AGENT_LISTEN=127.0.0.1:%d", port);
	char *senv[] = {
		env_dsn,
		env_dir,
		env_listen,
		(char *)KEYS,
		(char *)"GHL_AGENT_POLL_INTERVAL=50ms",
		(char *)"GHL_AGENT_LOG_LEVEL=debug",
		(char *)"GHL_AGENT_DEFAULT_PIPELINE={\"pipeline\":[{\"step\":\"RELOAD_PROBE\"}]}",
		NULL};
	char *sargv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"serve", NULL};
	char log[] = "/tmp/ghl-reload-log-XXXXXX";
	close(mkstemp(log));
	pid_t pid = tl_spawn(sargv, senv, log);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	tl_wait_ready(base, pid, log, TL_DAEMON_TIMEOUT_MS);

	/* job A starts with version 1 and waits inside its step */
	char *job_a = probe_job(c, 3000);
	for (int i = 0; i < 200 && !tl_sqlf_n(c,
					      "SELECT count(*) FROM provisioning_logs WHERE "
					      "job_id = '%s' AND status = 'STARTED'",
					      job_a);
	     i++)
		usleep(50000);
	ck_assert_msg(tl_sqlf_n(c,
				"SELECT count(*) FROM provisioning_logs WHERE job_id = '%s' "
				"AND status = 'STARTED'",
				job_a) == 1,
		      "job A did not start: %s", tl_log_tail(log, 4000));

	/* version 2 is installed and loaded on SIGHUP while A waits */
	char *v1_file = xasprintf("%s/reload_probe.so", dir);
	install_probe(dir, "reload_v2");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	ck_assert_msg(tl_wait_file_contains(log, "plugin reloaded", 10000), "no reload: %s",
		      tl_log_tail(log, 4000));
	/* the old version is still mapped: A is in it */
	ck_assert_msg(maps_contain(pid, v1_file), "version 1 unmapped while job A runs in it");
	char *job_b = probe_job(c, 0);
	char *v = probe_version(c, job_b, log);
	ck_assert_msg(!strcmp(v, "2"), "a new job ran version %s, not 2", v);
	free(v);
	v = probe_version(c, job_a, log);
	ck_assert_msg(!strcmp(v, "1"), "the job in flight ran version %s, not 1", v);
	free(v);
	/* its last user gone, version 1 is unmapped */
	for (int i = 0; i < 100 && maps_contain(pid, v1_file); i++)
		usleep(50000);
	ck_assert_msg(!maps_contain(pid, v1_file), "version 1 still mapped after its last run");

	/* a refused new version leaves version 2 running, and says why */
	install_probe(dir, "reload_bad");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	ck_assert_msg(
		tl_wait_file_contains(log, "refused on purpose (the running version stays)", 10000),
		"no refusal: %s", tl_log_tail(log, 4000));
	char *job_c = probe_job(c, 0);
	v = probe_version(c, job_c, log);
	ck_assert_msg(!strcmp(v, "2"), "after the refusal a job ran version %s, not 2", v);
	free(v);
	tl_stop(pid, SIGTERM, TL_DAEMON_TIMEOUT_MS, "ghl-agent serve", log);
	unlink(log);

	/* `ghl-agent step run` takes a plugin: its only step, or the one named */
	char *client = tl_write_temp("plugin-client", "{\"name\":\"Acme\"}");
	char *noop = xasprintf("%s/plugins/noop.so", tl_env("GHL_BUILD_DIR"));
	char *extra = xasprintf("%s/test-plugins/good_extra.so", tl_env("GHL_BUILD_DIR"));
	char *renv[] = {env_dsn, (char *)KEYS, (char *)"GHL_AGENT_LOG_LEVEL=error", NULL};
	/* the agency is named: its placeholder tokens got it marked needs_reconnect at start */
	char *rargv[] = {(char *)tl_env("GHL_AGENT_BIN"),
			 (char *)"step",
			 (char *)"run",
			 noop,
			 (char *)"--client-json",
			 client,
			 (char *)"--config",
			 (char *)"{\"output\":\"from a .so\"}",
			 (char *)"--agency",
			 (char *)"22222222-2222-4222-8222-222222222222",
			 NULL,
			 NULL,
			 NULL};
	int rc = tl_run(rargv, renv, &out);
	ck_assert_msg(rc == 0 && strstr(out, "status: COMPLETED") &&
			      strstr(out, "\"noop\":\"from a .so\"") &&
			      strstr(out, "step: NOOP 1.0.0"),
		      "exit %d: %s", rc, out);
	free(out);
	rargv[3] = extra;
	rargv[7] = (char *)"{}";
	rc = tl_run(rargv, renv, &out);
	ck_assert_msg(rc == 1 && strstr(out, "has 2 steps (EXTRA_ONE, EXTRA_TWO): name one with "
					     "--step"),
		      "exit %d: %s", rc, out);
	free(out);
	rargv[10] = (char *)"--step";
	rargv[11] = (char *)"EXTRA_TWO";
	rc = tl_run(rargv, renv, &out);
	ck_assert_msg(rc == 0 && strstr(out, "step: EXTRA_TWO 2.0.0") &&
			      strstr(out, "status: COMPLETED"),
		      "exit %d: %s", rc, out);
	free(out);
	unlink(client);
	free(client);
	free(noop);
	free(extra);

	free(job_a);
	free(job_b);
	free(job_c);
	free(v1_file);
	PQfinish(c);
	tl_drop_db(dsn);
	free(dsn);
	free(env_dsn);
	free(env_dir);
	free(env_listen);
	rm_rf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugins");
	TCase *tc = tcase_create("plugins");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, each_refusal_names_file_and_reason);
	tcase_add_test(tc, builtins_are_linked_in_and_a_so_overrides_them);
	tcase_add_test(tc, out_of_tree_plugin_against_installed_header);
	tcase_add_test(tc, plugins_reload_on_sighup);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
