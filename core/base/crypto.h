/* crypto.h — the primitives the agent needs, on OpenSSL 3 EVP APIs.
 *
 * Randomness, base64/base64url/hex, SHA-256 and HMAC-SHA256, token
 * fingerprints for logs, constant-time comparison, GHL webhook signature
 * verification (Ed25519 and legacy RSA-SHA256, over the raw body bytes) and
 * the signed, expiring OAuth `state` value.
 *
 * Error convention (STYLE.md): int functions return 0 or -1 with a message in
 * the optional `struct err *`; functions returning a pointer return NULL on
 * failure. Strings returned by this module are malloc'd and owned by the
 * caller (free them; release secrets with secret_free).
 */
#ifndef GHL_CRYPTO_H
#define GHL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_LEN 65  /* 64 hex digits + NUL */
#define CRYPTO_FINGERPRINT_LEN 13 /* 12 hex digits + NUL */

/* Fill buf with n cryptographically strong random bytes (RAND_bytes).
 * Returns 0, or -1 when the generator fails (buf is then zeroed). */
int crypto_random_bytes(void *buf, size_t n);

/* Base64, standard alphabet with '=' padding (RFC 4648 §4). Never NULL. */
char *crypto_base64_encode(const void *data, size_t n);
/* Base64url without padding (RFC 4648 §5), for tokens and URLs. Never NULL. */
char *crypto_base64url_encode(const void *data, size_t n);

/* Strict decoders over (s, len): reject characters outside the alphabet,
 * whitespace, misplaced or missing padding (standard) / any padding (url), and
 * non-zero unused trailing bits, so every byte string has exactly one
 * accepted encoding. On success *out is a malloc'd buffer of *out_len bytes
 * (plus a NUL terminator not counted); the message never echoes the input. */
int crypto_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
			 struct err *e);
int crypto_base64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
			    struct err *e);

/* Lowercase hex of data. Never NULL. */
char *crypto_hex_encode(const void *data, size_t n);

/* SHA-256 of data. Return 0, or -1 when OpenSSL fails (out is then zeroed). */
int crypto_sha256(const void *data, size_t n, unsigned char out[CRYPTO_SHA256_LEN]);
int crypto_sha256_hex(const void *data, size_t n, char out[CRYPTO_SHA256_HEX_LEN]);

/* HMAC-SHA256 (RFC 2104) of msg under key. Return 0 or -1 (out zeroed). */
int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
		       unsigned char out[CRYPTO_SHA256_LEN]);
int crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t n,
			   char out[CRYPTO_SHA256_HEX_LEN]);

/* What logs print instead of a token: the first 12 lowercase hex digits of
 * SHA-256(secret). A NULL secret gives "-". */
void crypto_token_fingerprint(const char *secret, char out[CRYPTO_FINGERPRINT_LEN]);

/* A fresh random token: `bytes` random bytes as base64url (no padding).
 * Malloc'd; NULL when the generator fails. */
char *crypto_random_token(size_t bytes);

/* Overwrite n bytes at p in a way the compiler may not optimise away. */
void crypto_wipe(void *p, size_t n);

/* Wipe and free a malloc'd secret C string (a token, a password, a decrypted
 * value, a header holding one). NULL is allowed. Returns NULL, so that
 * `s = secret_free(s);` also clears the pointer. */
char *secret_free(char *s);

/* Constant-time equality of two n-byte buffers (time depends only on n).
 * Returns 1 when equal, 0 otherwise. */
int crypto_eq_ct(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings; only their lengths may leak.
 * NULL equals only NULL. Returns 1 when equal. */
int crypto_str_eq_ct(const char *a, const char *b);

/* GHL webhook signatures, verified over the raw body bytes msg[0..n).
 * Both return 0 only when sig_b64 (standard base64) is a valid signature of
 * the message under the public key; -1 otherwise, with the reason in *e
 * (malformed key, wrong key type, malformed signature, or "signature does
 * not match").
 *
 * The public key may be given as PEM text ("-----BEGIN PUBLIC KEY-----" or a
 * type-specific PEM such as "BEGIN RSA PUBLIC KEY") or as base64 of the DER
 * SubjectPublicKeyInfo; crypto_verify_ed25519 also takes the raw 32-byte
 * Ed25519 key in base64. A key of the wrong type is rejected. */
int crypto_verify_ed25519(const char *pubkey_pem_or_b64, const void *msg, size_t n,
			  const char *sig_b64, struct err *e);
int crypto_verify_rsa_sha256(const char *pubkey_pem_or_b64, const void *msg, size_t n,
			     const char *sig_b64, struct err *e);

/* Longest state value crypto_state_verify accepts (it arrives in a URL). */
#define CRYPTO_STATE_MAX 4096

/* Signed, expiring OAuth `state`:
 *     base64url(payload) "." expires_unix "." base64url(mac)
 * where mac = HMAC-SHA256(secret, "ghl-agent-state-v1." base64url(payload)
 * "." expires_unix) — the label keeps these MACs from being valid for any
 * other use of the same secret. Malloc'd; NULL when secret is NULL or empty,
 * payload is NULL, or expires_unix is negative. */
char *crypto_state_sign(const char *secret, const char *payload, int64_t expires_unix);

/* Check a state produced by crypto_state_sign. Returns 0 and sets
 * *payload_out (malloc'd, caller frees; may be NULL to skip) when the MAC
 * matches (compared in constant time) and now_unix < expires. Otherwise -1
 * with one of: "state: malformed ...", "state: signature mismatch ..."
 * (tampered, or signed under another secret) — checked before expiry, so a
 * forged value never reports "expired" — or "state: expired ...". */
int crypto_state_verify(const char *secret, const char *state, int64_t now_unix, char **payload_out,
			struct err *e);

#endif
