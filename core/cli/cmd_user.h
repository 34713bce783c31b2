/* cmd_user.h — `ghl-agent user add`: create a dashboard/API user from the
 * command line (the first ADMIN, DESIGN.md "People and access"). */
#ifndef GHL_CMD_USER_H
#define GHL_CMD_USER_H

struct config;

/* clang-format off */
#define CMD_USER_HELP                                                                      \
	"Usage: ghl-agent [--config PATH] user add --email EMAIL --role ROLE\n"            \
	"                 [--agency AGENCY_ID]... [--password-stdin]\n\n"                  \
	"Creates a user. ROLE is ADMIN (everything), AGENCY_ADMIN (only the agencies\n"    \
	"given with --agency, repeatable) or SUPPORT (reads everything).\n"                \
	"The password (at least 12 characters) is asked for twice without echo when\n"     \
	"stdin is a terminal; otherwise, or with --password-stdin, the first line of\n"    \
	"stdin is the password:\n\n"                                                       \
	"  printf '%s\\n' \"$PW\" | ghl-agent user add --email a@example.com --role ADMIN\n\n" \
	"It is stored as a bcrypt hash (cost bcrypt_cost, at least 12).\n"                 \
	"Exit status: 0 created, 1 database error or duplicate email, 2 bad arguments.\n"
/* clang-format on */

/* The command (blocking libpq). Returns the exit code. */
int cmd_user(struct config *cfg, int argc, char **argv);

#endif
