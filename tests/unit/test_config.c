/* test_config.c — config precedence, parsing, errors and masking. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testlib.h"

static void clear_env(void)
{
	unsetenv("DATABASE_URL");
	unsetenv("GHL_AGENT_DATABASE_URL");
	unsetenv("GHL_AGENT_LISTEN");
	unsetenv("GHL_AGENT_LOG_LEVEL");
	unsetenv("GHL_AGENT_LOG_FORMAT");
	unsetenv("GHL_AGENT_SHUTDOWN_TIMEOUT");
	unsetenv("GHL_AGENT_GHL_CLIENT_SECRET");
	unsetenv("GHL_AGENT_GHL_CLIENT_SECRET_FILE");
	unsetenv("GHL_AGENT_CONFIG");
}

static struct config *load_text(const char *text, struct err *e)
{
	char *path = tl_write_temp("ghl-conf", text);
	struct config *c = config_load(path, e);
	unlink(path);
	free(path);
	return c;
}

START_TEST(defaults)
{
	clear_env();
	struct err e;
	struct config *c = config_load(NULL, &e);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->listen, "127.0.0.1:8080");
	ck_assert_str_eq(c->log_level, "info");
	ck_assert_str_eq(c->log_format, "json");
	ck_assert_int_eq(c->shutdown_timeout_ms, 30000);
	ck_assert_ptr_null(c->path);
	config_free(c);
}
END_TEST

START_TEST(precedence)
{
	clear_env();
	struct err e;
	/* file beats default */
	struct config *c = load_text("listen = 0.0.0.0:9000\nlog_level = debug\n"
				     "shutdown_timeout = 5s\ndatabase_url = host=filehost\n",
				     &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_str_eq(c->listen, "0.0.0.0:9000");
	ck_assert_str_eq(c->log_level, "debug");
	ck_assert_int_eq(c->shutdown_timeout_ms, 5000);
	ck_assert_str_eq(c->database_url, "host=filehost");
	config_free(c);

	/* environment beats file; DATABASE_URL sets database_url */
	setenv("GHL_AGENT_LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", "host=envhost", 1);
	setenv("GHL_AGENT_SHUTDOWN_TIMEOUT", "1500ms", 1);
	c = load_text("listen = 0.0.0.0:9000\nlog_level = debug\ndatabase_url = host=filehost\n",
		      &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_str_eq(c->listen, "0.0.0.0:9000");
	ck_assert_str_eq(c->log_level, "warn");
	ck_assert_str_eq(c->database_url, "host=envhost");
	ck_assert_int_eq(c->shutdown_timeout_ms, 1500);
	struct buf b;
	buf_init(&b);
	config_print(c, &b);
	ck_assert_msg(strstr(b.data, "log_level = warn  # env:GHL_AGENT_LOG_LEVEL"), "%s", b.data);
	ck_assert_msg(strstr(b.data, ":1\n"), "listen should name file:line: %s", b.data);
	buf_clear(&b);
	config_free(c);

	/* GHL_AGENT_DATABASE_URL beats DATABASE_URL (more specific) */
	setenv("GHL_AGENT_DATABASE_URL", "host=specific", 1);
	c = config_load(NULL, &e);
	ck_assert_str_eq(c->database_url, "host=specific");
	config_free(c);
	clear_env();
}
END_TEST

START_TEST(comments_and_quotes)
{
	clear_env();
	struct err e;
	struct config *c = load_text("# a comment\n\n  log_format = \"text\"  # trailing\n"
				     "database_url = \"host=x password='a#b'\"\n",
				     &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_str_eq(c->log_format, "text");
	ck_assert_str_eq(c->database_url, "host=x password='a#b'");
	config_free(c);
}
END_TEST

static void expect_error(const char *text, const char *needle1, const char *needle2)
{
	struct err e;
	e.msg[0] = '\0';
	struct config *c = load_text(text, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, needle1), "error \"%s\" lacks \"%s\"", e.msg, needle1);
	ck_assert_msg(strstr(e.msg, needle2), "error \"%s\" lacks \"%s\"", e.msg, needle2);
	ck_assert_msg(strstr(e.msg, "/tmp/ghl-conf-"), "error \"%s\" lacks the file", e.msg);
}

START_TEST(errors_name_file_line_key)
{
	clear_env();
	expect_error("listen = 1.2.3.4:80\nbogus_key = 1\n", ":2: unknown key \"bogus_key\"",
		     "bogus");
	expect_error("\n\nlog_level = loud\n", ":3: key \"log_level\"",
		     "invalid value \"loud\" (expected one of debug|info|warn|error)");
	expect_error("log_format = yaml\n", ":1: key \"log_format\"", "json|text");
	expect_error("shutdown_timeout = soon\n", ":1: key \"shutdown_timeout\"",
		     "invalid duration \"soon\"");
	expect_error("shutdown_timeout = -5\n", "shutdown_timeout", "invalid duration");
	expect_error("listen = localhost\n", ":1: key \"listen\"", "expected HOST:PORT");
	expect_error("listen = 127.0.0.1:99999\n", "key \"listen\"", "0 to 65535");
	expect_error("just words\n", ":1: expected \"key = value\"", "just words");
	expect_error("log_level = \"debug\n", ":1: key \"log_level\"", "unterminated");

	struct err e;
	struct config *c = config_load("/nonexistent/ghl.conf", &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "/nonexistent/ghl.conf") && strstr(e.msg, "No such file"), "%s",
		      e.msg);
}
END_TEST

START_TEST(env_errors_name_variable)
{
	clear_env();
	setenv("GHL_AGENT_LOG_FORMAT", "xml", 1);
	struct err e;
	struct config *c = config_load(NULL, &e);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "env:GHL_AGENT_LOG_FORMAT") && strstr(e.msg, "\"xml\""), "%s",
		      e.msg);
	clear_env();
}
END_TEST

START_TEST(secrets_masked_and_from_file)
{
	clear_env();
	char *secret = tl_write_temp("ghl-secret", "s3cr3t-value\n");
	setenv("GHL_AGENT_GHL_CLIENT_SECRET_FILE", secret, 1);
	setenv("DATABASE_URL", "postgresql://agent:hunter2pass@db.example:5432/ghl?sslmode=require",
	       1);
	struct err e;
	struct config *c = config_load(NULL, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_str_eq(c->ghl_client_secret, "s3cr3t-value");
	struct buf b;
	buf_init(&b);
	config_print(c, &b);
	ck_assert_msg(!strstr(b.data, "s3cr3t"), "secret printed: %s", b.data);
	ck_assert_msg(!strstr(b.data, "hunter2pass"), "password printed: %s", b.data);
	ck_assert_msg(strstr(b.data, "ghl_client_secret = ********"), "%s", b.data);
	ck_assert_msg(strstr(b.data, "postgresql://agent:****@db.example:5432/ghl?sslmode=require"),
		      "%s", b.data);
	buf_clear(&b);
	config_free(c);
	unlink(secret);
	free(secret);
	clear_env();
}
END_TEST

/* GHL_AGENT_TOKEN_KEYS_FILE names token_keys_file (a file of keys), the key's
 * own; it does not also load token_keys from the file (which made every key a
 * duplicate of itself). */
START_TEST(token_keys_file_from_env)
{
	clear_env();
	char *keys = tl_write_temp("ghl-keys", "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
	setenv("GHL_AGENT_TOKEN_KEYS_FILE", keys, 1);
	struct err e;
	struct config *c = config_load(NULL, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	ck_assert_str_eq(c->token_keys_file, keys);
	ck_assert_str_eq(c->token_keys, "");
	config_free(c);
	unsetenv("GHL_AGENT_TOKEN_KEYS_FILE");
	unlink(keys);
	free(keys);
}
END_TEST

START_TEST(mask_dsn_forms)
{
	char *m = config_mask_dsn("host=h user=u password=topsecret dbname=d");
	ck_assert_str_eq(m, "host=h user=u password=**** dbname=d");
	free(m);
	m = config_mask_dsn("host=h password = 'with space' dbname=d");
	ck_assert_msg(!strstr(m, "with space"), "%s", m);
	free(m);
	m = config_mask_dsn("postgresql://u@h/db?password=abc&sslmode=disable");
	ck_assert_str_eq(m, "postgresql://u@h/db?password=****&sslmode=disable");
	free(m);
	m = config_mask_dsn("postgresql:///ghl_agent");
	ck_assert_str_eq(m, "postgresql:///ghl_agent");
	free(m);
}
END_TEST

START_TEST(listen_parse)
{
	char *host;
	int port;
	struct err e;
	ck_assert_int_eq(config_parse_listen("127.0.0.1:8080", &host, &port, &e), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(port, 8080);
	free(host);
	ck_assert_int_eq(config_parse_listen("[::1]:0", &host, &port, &e), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(port, 0);
	free(host);
	ck_assert_int_eq(config_parse_listen(":80", &host, &port, &e), -1);
	ck_assert_int_eq(config_parse_listen("h:80x", &host, &port, &e), -1);
}
END_TEST

START_TEST(durations)
{
	long long ms;
	ck_assert_int_eq(str_to_duration_ms("30", &ms), 0);
	ck_assert_int_eq(ms, 30000);
	ck_assert_int_eq(str_to_duration_ms("250ms", &ms), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(str_to_duration_ms("5m", &ms), 0);
	ck_assert_int_eq(ms, 300000);
	ck_assert_int_eq(str_to_duration_ms("2h", &ms), 0);
	ck_assert_int_eq(ms, 7200000);
	ck_assert_int_eq(str_to_duration_ms("90d", &ms), 0);
	ck_assert_int_eq(ms, 90LL * 86400000);
	ck_assert_int_eq(str_to_duration_ms("1w", &ms), -1);
	ck_assert_int_eq(str_to_duration_ms("", &ms), -1);
	ck_assert_int_eq(str_to_duration_ms("99999999999999999999", &ms), -1);
}
END_TEST

/* config/ghl-agent.conf parses and documents every key with its default. */
START_TEST(shipped_file_documents_every_key)
{
	clear_env();
	char *path = xasprintf("%s/config/ghl-agent.conf", tl_env("GHL_SOURCE_DIR"));
	struct err e;
	struct config *c = config_load(path, &e);
	ck_assert_msg(c != NULL, "%s", e.msg);
	struct config *d = config_new();
	struct buf from_file, builtin;
	buf_init(&from_file);
	buf_init(&builtin);
	config_print(c, &from_file);
	config_print(d, &builtin);
	char *text = tl_read_file(path);
	for (size_t i = 0; i < config_key_count(); i++) {
		char *needle = xasprintf("\n%s =", config_key_name(i));
		ck_assert_msg(strstr(text, needle), "config/ghl-agent.conf lacks key %s",
			      config_key_name(i));
		free(needle);
	}
	/* same values as the built-in defaults (sources differ) */
	char *a = from_file.data, *b = builtin.data;
	for (;;) {
		char *na = strchr(a, '\n'), *nb = strchr(b, '\n');
		if (!na || !nb)
			break;
		char *ha = strstr(a, "  # "), *hb = strstr(b, "  # ");
		if (ha && hb && ha < na && hb < nb && a[0] != '#')
			ck_assert_msg((ha - a) == (hb - b) && !strncmp(a, b, (size_t)(ha - a)),
				      "file default differs: %.*s vs %.*s", (int)(ha - a), a,
				      (int)(hb - b), b);
		a = na + 1;
		b = nb + 1;
	}
	free(text);
	buf_clear(&from_file);
	buf_clear(&builtin);
	config_free(c);
	config_free(d);
	free(path);
}
END_TEST

/* The binary itself: exit 2 with file, line and key on a bad file. */
START_TEST(cli_exit_codes)
{
	clear_env();
	char *path = tl_write_temp("ghl-conf", "log_level = info\nlisten = nowhere\n");
	char *argv[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"--config", path, (char *)"config",
			NULL};
	char *out = NULL;
	int rc = tl_run(argv, NULL, &out);
	ck_assert_int_eq(rc, 2);
	ck_assert_msg(strstr(out, path) && strstr(out, ":2: key \"listen\""), "%s", out);
	free(out);

	char *help[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"migrate", (char *)"--help", NULL};
	rc = tl_run(help, NULL, &out);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "Usage: ghl-agent [--config PATH] migrate"), "%s", out);
	free(out);

	char *unknown[] = {(char *)tl_env("GHL_AGENT_BIN"), (char *)"frobnicate", NULL};
	rc = tl_run(unknown, NULL, &out);
	ck_assert_int_eq(rc, 2);
	ck_assert_msg(strstr(out, "unknown command \"frobnicate\""), "%s", out);
	free(out);
	unlink(path);
	free(path);
}
END_TEST

/* The error carrier: a missing configuration file fails with the system's
 * code (ERR_SYS(ENOENT)) recorded next to the message that names the file. */
START_TEST(missing_file_reports_errno_code)
{
	struct err e = {0};
	struct config *c = config_load("/nonexistent/ghl-agent.conf", &e);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(e.code, ERR_SYS(ENOENT));
	ck_assert_msg(strstr(e.msg, "/nonexistent/ghl-agent.conf") != NULL, "message: %s", e.msg);
	ck_assert_int_eq(err_setc(&e, ERR_INVALID, "x"), ERR_INVALID);
	ck_assert_int_eq(e.code, ERR_INVALID);
	ck_assert_int_eq(err_set(&e, "y"), ERR_FAIL);
	ck_assert_int_eq(e.code, ERR_FAIL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, precedence);
	tcase_add_test(tc, comments_and_quotes);
	tcase_add_test(tc, errors_name_file_line_key);
	tcase_add_test(tc, env_errors_name_variable);
	tcase_add_test(tc, secrets_masked_and_from_file);
	tcase_add_test(tc, mask_dsn_forms);
	tcase_add_test(tc, listen_parse);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, token_keys_file_from_env);
	tcase_add_test(tc, cli_exit_codes);
	tcase_add_test(tc, shipped_file_documents_every_key);
	tcase_add_test(tc, missing_file_reports_errno_code);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
