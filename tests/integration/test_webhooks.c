/* test_webhooks.c — POST /webhooks/ghl: deliveries signed by ghl-sim (Ed25519,
 * x-ghl-signature) and by this test (legacy RSA-SHA256, x-wh-signature);
 * good, bad, missing, stale and replayed; INSTALL / UNINSTALL effects. */
#include "ghl_harness.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto.h"
#include "webhook_routes.h"

static char *ed25519_pub; /* ghl-sim's public key for --seed 42 (PEM) */

static void load_sim_key(void)
{
	char *argv[] = {(char *)tl_env("GHL_SIM_BIN"), (char *)"--seed", (char *)"42",
			(char *)"--print-webhook-key", NULL};
	char *out = NULL;
	ck_assert_msg(tl_run(argv, NULL, &out) == 0, "%s", out);
	ck_assert_msg(strstr(out, "BEGIN PUBLIC KEY"), "%s", out);
	ed25519_pub = out;
}

static EVP_PKEY *rsa_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ck_assert_ptr_nonnull(k);
	return k;
}

static char *rsa_pub_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	ck_assert(PEM_write_bio_PUBKEY(b, k) == 1);
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	char *out = xstrndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

static char *rsa_sign(EVP_PKEY *k, const char *body)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[512];
	size_t len = sizeof(sig);
	ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1);
	ck_assert(EVP_DigestSign(md, sig, &len, (const unsigned char *)body, strlen(body)) == 1);
	EVP_MD_CTX_free(md);
	return crypto_base64_encode(sig, len);
}

/* Ask ghl-sim to deliver a signed webhook; returns its report. */
static struct json *sim_send(struct hsim *sim, struct hagent *a, const char *fields)
{
	char *body = xasprintf("{\"url\":\"%s/webhooks/ghl\",%s}", a->base, fields);
	struct json *j = hsim_admin(sim, "POST", "webhooks/send", body);
	free(body);
	ck_assert_msg(json_get_bool(j, "delivered") == 1, "not delivered");
	return j;
}

static int64_t sent_status(const struct json *j)
{
	int64_t st = 0;
	json_get_int(j, "status", &st);
	return st;
}

static long post(struct hagent *a, const char *body, const char *sig_header, char **out)
{
	char *url = hagent_url(a, "/webhooks/ghl");
	const char *h[] = {"Content-Type: application/json", sig_header, NULL};
	struct hresp r;
	hhttp(&r, "POST", url, sig_header ? h : NULL, body, strlen(body));
	free(url);
	*out = r.body;
	r.body = NULL;
	long st = r.status;
	hresp_free(&r);
	return st;
}

static void assert_in(const char *hay, const char *needle)
{
	ck_assert_msg(hay && strstr(hay, needle), "\"%s\" not in: %s", needle, hay);
}

START_TEST(ed25519_install_uninstall_replay_stale)
{
	const char *flags[] = {"--seed", "42", "--company-id", "co-hook-1", NULL};
	struct hsim sim;
	hsim_start(&sim, flags);
	char *dsn = tl_create_migrated_db("webhooks_ed");
	char *keyenv = xasprintf("GHL_AGENT_WEBHOOK_ED25519_PUBLIC_KEY=%s", ed25519_pub);
	const char *env[] = {keyenv, NULL};
	struct hagent a;
	hagent_start(&a, dsn, &sim, env);
	PGconn *c = tl_connect(dsn);

	/* INSTALL of a company not connected yet: recorded, needs connection */
	struct json *j = sim_send(&sim, &a, "\"type\":\"INSTALL\",\"companyId\":\"co-new\"");
	ck_assert_int_eq(sent_status(j), 200);
	assert_in(json_get_str(j, "response"), "\"processed\"");
	char *v = tl_sql_value(c, "SELECT needs_reconnect || ' ' || reconnect_reason FROM agencies"
				  " WHERE ghl_agency_id = 'co-new' AND deleted_at IS NULL");
	ck_assert_msg(str_has_prefix(v, "true ") && strstr(v, "/oauth/connect"), "%s", v);
	free(v);

	/* the same delivery again: replay refused, nothing changes */
	char *sig = xasprintf("x-ghl-signature: %s", json_get_str(j, "signature"));
	char *body = xstrdup(json_get_str(j, "body"));
	json_free(j);
	char *out;
	ck_assert_int_eq(post(&a, body, sig, &out), 409);
	assert_in(out, "webhook_replayed");
	free(out);

	/* a changed byte: bad signature */
	char *tampered = xstrdup(body);
	char *p = strstr(tampered, "co-new");
	p[3] = 'X';
	ck_assert_int_eq(post(&a, tampered, sig, &out), 401);
	assert_in(out, "invalid_signature");
	free(out);
	free(tampered);
	/* no signature at all */
	ck_assert_int_eq(post(&a, body, NULL, &out), 401);
	assert_in(out, "neither x-ghl-signature nor x-wh-signature");
	free(out);
	free(sig);
	free(body);

	/* stale and future timestamps */
	char old[40], future[40];
	time_t now = time(NULL);
	struct tm tm;
	time_t t_old = now - 600, t_future = now + 600;
	gmtime_r(&t_old, &tm);
	strftime(old, sizeof(old), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	gmtime_r(&t_future, &tm);
	strftime(future, sizeof(future), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	char *f = xasprintf("\"type\":\"UNINSTALL\",\"companyId\":\"co-new\",\"timestamp\":\"%s\"",
			    old);
	j = sim_send(&sim, &a, f);
	ck_assert_int_eq(sent_status(j), 400);
	assert_in(json_get_str(j, "response"), "webhook_stale");
	json_free(j);
	free(f);
	f = xasprintf("\"type\":\"UNINSTALL\",\"companyId\":\"co-new\",\"timestamp\":\"%s\"",
		      future);
	j = sim_send(&sim, &a, f);
	ck_assert_int_eq(sent_status(j), 400);
	assert_in(json_get_str(j, "response"), "in the future");
	json_free(j);
	free(f);
	v = tl_sql_value(c, "SELECT count(*) FROM agencies WHERE deleted_at IS NOT NULL");
	ck_assert_str_eq(v, "0");
	free(v);

	/* a connected agency: INSTALL keeps it connected; UNINSTALL soft-deletes it */
	struct hresp r;
	char *cb = hconnect(&a, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	hresp_free(&r);
	free(cb);
	j = sim_send(&sim, &a, "\"type\":\"INSTALL\",\"companyId\":\"co-hook-1\"");
	ck_assert_int_eq(sent_status(j), 200);
	json_free(j);
	v = tl_sql_value(c,
			 "SELECT needs_reconnect FROM agencies WHERE ghl_agency_id = 'co-hook-1'");
	ck_assert_str_eq(v, "f");
	free(v);
	PQclear(tl_sql(
		c,
		"INSERT INTO api_keys (agency_id, name, key_hash, prefix) SELECT id,"
		" 'k', repeat('a', 64), 'ghl_x' FROM agencies WHERE ghl_agency_id = 'co-hook-1'"));
	j = sim_send(&sim, &a, "\"type\":\"UNINSTALL\",\"companyId\":\"co-hook-1\"");
	ck_assert_int_eq(sent_status(j), 200);
	assert_in(json_get_str(j, "response"), "\"processed\"");
	json_free(j);
	v = tl_sql_value(c, "SELECT deleted_at IS NOT NULL FROM agencies"
			    " WHERE ghl_agency_id = 'co-hook-1'");
	ck_assert_str_eq(v, "t");
	free(v);
	/* deleted like DELETE /agencies/{id}: its API keys are revoked */
	v = tl_sql_value(c, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL");
	ck_assert_str_eq(v, "0");
	free(v);
	ck_assert_msg(tl_wait_file_contains(a.log, "agency uninstalled the app", 5000), "no log");
	/* re-INSTALL: a webhook never brings a deleted agency back (an ADMIN
	 * reconnects it through /oauth/connect) */
	j = sim_send(&sim, &a, "\"type\":\"INSTALL\",\"companyId\":\"co-hook-1\"");
	ck_assert_int_eq(sent_status(j), 200);
	assert_in(json_get_str(j, "response"), "\"ignored\"");
	json_free(j);
	v = tl_sql_value(c, "SELECT (deleted_at IS NULL) || ' ' || needs_reconnect FROM agencies"
			    " WHERE ghl_agency_id = 'co-hook-1'");
	ck_assert_str_eq(v, "false false");
	free(v);

	/* other events are recorded and ignored */
	j = sim_send(&sim, &a, "\"type\":\"UNINSTALL\",\"locationId\":\"loc-x\"");
	ck_assert_int_eq(sent_status(j), 200);
	assert_in(json_get_str(j, "response"), "\"ignored\"");
	json_free(j);
	v = tl_sql_value(c, "SELECT count(*) FROM webhook_events");
	ck_assert_str_eq(v, "5");
	free(v);

	ck_assert_int_eq(hagent_stop(&a), 0);
	char *log = tl_read_file(a.log);
	hassert_no_tokens(&sim, "the agent's log", log, 2);
	free(log);
	unlink(a.log);
	PQfinish(c);
	free(keyenv);
	hsim_stop(&sim);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(rsa_legacy_signature)
{
	char *dsn = tl_create_migrated_db("webhooks_rsa");
	EVP_PKEY *k = rsa_key(), *other = rsa_key();
	char *pem = rsa_pub_pem(k);
	char *keyenv = xasprintf("GHL_AGENT_WEBHOOK_RSA_PUBLIC_KEY=%s", pem);
	const char *env[] = {keyenv, NULL};
	struct hagent a;
	hagent_start(&a, dsn, NULL, env);
	char ts[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char *body = xasprintf("{\"type\":\"INSTALL\",\"appId\":\"x\",\"companyId\":\"co-rsa\","
			       "\"timestamp\":\"%s\",\"webhookId\":\"wh-rsa-1\"}",
			       ts);
	char *good = rsa_sign(k, body), *bad = rsa_sign(other, body);
	char *h_good = xasprintf("x-wh-signature: %s", good);
	char *h_bad = xasprintf("x-wh-signature: %s", bad);
	char *out;
	ck_assert_int_eq(post(&a, body, h_bad, &out), 401);
	assert_in(out, "x-wh-signature");
	free(out);
	/* Ed25519 header without an Ed25519 key configured */
	ck_assert_int_eq(post(&a, body, "x-ghl-signature: AAAA", &out), 401);
	assert_in(out, "no public key is configured");
	free(out);
	ck_assert_int_eq(post(&a, body, h_good, &out), 200);
	assert_in(out, "\"processed\"");
	free(out);
	ck_assert_int_eq(post(&a, body, h_good, &out), 409);
	free(out);
	/* no webhookId: the body's hash is the replay key; a numeric timestamp (ms) */
	char *body2 = xasprintf(
		"{\"type\":\"UNINSTALL\",\"companyId\":\"co-rsa\",\"timestamp\":%lld}",
		(long long)now * 1000);
	char *sig2 = rsa_sign(k, body2);
	char *h2 = xasprintf("x-wh-signature: %s", sig2);
	ck_assert_int_eq(post(&a, body2, h2, &out), 200);
	free(out);
	ck_assert_int_eq(post(&a, body2, h2, &out), 409);
	free(out);
	/* signed but without a timestamp: the age cannot be checked, refused */
	char *body3 = xstrdup("{\"type\":\"INSTALL\",\"companyId\":\"co-rsa-2\","
			      "\"webhookId\":\"wh-no-time\"}");
	char *sig3 = rsa_sign(k, body3);
	char *h3 = xasprintf("x-wh-signature: %s", sig3);
	ck_assert_int_eq(post(&a, body3, h3, &out), 400);
	assert_in(out, "timestamp is required");
	free(out);
	free(h3);
	free(sig3);
	free(body3);
	PGconn *c = tl_connect(dsn);
	char *v = tl_sql_value(c, "SELECT deleted_at IS NOT NULL FROM agencies");
	ck_assert_str_eq(v, "t");
	free(v);
	v = tl_sql_value(c, "SELECT count(*) FROM webhook_events WHERE webhook_id LIKE 'sha256:%'");
	ck_assert_str_eq(v, "1");
	free(v);
	PQfinish(c);
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	/* no key at all: 503 saying which key to set */
	hagent_start(&a, dsn, NULL, NULL);
	ck_assert_int_eq(post(&a, body, h_good, &out), 503);
	assert_in(out, "webhook_ed25519_public_key");
	free(out);
	{ /* and says when to try again */
		char *url = hagent_url(&a, "/webhooks/ghl");
		const char *hh[] = {"Content-Type: application/json", h_good, NULL};
		struct hresp r;
		hhttp(&r, "POST", url, hh, body, strlen(body));
		ck_assert_int_eq(r.status, 503);
		assert_in(r.headers, "Retry-After: 60");
		hresp_free(&r);
		free(url);
	}
	ck_assert_int_eq(hagent_stop(&a), 0);
	unlink(a.log);

	free(h2);
	free(sig2);
	free(body2);
	free(h_good);
	free(h_bad);
	free(good);
	free(bad);
	free(body);
	free(keyenv);
	free(pem);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	tl_drop_db(dsn);
	free(dsn);
}
END_TEST

START_TEST(timestamp_parser)
{
	int64_t ms;
	ck_assert_int_eq(webhook_parse_timestamp("2025-01-31T12:00:00.123Z", &ms), 0);
	ck_assert_int_eq(ms, 1738324800123LL);
	ck_assert_int_eq(webhook_parse_timestamp("2025-01-31T13:30:00+01:30", &ms), 0);
	ck_assert_int_eq(ms, 1738324800000LL);
	ck_assert_int_eq(webhook_parse_timestamp("1738324800", &ms), 0);
	ck_assert_int_eq(ms, 1738324800000LL);
	ck_assert_int_eq(webhook_parse_timestamp("1738324800123", &ms), 0);
	ck_assert_int_eq(ms, 1738324800123LL);
	ck_assert_int_eq(webhook_parse_timestamp("2025-13-01T00:00:00Z", &ms), -1);
	ck_assert_int_eq(webhook_parse_timestamp("yesterday", &ms), -1);
	ck_assert_int_eq(webhook_parse_timestamp("2025-01-31T12:00:00Zjunk", &ms), -1);
	ck_assert_int_eq(webhook_parse_timestamp("", &ms), -1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("webhooks");
	TCase *t = tcase_create("webhooks");
	tcase_set_timeout(t, 120);
	tcase_add_unchecked_fixture(t, load_sim_key, NULL);
	tcase_add_test(t, timestamp_parser);
	tcase_add_test(t, ed25519_install_uninstall_replay_stale);
	tcase_add_test(t, rsa_legacy_signature);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return tl_run_suite(suite());
}
