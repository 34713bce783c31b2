/* test_vault.c — the token vault: round trips, tampering, rotation, key specs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "vault.h"

/* Two fixed keys: 32 bytes of 0x11 and of 0x22. */
#define KEY1_B64 "ERERERERERERERERERERERERERERERERERERERERERE="
#define KEY2_B64 "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
#define KEY3_B64 "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM="

/* Where a value is stored: values are bound to their agency and column. */
#define AG "6f0d3c2a-1b4e-4c5d-9e8f-0a1b2c3d4e5f"
#define AG_OTHER "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"
#define COL "oauth_access_token_encrypted"
#define COL_OTHER "oauth_refresh_token_encrypted"

static struct vault *vault_with(const char *spec)
{
	struct vault *v = vault_new();
	struct err e = {0};
	ck_assert_msg(vault_add_keys(v, spec, &e) == 0, "spec \"%s\": %s", spec, e.msg);
	return v;
}

static void roundtrip(const struct vault *v, const char *plain)
{
	struct err e = {0};
	char *stored = vault_encrypt(v, plain, AG, COL, &e);
	ck_assert_msg(stored != NULL, "%s", e.msg);
	if (strlen(plain) >= 8) /* shorter ones can occur in base64 by chance */
		ck_assert_ptr_null(strstr(stored, plain));
	char *back = vault_decrypt(v, stored, AG, COL, &e);
	ck_assert_msg(back != NULL, "%s", e.msg);
	ck_assert_str_eq(back, plain);
	secret_free(back);
	free(stored);
}

START_TEST(test_roundtrip)
{
	struct vault *v = vault_with("1:" KEY1_B64);
	ck_assert_uint_eq(vault_key_count(v), 1);
	ck_assert_int_eq(vault_newest_id(v), 1);
	roundtrip(v, "");
	roundtrip(v, "x");
	roundtrip(v, "eyJhbGciOiJIUzI1NiJ9.access-token.sig");

	char *big = malloc(10 * 1024 + 1);
	for (size_t i = 0; i < 10 * 1024; i++)
		big[i] = (char)('a' + i % 26);
	big[10 * 1024] = '\0';
	roundtrip(v, big);
	free(big);
	vault_free(v);
}
END_TEST

START_TEST(test_stored_format)
{
	struct vault *v = vault_with("7:" KEY1_B64);
	struct err e = {0};
	const char *plain = "refresh-token-value";
	char *a = vault_encrypt(v, plain, AG, COL, &e), *b = vault_encrypt(v, plain, AG, COL, &e);
	ck_assert(strncmp(a, "b7:", 3) == 0);
	/* fresh nonce per value */
	ck_assert_str_ne(a, b);

	unsigned char *raw;
	size_t n;
	ck_assert_int_eq(crypto_base64_decode(a + 3, strlen(a + 3), &raw, &n, &e), 0);
	ck_assert_uint_eq(n, 12 + strlen(plain) + 16);
	free(raw);
	free(a);
	free(b);
	vault_free(v);
}
END_TEST

/* A value built here with EVP directly decrypts: the format and AAD are what
 * vault.h says, and the AAD binds the purpose. prefix: 'b' (bound) or 'v'
 * (legacy, as versions before the binding wrote). */
static char *encrypt_by_hand(const unsigned char key[32], char prefix, int id, const char *aad,
			     const char *plain)
{
	unsigned char raw[12 + 64 + 16];
	size_t n = strlen(plain);
	int outl, finl;
	ck_assert_uint_le(n, 64);
	memset(raw, 0x5a, 12);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, raw, NULL), 1);
	ck_assert_int_eq(
		EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)),
		1);
	ck_assert_int_eq(
		EVP_EncryptUpdate(ctx, raw + 12, &outl, (const unsigned char *)plain, (int)n), 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, raw + 12 + outl, &finl), 1);
	ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, raw + 12 + n), 1);
	EVP_CIPHER_CTX_free(ctx);
	char *b64 = crypto_base64_encode(raw, 12 + n + 16);
	char *stored = xasprintf("%c%d:%s", prefix, id, b64);
	free(b64);
	return stored;
}

START_TEST(test_interop_and_aad)
{
	unsigned char key[32];
	memset(key, 0x11, sizeof(key));
	struct vault *v = vault_with("1:" KEY1_B64);
	struct err e = {0};

	char *stored = encrypt_by_hand(key, 'b', 1, "ghl-agent-token-v2\n" AG "\n" COL,
				       "hello token");
	char *pt = vault_decrypt(v, stored, AG, COL, &e);
	ck_assert_msg(pt != NULL, "%s", e.msg);
	ck_assert_str_eq(pt, "hello token");
	secret_free(pt);
	free(stored);

	/* legacy: the constant AAD, wherever the value is */
	stored = encrypt_by_hand(key, 'v', 1, "ghl-agent-token-v1", "hello token");
	pt = vault_decrypt(v, stored, AG_OTHER, COL_OTHER, &e);
	ck_assert_msg(pt != NULL, "%s", e.msg);
	ck_assert_str_eq(pt, "hello token");
	secret_free(pt);
	free(stored);

	stored = encrypt_by_hand(key, 'b', 1, "some-other-purpose", "hello token");
	ck_assert_ptr_null(vault_decrypt(v, stored, AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "authentication failed"), "%s", e.msg);
	ck_assert_ptr_null(strstr(e.msg, "hello"));
	free(stored);
	vault_free(v);
}
END_TEST

/* A value opens only where it was stored: agency A's ciphertext copied into
 * agency B's row, or into the other column, fails; a legacy value is read
 * anywhere but always wants a rewrap. */
START_TEST(test_bound_to_row)
{
	struct vault *v = vault_with("1:" KEY1_B64);
	struct err e = {0};
	char *a = vault_encrypt(v, "agency-a-token", AG, COL, &e);
	ck_assert_msg(a != NULL, "%s", e.msg);
	ck_assert_ptr_null(vault_decrypt(v, a, AG_OTHER, COL, &e));
	ck_assert_msg(strstr(e.msg, "authentication failed"), "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "another agency's row"), "%s", e.msg);
	ck_assert_ptr_null(vault_decrypt(v, a, AG, COL_OTHER, &e));
	ck_assert_msg(strstr(e.msg, "authentication failed"), "%s", e.msg);
	ck_assert_ptr_null(vault_decrypt(v, a, NULL, COL, &e));
	ck_assert_msg(strstr(e.msg, "both are required"), "%s", e.msg);
	/* the id as PostgreSQL prints it or in capitals: the same row */
	char *upper = xstrdup(AG);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	char *pt = vault_decrypt(v, a, upper, COL, &e);
	ck_assert_msg(pt != NULL, "%s", e.msg);
	ck_assert_str_eq(pt, "agency-a-token");
	secret_free(pt);
	free(upper);
	ck_assert_int_eq(vault_needs_rewrap(v, a), 0);
	/* nothing is encrypted unbound */
	ck_assert_ptr_null(vault_encrypt(v, "t", AG, "", &e));
	ck_assert_msg(strstr(e.msg, "both are required"), "%s", e.msg);
	ck_assert_ptr_null(vault_encrypt(v, "t", NULL, COL, &e));

	unsigned char key[32];
	memset(key, 0x11, sizeof(key));
	char *legacy = encrypt_by_hand(key, 'v', 1, "ghl-agent-token-v1", "legacy-token");
	ck_assert_int_eq(vault_needs_rewrap(v, legacy), 1); /* under the newest key, unbound */
	pt = vault_decrypt(v, legacy, AG_OTHER, COL_OTHER, &e);
	ck_assert_msg(pt != NULL, "%s", e.msg);
	char *bound = vault_encrypt(v, pt, AG, COL, &e);
	secret_free(pt);
	ck_assert_int_eq(vault_needs_rewrap(v, bound), 0);
	ck_assert_ptr_null(vault_decrypt(v, bound, AG_OTHER, COL, &e));
	free(bound);
	free(legacy);
	free(a);
	vault_free(v);
}
END_TEST

START_TEST(test_every_byte_flipped)
{
	struct vault *v = vault_with("1:" KEY1_B64);
	struct err e = {0};
	const char *plain = "secret-token-abc";
	char *stored = vault_encrypt(v, plain, AG, COL, &e);
	size_t len = strlen(stored);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			char *t = strdup(stored);
			t[i] = (char)(t[i] ^ (1 << bit));
			e.msg[0] = '\0';
			char *pt = vault_decrypt(v, t, AG, COL, &e);
			ck_assert_msg(pt == NULL, "offset %zu bit %d accepted", i, bit);
			int auth = strstr(e.msg, "authentication failed") != NULL;
			int malformed = strstr(e.msg, "malformed value") != NULL;
			int unknown = strstr(e.msg, "unknown key id") != NULL;
			if (i < 3) /* the "b1:" prefix */
				ck_assert_msg(malformed || unknown, "offset %zu: \"%s\"", i, e.msg);
			else
				ck_assert_msg(auth || malformed, "offset %zu: \"%s\"", i, e.msg);
			ck_assert_ptr_null(strstr(e.msg, plain));
			ck_assert_ptr_null(strstr(e.msg, KEY1_B64));
			free(t);
		}
	}
	/* truncation and extension */
	for (size_t cut = 0; cut < len; cut++) {
		char *t = strndup(stored, cut);
		ck_assert_ptr_null(vault_decrypt(v, t, AG, COL, &e));
		free(t);
	}
	char *longer = xasprintf("%sAAAA", stored);
	ck_assert_ptr_null(vault_decrypt(v, longer, AG, COL, &e));
	free(longer);
	free(stored);
	vault_free(v);
}
END_TEST

START_TEST(test_malformed_values)
{
	struct vault *v = vault_with("1:" KEY1_B64);
	static const char *bad[] = {
		"",	    "v",       "v1",	  "1:AAAA",  "v:AAAA",	 "v0:AAAA",
		"v01:AAAA", "vx:AAAA", "V1:AAAA", "v1;AAAA", "v-1:AAAA", "v99999999999:AAAA",
		"b",	    "b:AAAA",  "b0:AAAA", "B1:AAAA", "c1:AAAA"};
	struct err e = {0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_ptr_null(vault_decrypt(v, bad[i], AG, COL, &e));
		ck_assert_msg(strstr(e.msg, "malformed value"), "\"%s\": \"%s\"", bad[i], e.msg);
		ck_assert_int_eq(vault_needs_rewrap(v, bad[i]), -1);
	}
	ck_assert_ptr_null(vault_decrypt(v, NULL, AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "malformed value"), "%s", e.msg);
	/* valid base64 but too short to hold nonce and tag */
	ck_assert_ptr_null(vault_decrypt(v, "v1:AAAA", AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "malformed value"), "%s", e.msg);
	ck_assert_ptr_null(vault_decrypt(v, "v1:not base64", AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "malformed value"), "%s", e.msg);
	vault_free(v);
}
END_TEST

START_TEST(test_unknown_key_id)
{
	struct vault *v1 = vault_with("1:" KEY1_B64), *v2 = vault_with("2:" KEY2_B64);
	struct err e = {0};
	char *stored = vault_encrypt(v2, "tok", AG, COL, &e);
	ck_assert_ptr_null(vault_decrypt(v1, stored, AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "unknown key id 2"), "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "loaded: 1"), "%s", e.msg);
	free(stored);

	/* same id, different key material: authentication fails */
	struct vault *other = vault_with("2:" KEY3_B64);
	stored = vault_encrypt(v2, "tok", AG, COL, &e);
	ck_assert_ptr_null(vault_decrypt(other, stored, AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "authentication failed"), "%s", e.msg);
	free(stored);

	/* empty vault */
	struct vault *empty = vault_new();
	ck_assert_uint_eq(vault_key_count(empty), 0);
	ck_assert_int_eq(vault_newest_id(empty), 0);
	ck_assert_ptr_null(vault_encrypt(empty, "tok", AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "no token key loaded"), "%s", e.msg);
	ck_assert_ptr_null(vault_decrypt(empty, "v1:AAAA", AG, COL, &e));
	ck_assert_msg(strstr(e.msg, "unknown key id 1"), "%s", e.msg);
	ck_assert_int_eq(vault_needs_rewrap(empty, "v1:AAAA"), -1);

	vault_free(empty);
	vault_free(other);
	vault_free(v1);
	vault_free(v2);
	vault_free(NULL);
}
END_TEST

START_TEST(test_rotation)
{
	struct vault *v = vault_with("1:" KEY1_B64);
	struct err e = {0};
	char *old = vault_encrypt(v, "old-token", AG, COL, &e);
	ck_assert(strncmp(old, "b1:", 3) == 0);
	ck_assert_int_eq(vault_needs_rewrap(v, old), 0);

	ck_assert_msg(vault_add_keys(v, "2:" KEY2_B64, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(vault_key_count(v), 2);
	ck_assert_int_eq(vault_newest_id(v), 2);

	char *pt = vault_decrypt(v, old, AG, COL, &e);
	ck_assert_msg(pt != NULL, "%s", e.msg);
	ck_assert_str_eq(pt, "old-token");
	secret_free(pt);
	ck_assert_int_eq(vault_needs_rewrap(v, old), 1);

	char *fresh = vault_encrypt(v, "new-token", AG, COL, &e);
	ck_assert(strncmp(fresh, "b2:", 3) == 0);
	ck_assert_int_eq(vault_needs_rewrap(v, fresh), 0);

	/* rewrap: decrypt under the old key, encrypt under the newest */
	pt = vault_decrypt(v, old, AG, COL, &e);
	char *rewrapped = vault_encrypt(v, pt, AG, COL, &e);
	secret_free(pt);
	ck_assert(strncmp(rewrapped, "b2:", 3) == 0);
	ck_assert_int_eq(vault_needs_rewrap(v, rewrapped), 0);
	pt = vault_decrypt(v, rewrapped, AG, COL, &e);
	ck_assert_str_eq(pt, "old-token");
	secret_free(pt);

	/* the newest is the highest id, whatever the order of the spec */
	struct vault *w = vault_with(" 10:" KEY3_B64 " , 2:" KEY2_B64 ",1:" KEY1_B64 ", ");
	ck_assert_uint_eq(vault_key_count(w), 3);
	ck_assert_int_eq(vault_newest_id(w), 10);
	char *s = vault_encrypt(w, "t", AG, COL, &e);
	ck_assert(strncmp(s, "b10:", 4) == 0);
	ck_assert_int_eq(vault_needs_rewrap(w, fresh), 1);
	pt = vault_decrypt(w, fresh, AG, COL, &e);
	ck_assert_str_eq(pt, "new-token");
	secret_free(pt);

	free(s);
	free(old);
	free(fresh);
	free(rewrapped);
	vault_free(w);
	vault_free(v);
}
END_TEST

static void expect_bad_spec(const char *spec, const char *want, const char *secret)
{
	struct vault *v = vault_with("5:" KEY3_B64);
	struct err e = {0};
	ck_assert_msg(vault_add_keys(v, spec, &e) == -1, "spec \"%s\" accepted", spec);
	ck_assert_msg(strstr(e.msg, want), "spec \"%s\": got \"%s\", want \"%s\"", spec, e.msg,
		      want);
	/* all or nothing: the vault is unchanged */
	ck_assert_uint_eq(vault_key_count(v), 1);
	ck_assert_int_eq(vault_newest_id(v), 5);
	/* no key material in the message, not even a piece of it */
	if (secret) {
		size_t n = strlen(secret);
		for (size_t i = 0; i + 6 <= n; i++) {
			char piece[7];
			memcpy(piece, secret + i, 6);
			piece[6] = '\0';
			ck_assert_msg(!strstr(e.msg, piece), "message \"%s\" leaks \"%s\"", e.msg,
				      piece);
		}
	}
	ck_assert_ptr_null(strstr(e.msg, KEY3_B64));
	vault_free(v);
}

START_TEST(test_bad_specs)
{
	/* 16-byte key */
	expect_bad_spec("1:q83vEjRWeJCrze8SNFZ4kA==",
			"token_keys entry 1: key id 1: key must decode to exactly 32 bytes, got 16",
			"q83vEjRWeJCrze8SNFZ4kA==");
	/* bad base64 in the second entry */
	expect_bad_spec("1:" KEY1_B64 ",2:zzzz*zzzzSECRETzzzzzzzzzzzzzzzzzzzzzzzzzzzz=",
			"token_keys entry 2: key id 2: key is not valid base64",
			"zzzz*zzzzSECRETzzzzzzzzzzzzzzzzzzzzzzzzzzzz=");
	/* duplicate inside one spec, and against a loaded key */
	expect_bad_spec("1:" KEY1_B64 ",1:" KEY2_B64, "token_keys entry 2: duplicate key id 1",
			KEY2_B64);
	expect_bad_spec("5:" KEY1_B64, "token_keys entry 1: duplicate key id 5", KEY1_B64);
	/* missing colon: the whole entry may be a key, so nothing is echoed */
	expect_bad_spec("1:" KEY1_B64 "," KEY2_B64,
			"token_keys entry 2: expected ID:BASE64KEY (no ':' found)", KEY2_B64);
	/* id 0, negative, not a number, missing */
	expect_bad_spec("0:" KEY1_B64,
			"token_keys entry 1: key id must be a positive integer, got 0", KEY1_B64);
	expect_bad_spec("-1:" KEY1_B64, "token_keys entry 1: key id must be a positive integer",
			KEY1_B64);
	expect_bad_spec("one:" KEY1_B64, "token_keys entry 1: key id must be a positive integer",
			KEY1_B64);
	expect_bad_spec(":" KEY1_B64, "token_keys entry 1: key id is missing", KEY1_B64);
	expect_bad_spec("99999999999:" KEY1_B64, "token_keys entry 1: key id must be at most",
			KEY1_B64);
	expect_bad_spec("3:", "token_keys entry 1: key id 3: key is missing", NULL);
	/* nothing at all */
	expect_bad_spec("", "token_keys: no key given", NULL);
	expect_bad_spec(" , ,", "token_keys: no key given", NULL);
	expect_bad_spec(NULL, "token_keys: not set", NULL);
	/* the position counts empty entries too */
	expect_bad_spec("1:" KEY1_B64 ",,0:" KEY2_B64, "token_keys entry 3:", KEY2_B64);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/test_vault_keysXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "# token keys for the agent\n"
		   "\n"
		   "1:" KEY1_B64 "   # the first one\n"
		   "  2:" KEY2_B64 ", 3:" KEY3_B64 "\n");
	fclose(f);

	struct vault *v = vault_new();
	struct err e = {0};
	ck_assert_msg(vault_load_file(v, path, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(vault_key_count(v), 3);
	ck_assert_int_eq(vault_newest_id(v), 3);
	roundtrip(v, "from-file");
	vault_free(v);

	/* an error names the file and line (and entry on a line holding several) */
	f = fopen(path, "w");
	fprintf(f, "# comment\n1:" KEY1_B64 "\n2:" KEY2_B64 ",3:c2hvcnQ=\n");
	fclose(f);
	v = vault_new();
	ck_assert_int_eq(vault_load_file(v, path, &e), -1);
	ck_assert_msg(strstr(e.msg, "line 3 entry 2: key id 3: key must decode to exactly 32 "
				    "bytes, got 5"),
		      "%s", e.msg);
	ck_assert_msg(strstr(e.msg, path), "%s", e.msg);
	ck_assert_ptr_null(strstr(e.msg, "c2hvcnQ"));
	ck_assert_uint_eq(vault_key_count(v), 0);

	f = fopen(path, "w");
	fprintf(f, "1:" KEY1_B64 "\n1:" KEY2_B64 "\n");
	fclose(f);
	ck_assert_int_eq(vault_load_file(v, path, &e), -1);
	ck_assert_msg(strstr(e.msg, "line 2: duplicate key id 1"), "%s", e.msg);

	f = fopen(path, "w");
	fprintf(f, "# only comments\n\n");
	fclose(f);
	ck_assert_int_eq(vault_load_file(v, path, &e), -1);
	ck_assert_msg(strstr(e.msg, "no key found"), "%s", e.msg);

	unlink(path);
	ck_assert_int_eq(vault_load_file(v, path, &e), -1);
	ck_assert_msg(strstr(e.msg, "token_keys file"), "%s", e.msg);
	vault_free(v);
}
END_TEST

START_TEST(test_generate_key_spec)
{
	char *a = vault_generate_key_spec(4), *b = vault_generate_key_spec(4);
	ck_assert_ptr_nonnull(a);
	ck_assert(strncmp(a, "4:", 2) == 0);
	ck_assert_uint_eq(strlen(a), 2 + 44);
	ck_assert_str_ne(a, b);
	struct vault *v = vault_with(a);
	ck_assert_int_eq(vault_newest_id(v), 4);
	roundtrip(v, "generated");
	vault_free(v);
	secret_free(a);
	secret_free(b);
	ck_assert_ptr_null(vault_generate_key_spec(0));
	ck_assert_ptr_null(vault_generate_key_spec(-3));
	secret_free(NULL);
}
END_TEST

static Suite *vault_suite(void)
{
	Suite *s = suite_create("vault");
	TCase *tc = tcase_create("values");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_stored_format);
	tcase_add_test(tc, test_interop_and_aad);
	tcase_add_test(tc, test_bound_to_row);
	tcase_add_test(tc, test_every_byte_flipped);
	tcase_add_test(tc, test_malformed_values);
	tcase_add_test(tc, test_unknown_key_id);
	tcase_add_test(tc, test_rotation);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, test_bad_specs);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_generate_key_spec);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vault_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
