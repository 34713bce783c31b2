/* cmd_rewrap.h — `ghl-agent rewrap`: re-encrypt every stored GHL token under
 * the newest key of token_keys (DESIGN.md "Token encryption"). */
#ifndef GHL_CMD_REWRAP_H
#define GHL_CMD_REWRAP_H

struct config;

#define CMD_REWRAP_HELP                                                                  \
	"Usage: ghl-agent [--config PATH] rewrap [--dry-run]\n\n"                        \
	"Re-encrypts every stored agency token that is not under the newest key of\n"    \
	"token_keys (GHL_AGENT_TOKEN_KEYS / token_keys_file), one transaction per\n"     \
	"agency with the row locked (a token refresh running in a daemon finishes\n"     \
	"first). Prints what it did; exits 1 when a value could not be decrypted\n"      \
	"(its key is missing from token_keys) or the database failed.\n\n"               \
	"  --dry-run   check and count only; nothing is written\n\n"                     \
	"Key rotation: `ghl-agent keygen 2`, set token_keys=\"1:OLD,2:NEW\", restart the\n" \
	"daemons, run `ghl-agent rewrap`, then the old key may be removed.\n"

/* The command (blocking, libpq's synchronous API). Returns the exit code. */
int cmd_rewrap(struct config *cfg, int argc, char **argv);

#endif
