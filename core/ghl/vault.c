/* vault.c — AES-256-GCM token vault with a rotating key ring (see vault.h). */
#include "vault.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"

#define NONCE_LEN 12
#define TAG_LEN 16
/* Longest plaintext vault_encrypt takes, so every value it makes decrypts. */
#define PLAINTEXT_MAX (VAULT_STORED_MAX / 2)

struct vault_key {
	int id;
	unsigned char key[VAULT_KEY_LEN];
};

struct vault {
	struct vault_key *keys;
	size_t n;
	int newest; /* index into keys of the highest id; meaningful when n > 0 */
};

struct vault *vault_new(void)
{
	return xcalloc(1, sizeof(struct vault));
}

static void keys_free(struct vault_key *keys, size_t n)
{
	crypto_wipe(keys, n * sizeof(*keys));
	free(keys);
}

struct vault *vault_free(struct vault *v)
{
	if (!v)
		return NULL;
	keys_free(v->keys, v->n);
	free(v);
	return NULL;
}

size_t vault_key_count(const struct vault *v)
{
	return v ? v->n : 0;
}

int vault_newest_id(const struct vault *v)
{
	return v && v->n ? v->keys[v->newest].id : 0;
}

static const struct vault_key *find_key(const struct vault *v, int id)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->keys[i].id == id)
			return &v->keys[i];
	return NULL;
}

/* ---- key ring parsing -------------------------------------------------- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
	while (*len && is_space(**s))
		(*s)++, (*len)--;
	while (*len && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Parse one "ID:BASE64KEY" (already trimmed). Messages never echo the text. */
static int parse_entry(const char *s, size_t len, struct vault_key *out, struct err *e)
{
	const char *colon = memchr(s, ':', len);
	if (!colon)
		return err_set(e, "expected ID:BASE64KEY (no ':' found)");

	const char *id_s = s;
	size_t id_len = (size_t)(colon - s);
	trim(&id_s, &id_len);
	long long id = 0;
	if (id_len == 0)
		return err_set(e, "key id is missing before ':'");
	for (size_t i = 0; i < id_len; i++) {
		if (id_s[i] < '0' || id_s[i] > '9')
			return err_set(e, "key id must be a positive integer");
		id = id * 10 + (id_s[i] - '0');
		if (id > INT_MAX)
			return err_set(e, "key id must be at most %d", INT_MAX);
	}
	if (id == 0)
		return err_set(e, "key id must be a positive integer, got 0");

	const char *k = colon + 1;
	size_t k_len = len - (size_t)(k - s);
	trim(&k, &k_len);
	if (k_len == 0)
		return err_set(e, "key id %lld: key is missing after ':'", id);
	unsigned char *raw;
	size_t raw_len;
	struct err sub;
	if (crypto_base64_decode(k, k_len, &raw, &raw_len, &sub) < 0) {
		const char *why = str_has_prefix(sub.msg, "invalid base64: ")
					  ? sub.msg + strlen("invalid base64: ")
					  : sub.msg;
		return err_set(e, "key id %lld: key is not valid base64 (%s)", id, why);
	}
	if (raw_len != VAULT_KEY_LEN) {
		crypto_wipe(raw, raw_len);
		free(raw);
		return err_set(e,
			       "key id %lld: key must decode to exactly %d bytes, got %zu "
			       "(generate one with `ghl-agent keygen`)",
			       id, VAULT_KEY_LEN, raw_len);
	}
	out->id = (int)id;
	memcpy(out->key, raw, VAULT_KEY_LEN);
	crypto_wipe(raw, raw_len);
	free(raw);
	return 0;
}

static size_t count_separators(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == ',' || s[i] == '\n')
			n++;
	return n;
}

static int id_taken(const struct vault *v, const struct vault_key *pending, size_t n, int id)
{
	if (find_key(v, id))
		return 1;
	for (size_t i = 0; i < n; i++)
		if (pending[i].id == id)
			return 1;
	return 0;
}

/* Parse the comma-separated entries of s[0..len) into out[*n..]. Errors are
 * prefixed with `where` and, when always_number or the text holds several
 * entries, the entry's position (counting empty ones). */
static int parse_entries(const struct vault *v, const char *s, size_t len, const char *where,
			 int always_number, struct vault_key *out, size_t *n, struct err *e)
{
	const char *end = s + len;
	size_t field = 0;
	int number = always_number || memchr(s, ',', len) != NULL;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *stop = comma ? comma : end;
		const char *f = s;
		size_t f_len = (size_t)(stop - s);
		field++;
		trim(&f, &f_len);
		if (f_len > 0) {
			struct vault_key *k = &out[*n];
			int rc = parse_entry(f, f_len, k, e);
			if (rc == 0 && id_taken(v, out, *n, k->id))
				rc = err_set(e, "duplicate key id %d", k->id);
			if (rc < 0) {
				crypto_wipe(k, sizeof(*k));
				if (number)
					return err_prefix(e, "%s entry %zu", where, field);
				return err_prefix(e, "%s", where);
			}
			(*n)++;
		}
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

/* Append the parsed keys to the ring (old array wiped, not realloc'd, so no
 * stale copy of a key is left on the heap). */
static void add_parsed(struct vault *v, const struct vault_key *keys, size_t n)
{
	struct vault_key *all = xcalloc(v->n + n, sizeof(*all));
	if (v->n)
		memcpy(all, v->keys, v->n * sizeof(*all));
	memcpy(all + v->n, keys, n * sizeof(*all));
	keys_free(v->keys, v->n);
	v->keys = all;
	v->n += n;
	for (size_t i = 0; i < v->n; i++)
		if (v->keys[i].id > v->keys[v->newest].id)
			v->newest = (int)i;
}

int vault_add_keys(struct vault *v, const char *spec, struct err *e)
{
	if (!spec)
		return err_set(e, "token_keys: not set");
	size_t len = strlen(spec);
	size_t cap = count_separators(spec, len) + 1, n = 0;
	struct vault_key *pending = xcalloc(cap, sizeof(*pending));
	int rc = parse_entries(v, spec, len, "token_keys", 1, pending, &n, e);
	if (rc == 0 && n == 0)
		rc = err_set(e, "token_keys: no key given (expected ID:BASE64KEY,...; generate one "
				"with `ghl-agent keygen`)");
	if (rc == 0)
		add_parsed(v, pending, n);
	keys_free(pending, cap);
	return rc;
}

int vault_load_file(struct vault *v, const char *path, struct err *e)
{
	char *text;
	size_t len;
	if (file_read_all(path, &text, &len, e) < 0)
		return err_prefix(e, "token_keys file");

	size_t cap = count_separators(text, len) + 1, n = 0;
	struct vault_key *pending = xcalloc(cap, sizeof(*pending));
	size_t line_no = 0;
	int rc = 0;
	for (char *line = text; rc == 0 && line <= text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		char *stop = nl ? nl : text + len;
		char *hash = memchr(line, '#', (size_t)(stop - line));
		char where[32];
		line_no++;
		snprintf(where, sizeof(where), "line %zu", line_no);
		rc = parse_entries(v, line, (size_t)((hash ? hash : stop) - line), where, 0,
				   pending, &n, e);
		if (!nl)
			break;
		line = nl + 1;
	}
	if (rc < 0)
		err_prefix(e, "token_keys file %s", path);
	else if (n == 0)
		rc = err_set(e, "token_keys file %s: no key found (expected ID:BASE64KEY lines)",
			     path);
	else
		add_parsed(v, pending, n);
	keys_free(pending, cap);
	crypto_wipe(text, len);
	free(text);
	return rc;
}

char *vault_generate_key_spec(int id)
{
	unsigned char key[VAULT_KEY_LEN];
	if (id <= 0 || crypto_random_bytes(key, sizeof(key)) < 0)
		return NULL;
	char *b64 = crypto_base64_encode(key, sizeof(key));
	size_t b64_len = strlen(b64);
	struct buf out;
	buf_init(&out);
	buf_reserve(&out, 16 + b64_len); /* no realloc below: no stray copy */
	buf_printf(&out, "%d:", id);
	buf_append(&out, b64, b64_len);
	crypto_wipe(key, sizeof(key));
	secret_free(b64);
	return buf_take(&out);
}


/* ---- values ------------------------------------------------------------ */

/* Parse the "b<id>:" (bound) or "v<id>:" (legacy) prefix; returns the offset
 * of the body or -1. */
static int parse_prefix(const char *stored, int *id, int *bound)
{
	long long v = 0;
	int i = 1;
	if (!stored || (stored[0] != 'b' && stored[0] != 'v') || stored[1] < '1' || stored[1] > '9')
		return -1;
	*bound = stored[0] == 'b';
	for (; stored[i] >= '0' && stored[i] <= '9'; i++) {
		v = v * 10 + (stored[i] - '0');
		if (v > INT_MAX)
			return -1;
	}
	if (stored[i] != ':')
		return -1;
	*id = (int)v;
	return i + 1;
}

/* The additional data of a bound value: VAULT_AAD "\n" agency "\n" column,
 * the agency id lower-cased (a UUID as PostgreSQL prints it). */
static int bound_aad(struct buf *aad, const char *agency_id, const char *column, struct err *e)
{
	if (!agency_id || !*agency_id || !column || !*column || strchr(agency_id, '\n') ||
	    strchr(column, '\n'))
		return err_set(e, "a token value is bound to its agency and column: both are "
				  "required");
	buf_puts(aad, VAULT_AAD "\n");
	for (const char *p = agency_id; *p; p++)
		buf_putc(aad, (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p));
	buf_putc(aad, '\n');
	buf_puts(aad, column);
	return 0;
}

static int gcm_init(EVP_CIPHER_CTX *ctx, int enc, const struct vault_key *k,
		    const unsigned char *nonce, const struct buf *aad)
{
	int outl;
	return EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), k->key, nonce, enc, NULL) == 1 &&
	       EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)aad->data,
				(int)aad->len) == 1;
}

/* The OpenSSL error queue as "what: reason"; clears the queue. */
static void ossl_err(struct err *e, const char *what)
{
	unsigned long code = ERR_peek_last_error();
	char reason[256] = "unknown error";
	if (code)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	err_set(e, "%s: %s", what, reason);
}

char *vault_encrypt(const struct vault *v, const char *plaintext, const char *agency_id,
		    const char *column, struct err *e)
{
	if (!v || !v->n) {
		err_set(e, "no token key loaded (set token_keys; generate one with "
			   "`ghl-agent keygen`)");
		return NULL;
	}
	struct buf aad;
	buf_init(&aad);
	if (bound_aad(&aad, agency_id, column, e))
		return NULL;
	if (!plaintext)
		plaintext = "";
	size_t pt_len = strlen(plaintext);
	if (pt_len > PLAINTEXT_MAX) {
		err_set(e, "value to encrypt is %zu bytes, the limit is %d", pt_len, PLAINTEXT_MAX);
		buf_clear(&aad);
		return NULL;
	}

	const struct vault_key *k = &v->keys[v->newest];
	size_t raw_len = NONCE_LEN + pt_len + TAG_LEN;
	unsigned char *raw = xmalloc(raw_len);
	unsigned char *ct = raw + NONCE_LEN, *tag = raw + NONCE_LEN + pt_len;
	EVP_CIPHER_CTX *ctx = NULL;
	char *stored = NULL;
	int outl = 0, finl = 0;

	if (crypto_random_bytes(raw, NONCE_LEN) < 0) {
		err_set(e, "encrypt: random generator failed");
		goto out;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !gcm_init(ctx, 1, k, raw, &aad) ||
	    EVP_EncryptUpdate(ctx, ct, &outl, (const unsigned char *)plaintext, (int)pt_len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + outl, &finl) != 1 ||
	    (size_t)outl + (size_t)finl != pt_len ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1) {
		ossl_err(e, "encrypt: AES-256-GCM failed");
		goto out;
	}

	char *b64 = crypto_base64_encode(raw, raw_len);
	struct buf s;
	buf_init(&s);
	buf_printf(&s, "b%d:", k->id);
	buf_puts(&s, b64);
	free(b64);
	stored = buf_take(&s);
out:
	buf_clear(&aad);
	EVP_CIPHER_CTX_free(ctx);
	free(raw); /* nonce and ciphertext only: nothing secret */
	return stored;
}

/* "unknown key id 3 (loaded: 1, 2)" */
static void unknown_key(const struct vault *v, int id, struct err *e)
{
	struct buf ids;
	buf_init(&ids);
	for (size_t i = 0; i < v->n; i++)
		buf_printf(&ids, "%s%d", i ? ", " : "", v->keys[i].id);
	err_set(e, "unknown key id %d (loaded: %s); add the key that encrypted it to token_keys",
		id, v->n ? buf_cstr(&ids) : "none");
	buf_clear(&ids);
}

char *vault_decrypt(const struct vault *v, const char *stored, const char *agency_id,
		    const char *column, struct err *e)
{
	int id = 0, bound = 0;
	size_t len = stored ? strnlen(stored, VAULT_STORED_MAX + 1) : 0;
	int body = parse_prefix(stored, &id, &bound);
	if (body < 0) {
		err_set(e, "malformed value (expected b<key-id>:<base64>)");
		return NULL;
	}
	if (len > VAULT_STORED_MAX) {
		err_set(e, "malformed value (longer than %d bytes)", VAULT_STORED_MAX);
		return NULL;
	}
	const struct vault_key *k = find_key(v, id);
	if (!k) {
		unknown_key(v, id, e);
		return NULL;
	}
	struct buf aad;
	buf_init(&aad);
	if (!bound)
		buf_puts(&aad, VAULT_AAD_LEGACY);
	else if (bound_aad(&aad, agency_id, column, e))
		return NULL;

	unsigned char *raw;
	size_t raw_len;
	struct err sub;
	if (crypto_base64_decode(stored + body, len - (size_t)body, &raw, &raw_len, &sub) < 0) {
		err_set(e, "malformed value (%s)", sub.msg);
		buf_clear(&aad);
		return NULL;
	}
	if (raw_len < NONCE_LEN + TAG_LEN) {
		err_set(e, "malformed value (%zu bytes, shorter than nonce and tag)", raw_len);
		free(raw);
		buf_clear(&aad);
		return NULL;
	}

	size_t ct_len = raw_len - NONCE_LEN - TAG_LEN;
	unsigned char *ct = raw + NONCE_LEN, *tag = raw + NONCE_LEN + ct_len;
	char *pt = xmalloc(ct_len + 1);
	int outl = 0, finl = 0, ok = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx || !gcm_init(ctx, 0, k, raw, &aad) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)pt, &outl, ct, (int)ct_len) != 1) {
		ossl_err(e, "decrypt: AES-256-GCM failed");
	} else if (EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + outl, &finl) != 1 ||
		   (size_t)outl + (size_t)finl != ct_len) {
		ERR_clear_error();
		err_set(e, "authentication failed (value tampered with, made by another vault, "
			   "or moved from another agency's row or column)");
	} else {
		ok = 1;
	}
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	buf_clear(&aad);
	if (!ok) {
		/* GCM writes unauthenticated plaintext before checking the tag. */
		crypto_wipe(pt, ct_len + 1);
		free(pt);
		return NULL;
	}
	pt[ct_len] = '\0';
	return pt;
}

int vault_needs_rewrap(const struct vault *v, const char *stored)
{
	int id, bound;
	if (!v || !v->n || parse_prefix(stored, &id, &bound) < 0)
		return -1;
	return !bound || id != v->keys[v->newest].id;
}
