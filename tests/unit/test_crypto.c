/* test_crypto.c — crypto.c against published vectors and keys made here. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto.h"

/* ---- helpers ----------------------------------------------------------- */

static unsigned char *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *out = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + (size_t)j];
			v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
		}
		out[i] = (unsigned char)v;
	}
	*len = n;
	return out;
}

static EVP_PKEY *keygen(const char *type, int rsa_bits)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_PKEY_keygen_init(ctx), 1);
	if (rsa_bits)
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, rsa_bits), 1);
	ck_assert_int_eq(EVP_PKEY_keygen(ctx, &pkey), 1);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static char *pubkey_pem(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *pem = strndup(data, (size_t)n);
	BIO_free(bio);
	return pem;
}

static char *pubkey_der_b64(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pkey, &der);
	ck_assert_int_gt(n, 0);
	char *b64 = crypto_base64_encode(der, (size_t)n);
	OPENSSL_free(der);
	return b64;
}

static char *sign_b64(EVP_PKEY *pkey, const char *md, const void *msg, size_t n)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sig_len = 0;
	ck_assert_int_eq(EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL), 1);
	ck_assert_int_eq(EVP_DigestSign(ctx, NULL, &sig_len, msg, n), 1);
	unsigned char *sig = malloc(sig_len);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &sig_len, msg, n), 1);
	char *b64 = crypto_base64_encode(sig, sig_len);
	free(sig);
	EVP_MD_CTX_free(ctx);
	return b64;
}

/* ---- base64 / hex ------------------------------------------------------ */

static const struct {
	const char *plain, *std, *url;
	/* clang-format off */
} b64_vectors[] = { /* RFC 4648 §10 */
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};
/* clang-format on */

START_TEST(test_base64_rfc4648)
{
	for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		const char *p = b64_vectors[i].plain;
		char *enc = crypto_base64_encode(p, strlen(p));
		ck_assert_str_eq(enc, b64_vectors[i].std);
		free(enc);
		enc = crypto_base64url_encode(p, strlen(p));
		ck_assert_str_eq(enc, b64_vectors[i].url);
		free(enc);

		unsigned char *dec;
		size_t n;
		struct err e = {0};
		ck_assert_int_eq(crypto_base64_decode(b64_vectors[i].std,
						      strlen(b64_vectors[i].std), &dec, &n, &e),
				 0);
		ck_assert_uint_eq(n, strlen(p));
		ck_assert_str_eq((char *)dec, p);
		free(dec);
		ck_assert_int_eq(crypto_base64url_decode(b64_vectors[i].url,
							 strlen(b64_vectors[i].url), &dec, &n, &e),
				 0);
		ck_assert_uint_eq(n, strlen(p));
		ck_assert_str_eq((char *)dec, p);
		free(dec);
	}
}
END_TEST

START_TEST(test_base64_alphabets)
{
	/* clang-format off */
	const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };
	char *s = crypto_base64_encode(bytes, 2);
	ck_assert_str_eq(s, "+/8=");
	free(s);
	s = crypto_base64url_encode(bytes, 2);
	ck_assert_str_eq(s, "-_8");
	free(s);
	s = crypto_base64_encode(bytes, 3);
	ck_assert_str_eq(s, "+/+/");
	free(s);
}
END_TEST

START_TEST(test_base64_rejects)
{
	static const char *bad_std[] = {
		"Zg=",      /* length not a multiple of 4 */
		"Zg",       /* missing padding */
		"Z===",     /* too much padding */
		"Zm=v",     /* padding in the middle */
		"Zh==",     /* non-zero trailing bits */
		"Zm9=",     /* non-zero trailing bits */
		"Zm9v\n",   /* whitespace */
		"Zm 9v",    /* whitespace */
		"Zm9-",     /* url alphabet */
		"Zm9_",     /* url alphabet */
		"Zm9*",     /* garbage */
		"====",     /* only padding */
	};
	static const char *bad_url[] = {
		"Zg==", /* padding */
		"Z",    /* impossible length */
		"Zh",   /* non-zero trailing bits */
		"Zm9+", /* standard alphabet */
		"Zm9/",
		"Zm9v ",
	};
	unsigned char *out = NULL;
	size_t n = 0;
	for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
		struct err e = {0};
		ck_assert_msg(crypto_base64_decode(bad_std[i], strlen(bad_std[i]), &out, &n, &e) ==
				      -1,
			      "accepted \"%s\"", bad_std[i]);
		ck_assert_msg(strstr(e.msg, "invalid base64"), "message \"%s\"", e.msg);
	}
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
		struct err e = {0};
		ck_assert_msg(crypto_base64url_decode(bad_url[i], strlen(bad_url[i]), &out, &n,
						      &e) == -1,
			      "accepted \"%s\"", bad_url[i]);
		ck_assert_msg(strstr(e.msg, "invalid base64url"), "message \"%s\"", e.msg);
	}
	/* NULL err is allowed */
	ck_assert_int_eq(crypto_base64_decode("!!!!", 4, &out, &n, NULL), -1);
}
END_TEST

START_TEST(test_base64_binary_roundtrip)
{
	unsigned char data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(data); len++) {
		for (int url = 0; url <= 1; url++) {
			char *s = url ? crypto_base64url_encode(data, len)
				      : crypto_base64_encode(data, len);
			unsigned char *dec;
			size_t n;
			int rc = url ? crypto_base64url_decode(s, strlen(s), &dec, &n, NULL)
				     : crypto_base64_decode(s, strlen(s), &dec, &n, NULL);
			ck_assert_int_eq(rc, 0);
			ck_assert_uint_eq(n, len);
			ck_assert(memcmp(dec, data, len) == 0);
			free(dec);
			free(s);
		}
	}
}
END_TEST

START_TEST(test_hex)
{
	const unsigned char b[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
	char *h = crypto_hex_encode(b, sizeof(b));
	ck_assert_str_eq(h, "0001abff7f");
	free(h);
	h = crypto_hex_encode(b, 0);
	ck_assert_str_eq(h, "");
	free(h);
}
END_TEST

/* ---- hashes ------------------------------------------------------------ */

START_TEST(test_sha256_vectors)
{
	char hex[CRYPTO_SHA256_HEX_LEN];
	ck_assert_int_eq(crypto_sha256_hex("", 0, hex), 0);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_int_eq(crypto_sha256_hex(NULL, 0, hex), 0);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_int_eq(crypto_sha256_hex("abc", 3, hex), 0);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	ck_assert_int_eq(crypto_sha256_hex(m, strlen(m), hex), 0);
	ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	char *million = malloc(1000000);
	memset(million, 'a', 1000000);
	ck_assert_int_eq(crypto_sha256_hex(million, 1000000, hex), 0);
	ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);

	unsigned char raw[CRYPTO_SHA256_LEN];
	ck_assert_int_eq(crypto_sha256("abc", 3, raw), 0);
	ck_assert_uint_eq(raw[0], 0xba);
	ck_assert_uint_eq(raw[31], 0xad);
}
END_TEST

static const struct {
	const char *key_hex, *data_hex, *mac;
} hmac_vectors[] = { /* RFC 4231 test cases 1, 2, 3, 4, 6, 7 */
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	  "dddddddddddddddd",
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	  "cdcdcdcdcdcdcdcd",
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
	{ NULL, "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
		"617368204b6579204669727374",
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
	{ NULL, "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
		"73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
		"612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
		"6720757365642062792074686520484d414320616c676f726974686d2e",
	  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
};
/* clang-format on */

START_TEST(test_hmac_rfc4231)
{
	unsigned char big_key[131];
	memset(big_key, 0xaa, sizeof(big_key));
	for (size_t i = 0; i < sizeof(hmac_vectors) / sizeof(hmac_vectors[0]); i++) {
		size_t key_len, data_len;
		unsigned char *key = NULL;
		const unsigned char *k = big_key;
		key_len = sizeof(big_key);
		if (hmac_vectors[i].key_hex) {
			key = unhex(hmac_vectors[i].key_hex, &key_len);
			k = key;
		}
		unsigned char *data = unhex(hmac_vectors[i].data_hex, &data_len);
		char hex[CRYPTO_SHA256_HEX_LEN];
		ck_assert_int_eq(crypto_hmac_sha256_hex(k, key_len, data, data_len, hex), 0);
		ck_assert_msg(strcmp(hex, hmac_vectors[i].mac) == 0, "vector %zu: got %s want %s",
			      i, hex, hmac_vectors[i].mac);
		unsigned char raw[CRYPTO_SHA256_LEN];
		ck_assert_int_eq(crypto_hmac_sha256(k, key_len, data, data_len, raw), 0);
		char *h = crypto_hex_encode(raw, sizeof(raw));
		ck_assert_str_eq(h, hmac_vectors[i].mac);
		free(h);
		free(key);
		free(data);
	}
}
END_TEST

START_TEST(test_hmac_empty_key_and_message)
{
	char hex[CRYPTO_SHA256_HEX_LEN];
	/* HMAC-SHA256("", "") */
	ck_assert_int_eq(crypto_hmac_sha256_hex("", 0, "", 0, hex), 0);
	ck_assert_str_eq(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}
END_TEST

START_TEST(test_fingerprint)
{
	char fp[CRYPTO_FINGERPRINT_LEN];
	crypto_token_fingerprint("abc", fp);
	ck_assert_str_eq(fp, "ba7816bf8f01");
	ck_assert_uint_eq(strlen(fp), 12);
	crypto_token_fingerprint(NULL, fp);
	ck_assert_str_eq(fp, "-");
}
END_TEST

/* ---- random, wipe, compare -------------------------------------------- */

START_TEST(test_random)
{
	unsigned char a[32] = {0}, b[32] = {0};
	ck_assert_int_eq(crypto_random_bytes(a, sizeof(a)), 0);
	ck_assert_int_eq(crypto_random_bytes(b, sizeof(b)), 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	ck_assert_int_eq(crypto_random_bytes(a, 0), 0);

	char *t1 = crypto_random_token(32), *t2 = crypto_random_token(32);
	ck_assert_ptr_nonnull(t1);
	ck_assert_uint_eq(strlen(t1), 43);
	ck_assert_str_ne(t1, t2);
	ck_assert_ptr_null(strpbrk(t1, "+/="));
	unsigned char *dec;
	size_t n;
	ck_assert_int_eq(crypto_base64url_decode(t1, strlen(t1), &dec, &n, NULL), 0);
	ck_assert_uint_eq(n, 32);
	free(dec);
	free(t1);
	free(t2);
}
END_TEST

START_TEST(test_wipe_and_compare)
{
	char s[] = "secret";
	crypto_wipe(s, sizeof(s));
	for (size_t i = 0; i < sizeof(s); i++)
		ck_assert_int_eq(s[i], 0);
	crypto_wipe(NULL, 5);

	ck_assert_int_eq(crypto_eq_ct("abc", "abc", 3), 1);
	ck_assert_int_eq(crypto_eq_ct("abc", "abd", 3), 0);
	ck_assert_int_eq(crypto_eq_ct("x", "y", 0), 1);
	ck_assert_int_eq(crypto_str_eq_ct("abc", "abc"), 1);
	ck_assert_int_eq(crypto_str_eq_ct("abc", "abcd"), 0);
	ck_assert_int_eq(crypto_str_eq_ct("abc", "abX"), 0);
	ck_assert_int_eq(crypto_str_eq_ct(NULL, "a"), 0);
	ck_assert_int_eq(crypto_str_eq_ct(NULL, NULL), 1);
}
END_TEST

/* secret_free wipes and frees (ASan's leak check sees the free) and returns
 * NULL for `s = secret_free(s)`; NULL is allowed. */
START_TEST(test_secret_free)
{
	char *s = xstrdup("token-value");
	s = secret_free(s);
	ck_assert_ptr_null(s);
	ck_assert_ptr_null(secret_free(NULL));
}
END_TEST

/* ---- OAuth state ------------------------------------------------------- */

START_TEST(test_state_roundtrip)
{
	const char *payload = "agency=42&return=/dashboard?x=1 ü";
	char *st = crypto_state_sign("s3cret", payload, 1000);
	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_null(strpbrk(st, "+/= &?"));
	char *got = NULL;
	struct err e = {0};
	ck_assert_msg(crypto_state_verify("s3cret", st, 999, &got, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(got, payload);
	free(got);
	ck_assert_int_eq(crypto_state_verify("s3cret", st, 0, NULL, &e), 0);

	/* exact format: base64url(payload).expires.base64url(hmac) */
	char *p64 = crypto_base64url_encode(payload, strlen(payload));
	ck_assert(strncmp(st, p64, strlen(p64)) == 0);
	ck_assert(strncmp(st + strlen(p64), ".1000.", 6) == 0);
	ck_assert_uint_eq(strlen(st + strlen(p64) + 6), 43);
	free(p64);
	free(st);

	st = crypto_state_sign("s3cret", "", 5);
	ck_assert_int_eq(crypto_state_verify("s3cret", st, 4, &got, &e), 0);
	ck_assert_str_eq(got, "");
	free(got);
	free(st);

	ck_assert_ptr_null(crypto_state_sign("", "x", 5));
	ck_assert_ptr_null(crypto_state_sign(NULL, "x", 5));
	ck_assert_ptr_null(crypto_state_sign("k", NULL, 5));
	ck_assert_ptr_null(crypto_state_sign("k", "x", -1));
}
END_TEST

START_TEST(test_state_expired)
{
	char *st = crypto_state_sign("s3cret", "p", 1000);
	char *got = (char *)"untouched";
	struct err e = {0};
	ck_assert_int_eq(crypto_state_verify("s3cret", st, 1000, &got, &e), -1);
	ck_assert_ptr_null(got);
	ck_assert_msg(strstr(e.msg, "state: expired"), "message \"%s\"", e.msg);
	ck_assert_int_eq(crypto_state_verify("s3cret", st, 5000, NULL, &e), -1);
	ck_assert_msg(strstr(e.msg, "expired"), "message \"%s\"", e.msg);
	free(st);
}
END_TEST

START_TEST(test_state_tampered)
{
	char *st = crypto_state_sign("s3cret", "agency=42", 1000);
	size_t len = strlen(st);
	struct err e = {0};
	char *got = NULL;

	/* signed under another secret */
	ck_assert_int_eq(crypto_state_verify("other", st, 1, &got, &e), -1);
	ck_assert_msg(strstr(e.msg, "signature mismatch"), "message \"%s\"", e.msg);
	ck_assert_ptr_null(got);

	/* every single-character change is rejected, never reported as valid */
	for (size_t i = 0; i < len; i++) {
		char *t = strdup(st);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		ck_assert_msg(crypto_state_verify("s3cret", t, 1, &got, &e) == -1,
			      "accepted change at %zu", i);
		ck_assert_msg(strstr(e.msg, "signature mismatch") || strstr(e.msg, "malformed"),
			      "offset %zu: message \"%s\"", i, e.msg);
		ck_assert_ptr_null(got);
		free(t);
	}

	/* extending the expiry is tampering, even once the original expired */
	char *dot1 = strchr(st, '.');
	char *dot2 = strchr(dot1 + 1, '.');
	char *longer = xasprintf("%.*s.9999%s", (int)(dot1 - st), st, dot2);
	ck_assert_int_eq(crypto_state_verify("s3cret", longer, 2000, NULL, &e), -1);
	ck_assert_msg(strstr(e.msg, "signature mismatch"), "message \"%s\"", e.msg);
	free(longer);

	/* a forged state that is also expired reports tampering, not expiry */
	ck_assert_int_eq(crypto_state_verify("other", st, 5000, NULL, &e), -1);
	ck_assert_msg(strstr(e.msg, "signature mismatch"), "message \"%s\"", e.msg);

	/* truncated MAC */
	char *trunc = strndup(st, len - 1);
	ck_assert_int_eq(crypto_state_verify("s3cret", trunc, 1, NULL, &e), -1);
	free(trunc);
	free(st);
}
END_TEST

START_TEST(test_state_malformed)
{
	/* clang-format off */
	static const char *bad[] = { "", "abc", "a.b", "a.1.b.c", "a..b", "a.-1.b", "a.+1.b",
				     "a.1e3.b", "a. 1.b" };
	struct err e = {0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(crypto_state_verify("k", bad[i], 0, NULL, &e), -1);
		ck_assert_msg(strstr(e.msg, "state: malformed"), "\"%s\": \"%s\"", bad[i], e.msg);
	}
	ck_assert_int_eq(crypto_state_verify("k", NULL, 0, NULL, &e), -1);
	ck_assert_int_eq(crypto_state_verify("", "a.1.b", 0, NULL, &e), -1);

	char *huge = malloc(CRYPTO_STATE_MAX + 10);
	memset(huge, 'a', CRYPTO_STATE_MAX + 9);
	huge[CRYPTO_STATE_MAX + 9] = '\0';
	ck_assert_int_eq(crypto_state_verify("k", huge, 0, NULL, &e), -1);
	ck_assert_msg(strstr(e.msg, "longer than"), "%s", e.msg);
	free(huge);
}
END_TEST

/* ---- webhook signatures ------------------------------------------------ */

static const char body[] = "{\"type\":\"INSTALL\",\"appId\":\"a1\",\"companyId\":\"c1\","
			   "\"timestamp\":\"2025-01-01T00:00:00Z\",\"webhookId\":\"w1\"}";

START_TEST(test_ed25519_rfc8032)
{
	/* RFC 8032 §7.1 TEST 1 (empty message), key given raw in base64 */
	size_t n;
	unsigned char *pub = unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
				   &n);
	unsigned char *sig = unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
				   "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
				   &n);
	char *pub64 = crypto_base64_encode(pub, 32), *sig64 = crypto_base64_encode(sig, 64);
	struct err e = {0};
	ck_assert_msg(crypto_verify_ed25519(pub64, "", 0, sig64, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519(pub64, NULL, 0, sig64, &e), 0);
	ck_assert_int_eq(crypto_verify_ed25519(pub64, "x", 1, sig64, &e), -1);
	ck_assert_msg(strstr(e.msg, "does not match"), "%s", e.msg);
	free(pub);
	free(sig);
	free(pub64);
	free(sig64);
}
END_TEST

START_TEST(test_ed25519_generated)
{
	EVP_PKEY *key = keygen("ED25519", 0), *other = keygen("ED25519", 0);
	char *pem = pubkey_pem(key), *other_pem = pubkey_pem(other), *der64 = pubkey_der_b64(key);
	unsigned char raw[32];
	size_t raw_len = sizeof(raw);
	ck_assert_int_eq(EVP_PKEY_get_raw_public_key(key, raw, &raw_len), 1);
	char *raw64 = crypto_base64_encode(raw, raw_len);
	char *sig = sign_b64(key, NULL, body, strlen(body));
	struct err e = {0};

	/* good: PEM, raw base64 key, base64 DER */
	ck_assert_msg(crypto_verify_ed25519(pem, body, strlen(body), sig, &e) == 0, "%s", e.msg);
	ck_assert_msg(crypto_verify_ed25519(raw64, body, strlen(body), sig, &e) == 0, "%s", e.msg);
	ck_assert_msg(crypto_verify_ed25519(der64, body, strlen(body), sig, &e) == 0, "%s", e.msg);

	/* bad: changed body (raw bytes matter, even trailing whitespace) */
	char *changed = xasprintf("%s ", body);
	ck_assert_int_eq(crypto_verify_ed25519(pem, changed, strlen(changed), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "does not match"), "%s", e.msg);
	free(changed);

	/* bad: every byte of the signature flipped */
	unsigned char *sraw;
	size_t slen;
	ck_assert_int_eq(crypto_base64_decode(sig, strlen(sig), &sraw, &slen, NULL), 0);
	for (size_t i = 0; i < slen; i++) {
		sraw[i] ^= 0x01;
		char *s = crypto_base64_encode(sraw, slen);
		ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), s, &e), -1);
		free(s);
		sraw[i] ^= 0x01;
	}
	free(sraw);

	/* bad: wrong key */
	ck_assert_int_eq(crypto_verify_ed25519(other_pem, body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "does not match"), "%s", e.msg);

	/* malformed signatures */
	ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), "", &e), -1);
	ck_assert_msg(strstr(e.msg, "missing"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), NULL, &e), -1);
	ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), "not base64!", &e), -1);
	ck_assert_msg(strstr(e.msg, "invalid base64"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), "AAAA", &e), -1);
	ck_assert_msg(strstr(e.msg, "3 bytes, expected 64"), "%s", e.msg);

	/* malformed keys */
	ck_assert_int_eq(crypto_verify_ed25519("", body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "not configured"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519("-----BEGIN PUBLIC KEY-----\ngarbage\n"
					       "-----END PUBLIC KEY-----\n",
					       body, strlen(body), sig, &e),
			 -1);
	ck_assert_msg(strstr(e.msg, "cannot parse PEM"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519("AAAA", body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "Ed25519 public key"), "%s", e.msg);

	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	free(pem);
	free(other_pem);
	free(der64);
	free(raw64);
	free(sig);
}
END_TEST

START_TEST(test_rsa_sha256_generated)
{
	EVP_PKEY *key = keygen("RSA", 2048), *other = keygen("RSA", 2048);
	EVP_PKEY *ed = keygen("ED25519", 0);
	char *pem = pubkey_pem(key), *other_pem = pubkey_pem(other), *der64 = pubkey_der_b64(key);
	char *ed_pem = pubkey_pem(ed);
	char *sig = sign_b64(key, "SHA256", body, strlen(body));
	struct err e = {0};

	ck_assert_msg(crypto_verify_rsa_sha256(pem, body, strlen(body), sig, &e) == 0, "%s", e.msg);
	ck_assert_msg(crypto_verify_rsa_sha256(der64, body, strlen(body), sig, &e) == 0, "%s",
		      e.msg);

	ck_assert_int_eq(crypto_verify_rsa_sha256(pem, body, strlen(body) - 1, sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "does not match"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_rsa_sha256(other_pem, body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "does not match"), "%s", e.msg);

	/* a SHA-1 signature by the right key is not accepted */
	char *sig1 = sign_b64(key, "SHA1", body, strlen(body));
	ck_assert_int_eq(crypto_verify_rsa_sha256(pem, body, strlen(body), sig1, &e), -1);
	free(sig1);

	/* a flipped signature byte */
	unsigned char *sraw;
	size_t slen;
	ck_assert_int_eq(crypto_base64_decode(sig, strlen(sig), &sraw, &slen, NULL), 0);
	ck_assert_uint_eq(slen, 256);
	sraw[100] ^= 0x80;
	char *s = crypto_base64_encode(sraw, slen);
	ck_assert_int_eq(crypto_verify_rsa_sha256(pem, body, strlen(body), s, &e), -1);
	free(s);
	free(sraw);

	/* wrong key types in either direction */
	ck_assert_int_eq(crypto_verify_rsa_sha256(ed_pem, body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "wrong key type"), "%s", e.msg);
	ck_assert_int_eq(crypto_verify_ed25519(pem, body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "wrong key type"), "%s", e.msg);

	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	EVP_PKEY_free(ed);
	free(pem);
	free(other_pem);
	free(der64);
	free(ed_pem);
	free(sig);
}
END_TEST

START_TEST(test_rsa_short_key_rejected)
{
	EVP_PKEY *key = keygen("RSA", 1024);
	char *pem = pubkey_pem(key);
	char *sig = sign_b64(key, "SHA256", body, strlen(body));
	struct err e = {0};
	ck_assert_int_eq(crypto_verify_rsa_sha256(pem, body, strlen(body), sig, &e), -1);
	ck_assert_msg(strstr(e.msg, "too short"), "%s", e.msg);
	EVP_PKEY_free(key);
	free(pem);
	free(sig);
}
END_TEST

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("encoding");
	tcase_add_test(tc, test_base64_rfc4648);
	tcase_add_test(tc, test_base64_alphabets);
	tcase_add_test(tc, test_base64_rejects);
	tcase_add_test(tc, test_base64_binary_roundtrip);
	tcase_add_test(tc, test_hex);
	suite_add_tcase(s, tc);

	tc = tcase_create("hashes");
	tcase_add_test(tc, test_sha256_vectors);
	tcase_add_test(tc, test_hmac_rfc4231);
	tcase_add_test(tc, test_hmac_empty_key_and_message);
	tcase_add_test(tc, test_fingerprint);
	tcase_add_test(tc, test_random);
	tcase_add_test(tc, test_wipe_and_compare);
	tcase_add_test(tc, test_secret_free);
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_add_test(tc, test_state_roundtrip);
	tcase_add_test(tc, test_state_expired);
	tcase_add_test(tc, test_state_tampered);
	tcase_add_test(tc, test_state_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("signatures");
	tcase_set_timeout(tc, 120); /* RSA key generation under valgrind */
	tcase_add_test(tc, test_ed25519_rfc8032);
	tcase_add_test(tc, test_ed25519_generated);
	tcase_add_test(tc, test_rsa_sha256_generated);
	tcase_add_test(tc, test_rsa_short_key_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crypto_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* clang-format on */