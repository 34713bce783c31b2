/* crypto.c — primitives on OpenSSL 3 EVP APIs (see crypto.h). */
#include "crypto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define STATE_MAC_LABEL "ghl-agent-state-v1."
#define RSA_MIN_BITS 2048
#define ED25519_KEY_LEN 32
#define ED25519_SIG_LEN 64

/* Turn the OpenSSL error queue into "what: reason" and clear it. */
static int ossl_err(struct err *e, const char *what)
{
	unsigned long code = ERR_peek_last_error();
	if (code) {
		char reason[256];
		ERR_error_string_n(code, reason, sizeof(reason));
		err_set(e, "%s: %s", what, reason);
	} else {
		err_set(e, "%s", what);
	}
	ERR_clear_error();
	return -1;
}

int crypto_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		if (RAND_bytes(p, chunk) != 1) {
			ERR_clear_error();
			memset(buf, 0, (size_t)(p - (unsigned char *)buf) + n);
			return -1;
		}
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

void crypto_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

char *secret_free(char *s)
{
	if (s) {
		crypto_wipe(s, strlen(s));
		free(s);
	}
	return NULL;
}

int crypto_eq_ct(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}

int crypto_str_eq_ct(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return 0;
	return crypto_eq_ct(a, b, la);
}

/* ---- base64 / hex ------------------------------------------------------ */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const void *data, size_t n, const char *alphabet, int pad)
{
	const unsigned char *in = data;
	char *out = xmalloc((n + 2) / 3 * 4 + 1);
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *crypto_base64_encode(const void *data, size_t n)
{
	return b64_encode(data, n, b64_std, 1);
}

char *crypto_base64url_encode(const void *data, size_t n)
{
	return b64_encode(data, n, b64_url, 0);
}

static int b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int b64_decode(const char *s, size_t len, int url, unsigned char **out, size_t *out_len,
		      struct err *e)
{
	const char *name = url ? "base64url" : "base64";
	size_t body = len;

	if (!url) {
		if (len % 4)
			return err_set(e, "invalid %s: length %zu is not a multiple of 4", name,
				       len);
		if (len > 0 && s[len - 1] == '=')
			body--;
		if (len > 1 && s[len - 2] == '=')
			body--;
	}
	if (body % 4 == 1)
		return err_set(e, "invalid %s: impossible length %zu", name, len);

	unsigned char *o = xmalloc(body / 4 * 3 + 3);
	size_t olen = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < body; i++) {
		int v = b64_value((unsigned char)s[i], url);
		if (v < 0) {
			crypto_wipe(o, olen);
			free(o);
			return err_set(e, "invalid %s: unexpected character at offset %zu", name,
				       i);
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[olen++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits && (acc & ((1u << bits) - 1))) {
		crypto_wipe(o, olen);
		free(o);
		return err_set(e, "invalid %s: non-zero padding bits (not a canonical encoding)",
			       name);
	}
	acc = 0;
	o[olen] = '\0';
	*out = o;
	*out_len = olen;
	return 0;
}

int crypto_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
			 struct err *e)
{
	return b64_decode(s, len, 0, out, out_len, e);
}

int crypto_base64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
			    struct err *e)
{
	return b64_decode(s, len, 1, out, out_len, e);
}

static void hex_into(const void *data, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *in = data;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

char *crypto_hex_encode(const void *data, size_t n)
{
	char *out = xmalloc(2 * n + 1);
	hex_into(data, n, out);
	return out;
}

/* ---- hashes ------------------------------------------------------------ */

int crypto_sha256(const void *data, size_t n, unsigned char out[CRYPTO_SHA256_LEN])
{
	unsigned int len = 0;
	if (!EVP_Digest(n ? data : "", n, out, &len, EVP_sha256(), NULL) ||
	    len != CRYPTO_SHA256_LEN) {
		ERR_clear_error();
		memset(out, 0, CRYPTO_SHA256_LEN);
		return -1;
	}
	return 0;
}

int crypto_sha256_hex(const void *data, size_t n, char out[CRYPTO_SHA256_HEX_LEN])
{
	unsigned char md[CRYPTO_SHA256_LEN];
	int rc = crypto_sha256(data, n, md);
	hex_into(md, sizeof(md), out);
	return rc;
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
		       unsigned char out[CRYPTO_SHA256_LEN])
{
	static const unsigned char empty[1];
	size_t len = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key_len ? key : empty, key_len,
		       n ? msg : empty, n, out, CRYPTO_SHA256_LEN, &len) ||
	    len != CRYPTO_SHA256_LEN) {
		ERR_clear_error();
		memset(out, 0, CRYPTO_SHA256_LEN);
		return -1;
	}
	return 0;
}

int crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t n,
			   char out[CRYPTO_SHA256_HEX_LEN])
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	int rc = crypto_hmac_sha256(key, key_len, msg, n, mac);
	hex_into(mac, sizeof(mac), out);
	return rc;
}

void crypto_token_fingerprint(const char *secret, char out[CRYPTO_FINGERPRINT_LEN])
{
	char hex[CRYPTO_SHA256_HEX_LEN];
	if (!secret || crypto_sha256_hex(secret, strlen(secret), hex) < 0) {
		memcpy(out, "-", 2);
		return;
	}
	memcpy(out, hex, CRYPTO_FINGERPRINT_LEN - 1);
	out[CRYPTO_FINGERPRINT_LEN - 1] = '\0';
}

char *crypto_random_token(size_t bytes)
{
	unsigned char *raw = xmalloc(bytes);
	if (crypto_random_bytes(raw, bytes) < 0) {
		free(raw);
		return NULL;
	}
	char *tok = crypto_base64url_encode(raw, bytes);
	crypto_wipe(raw, bytes);
	free(raw);
	return tok;
}

/* ---- webhook signatures ------------------------------------------------ */

/* A public key from PEM text: SubjectPublicKeyInfo or a type-specific PEM. */
static EVP_PKEY *decode_pem_pubkey(const char *pem)
{
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL,
							       EVP_PKEY_PUBLIC_KEY, NULL, NULL);
	if (!dctx)
		return NULL;
	const unsigned char *p = (const unsigned char *)pem;
	size_t left = strlen(pem);
	if (!OSSL_DECODER_from_data(dctx, &p, &left)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OSSL_DECODER_CTX_free(dctx);
	return pkey;
}

/* Load a public key from PEM text, base64 DER SubjectPublicKeyInfo or (when
 * allow_raw_ed25519) a base64 raw 32-byte Ed25519 key; check its type. */
static EVP_PKEY *load_pubkey(const char *text, const char *type, const char *label,
			     int allow_raw_ed25519, struct err *e)
{
	EVP_PKEY *pkey = NULL;
	char what[128];
	if (!text || !*text) {
		err_set(e, "%s public key: not configured", label);
		return NULL;
	}
	if (strstr(text, "-----BEGIN")) {
		pkey = decode_pem_pubkey(text);
		if (!pkey) {
			snprintf(what, sizeof(what), "%s public key: cannot parse PEM", label);
			ossl_err(e, what);
			return NULL;
		}
	} else {
		unsigned char *der;
		size_t der_len;
		struct err sub;
		size_t tlen = strlen(text);
		while (tlen &&
		       (text[tlen - 1] == '\n' || text[tlen - 1] == '\r' || text[tlen - 1] == ' '))
			tlen--;
		if (crypto_base64_decode(text, tlen, &der, &der_len, &sub) < 0) {
			err_set(e, "%s public key: not PEM, and %s", label, sub.msg);
			return NULL;
		}
		if (allow_raw_ed25519 && der_len == ED25519_KEY_LEN)
			pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, der, der_len);
		else if (der_len <= LONG_MAX) {
			const unsigned char *p = der;
			pkey = d2i_PUBKEY_ex(NULL, &p, (long)der_len, NULL, NULL);
			if (pkey && p != der + der_len) { /* trailing bytes */
				EVP_PKEY_free(pkey);
				pkey = NULL;
			}
		}
		free(der);
		if (!pkey) {
			snprintf(what, sizeof(what), "%s public key: %s", label,
				 allow_raw_ed25519 ? "base64 is neither a raw 32-byte key nor a "
						     "DER public key"
						   : "base64 is not a DER public key");
			ossl_err(e, what);
			return NULL;
		}
	}
	ERR_clear_error();
	if (!EVP_PKEY_is_a(pkey, type)) {
		const char *got = EVP_PKEY_get0_type_name(pkey);
		err_set(e, "%s public key: wrong key type %s", label, got ? got : "(unknown)");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static int verify_sig(EVP_PKEY *pkey, const char *md, const char *label, size_t want_sig_len,
		      const void *msg, size_t n, const char *sig_b64, struct err *e)
{
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	EVP_MD_CTX *ctx = NULL;
	struct err sub;
	int rc = -1;

	if (!sig_b64 || !*sig_b64) {
		err_set(e, "%s signature: missing", label);
		goto out;
	}
	if (crypto_base64_decode(sig_b64, strlen(sig_b64), &sig, &sig_len, &sub) < 0) {
		err_set(e, "%s signature: %s", label, sub.msg);
		goto out;
	}
	if (sig_len != want_sig_len) {
		err_set(e, "%s signature: %zu bytes, expected %zu", label, sig_len, want_sig_len);
		goto out_free_sig;
	}

	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		ossl_err(e, "EVP_MD_CTX_new");
		goto out_free_sig;
	}
	if (EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) != 1) {
		char what[96];
		snprintf(what, sizeof(what), "%s signature: verification setup", label);
		ossl_err(e, what);
		goto out_free_ctx;
	}
	if (EVP_DigestVerify(ctx, sig, sig_len, n ? msg : "", n) == 1) {
		rc = 0;
	} else {
		ERR_clear_error();
		err_set(e, "%s signature: does not match", label);
	}
out_free_ctx:
	EVP_MD_CTX_free(ctx);
out_free_sig:
	free(sig);
out:
	return rc;
}

int crypto_verify_ed25519(const char *pubkey_pem_or_b64, const void *msg, size_t n,
			  const char *sig_b64, struct err *e)
{
	EVP_PKEY *pkey = load_pubkey(pubkey_pem_or_b64, "ED25519", "Ed25519", 1, e);
	if (!pkey)
		return -1;
	int rc = verify_sig(pkey, NULL, "Ed25519", ED25519_SIG_LEN, msg, n, sig_b64, e);
	EVP_PKEY_free(pkey);
	return rc;
}

int crypto_verify_rsa_sha256(const char *pubkey_pem_or_b64, const void *msg, size_t n,
			     const char *sig_b64, struct err *e)
{
	EVP_PKEY *pkey = load_pubkey(pubkey_pem_or_b64, "RSA", "RSA-SHA256", 0, e);
	if (!pkey)
		return -1;
	int rc = -1;
	int bits = EVP_PKEY_get_bits(pkey);
	if (bits < RSA_MIN_BITS)
		err_set(e, "RSA-SHA256 public key: %d bits is too short (minimum %d)", bits,
			RSA_MIN_BITS);
	else
		rc = verify_sig(pkey, "SHA256", "RSA-SHA256", (size_t)EVP_PKEY_get_size(pkey), msg,
				n, sig_b64, e);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- OAuth state ------------------------------------------------------- */

/* MAC over label || signed part, where signed = "b64payload.expires". */
static int state_mac(const char *secret, const char *signed_part, size_t len,
		     unsigned char mac[CRYPTO_SHA256_LEN])
{
	struct buf m;
	buf_init(&m);
	buf_puts(&m, STATE_MAC_LABEL);
	buf_append(&m, signed_part, len);
	int rc = crypto_hmac_sha256(secret, strlen(secret), m.data, m.len, mac);
	buf_clear(&m);
	return rc;
}

char *crypto_state_sign(const char *secret, const char *payload, int64_t expires_unix)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	if (!secret || !*secret || !payload || expires_unix < 0)
		return NULL;

	struct buf out;
	buf_init(&out);
	char *p64 = crypto_base64url_encode(payload, strlen(payload));
	buf_printf(&out, "%s.%lld", p64, (long long)expires_unix);
	free(p64);
	if (state_mac(secret, out.data, out.len, mac) < 0) {
		buf_clear(&out);
		return NULL;
	}
	char *mac64 = crypto_base64url_encode(mac, sizeof(mac));
	buf_putc(&out, '.');
	buf_puts(&out, mac64);
	free(mac64);
	return buf_take(&out);
}

static int parse_expiry(const char *s, size_t len, int64_t *out)
{
	char tmp[24];
	long long v;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (str_to_ll(tmp, 0, LLONG_MAX, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int crypto_state_verify(const char *secret, const char *state, int64_t now_unix, char **payload_out,
			struct err *e)
{
	unsigned char want[CRYPTO_SHA256_LEN];
	unsigned char *got = NULL, *payload = NULL;
	size_t got_len = 0, payload_len = 0;
	int64_t expires;
	int rc = -1;

	if (payload_out)
		*payload_out = NULL;
	if (!secret || !*secret)
		return err_set(e, "state: no signing secret configured");
	if (!state || !*state)
		return err_set(e, "state: malformed (empty)");
	size_t len = strnlen(state, CRYPTO_STATE_MAX + 1);
	if (len > CRYPTO_STATE_MAX)
		return err_set(e, "state: malformed (longer than %d bytes)", CRYPTO_STATE_MAX);

	const char *dot1 = memchr(state, '.', len);
	const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - state)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - state)))
		return err_set(e, "state: malformed (expected payload.expires.signature)");
	if (parse_expiry(dot1 + 1, (size_t)(dot2 - dot1 - 1), &expires) < 0)
		return err_set(e, "state: malformed (expiry is not a unix time)");

	if (state_mac(secret, state, (size_t)(dot2 - state), want) < 0)
		return err_set(e, "state: cannot compute HMAC");
	const char *mac64 = dot2 + 1;
	if (crypto_base64url_decode(mac64, len - (size_t)(mac64 - state), &got, &got_len, NULL) <
		    0 ||
	    got_len != sizeof(want) || !crypto_eq_ct(got, want, sizeof(want))) {
		err_set(e, "state: signature mismatch (tampered, or signed with another secret)");
		goto out;
	}
	if (now_unix >= expires) {
		err_set(e, "state: expired at %lld (now %lld)", (long long)expires,
			(long long)now_unix);
		goto out;
	}
	if (crypto_base64url_decode(state, (size_t)(dot1 - state), &payload, &payload_len, NULL) <
		    0 ||
	    memchr(payload, '\0', payload_len)) {
		err_set(e, "state: malformed payload");
		goto out;
	}
	if (payload_out) {
		*payload_out = (char *)payload;
		payload = NULL;
	}
	rc = 0;
out:
	free(payload);
	free(got);
	return rc;
}
