/* cmd_rewrap.h — `ghl-agent rewrap`: re-encrypt every stored GHL token under
 * the newest key of token_keys (DESIGN.md "Token encryption"). */
#ifndef GHL_CMD_REWRAP_H
#define GHL_CMD_REWRAP_H

struct config;

/* clang-format off */
#define CMD_REWRAP_HELP                                                                  \
	"Usage: ghl-agent [--config PATH] rewrap [--dry-run]\n\n"                        \
	"Checks every stored agency token and re-encrypts those not under the newest\n"  \
	"key of token_keys (GHL_AGENT_TOKEN_KEYS / token_keys_file) or not yet bound\n"  \
	"to their agency and column (values written before that binding, v<id>:…),\n"  \
	"one transaction per agency with the row locked (a token refresh running in\n"  \
	"a daemon finishes first). Prints what it did; exits 1 when a value could not\n" \
	"be decrypted (its key is missing from token_keys, or it was tampered with or\n" \
	"copied from another agency's row) or the database failed.\n\n"               \
	"  --dry-run   check and count only; nothing is written\n\n"                     \
	"Key rotation: `ghl-agent keygen 2`, set token_keys=\"1:OLD,2:NEW\", restart the\n" \
	"daemons, run `ghl-agent rewrap`, then the old key may be removed.\n"
/* clang-format on */

/* The command (blocking, libpq's synchronous API). Returns the exit code. */
int cmd_rewrap(struct config *cfg, int argc, char **argv);

#endif
