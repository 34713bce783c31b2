/* vault.h — the token vault: GHL tokens encrypted at rest (DESIGN.md "Token encryption").
 *
 * AES-256-GCM with a random 96-bit nonce per value; a value is stored as the
 * text
 *     b<key-id>:<base64(nonce | ciphertext | tag)>
 * and is bound to where it is stored: the associated data is
 * "ghl-agent-token-v2\n<agency id>\n<column>", so a value copied into another
 * agency's row, or into another column, fails to decrypt ("authentication
 * failed"). Values written before the binding ("v<key-id>:…", associated data
 * "ghl-agent-token-v1") still decrypt, wherever they are; `ghl-agent rewrap`
 * rewrites them bound.
 * The vault holds a key ring: the key with the highest id encrypts, every
 * loaded id decrypts, so keys can be rotated (`ghl-agent rewrap` re-encrypts
 * every value for which vault_needs_rewrap is 1).
 *
 * Keys live in memory only and are wiped by vault_free. Error messages never
 * contain key material or plaintext. A loaded vault is read-only, so one vault
 * may be shared by threads once loading is done.
 */
#ifndef GHL_VAULT_H
#define GHL_VAULT_H

#include <stddef.h>

#include "util.h"

#define VAULT_KEY_LEN 32
#define VAULT_AAD "ghl-agent-token-v2"	      /* + "\n" agency id "\n" column */
#define VAULT_AAD_LEGACY "ghl-agent-token-v1" /* "v<id>:" values */
/* Longest stored value vault_decrypt accepts. */
#define VAULT_STORED_MAX (1024 * 1024)

struct vault;

/* An empty vault (no keys). Never NULL. */
struct vault *vault_new(void);

/* Wipe every key and free the vault. NULL is allowed; returns NULL. */
struct vault *vault_free(struct vault *v);

/* Add keys from `token_keys` text: "ID:BASE64KEY,ID:BASE64KEY,...", where ID is
 * a positive integer and BASE64KEY is standard base64 of exactly 32 bytes.
 * Whitespace around entries is ignored, as are empty entries. All or nothing:
 * on error no key is added and the message names the entry position and what
 * is wrong ("token_keys entry 2: ..."); ids already in the vault are
 * duplicates too. Returns 0 or -1. */
int vault_add_keys(struct vault *v, const char *spec, struct err *e);

/* Same as vault_add_keys with the contents of a file: entries separated by
 * commas and/or newlines, '#' starts a comment running to the end of the
 * line. Errors name the path and line. The file buffer is wiped after use. */
int vault_load_file(struct vault *v, const char *path, struct err *e);

size_t vault_key_count(const struct vault *v);
/* The id new values are encrypted under; 0 when the vault has no key. */
int vault_newest_id(const struct vault *v);

/* Encrypt a NUL-terminated plaintext under the newest key, bound to the
 * value's place: agency_id (the row's UUID) and column (its name; both
 * required). Returns the malloc'd stored text (caller frees), or NULL with an
 * error when the vault has no key or OpenSSL fails. */
char *vault_encrypt(const struct vault *v, const char *plaintext, const char *agency_id,
		    const char *column, struct err *e);

/* Decrypt a value made by vault_encrypt for the same agency_id and column
 * (a legacy "v<id>:" value ignores them). Returns the malloc'd plaintext —
 * release it with secret_free — or NULL with one of:
 * "malformed value ...", "unknown key id N ...", "authentication failed ..."
 * (tampered, or moved from elsewhere). */
char *vault_decrypt(const struct vault *v, const char *stored, const char *agency_id,
		    const char *column, struct err *e);

/* 1 when stored should be rewritten (not under the newest key, or a legacy
 * unbound "v<id>:" value), 0 when not, -1 when its prefix is malformed or the
 * vault has no key. Only the prefix is inspected; decryption can still fail. */
int vault_needs_rewrap(const struct vault *v, const char *stored);


/* A new "ID:BASE64KEY" entry from 32 random bytes, for `ghl-agent keygen`.
 * Malloc'd and secret: release it with secret_free. NULL when id is
 * not positive or the random generator fails. */
char *vault_generate_key_spec(int id);

#endif
