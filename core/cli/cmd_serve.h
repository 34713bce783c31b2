/* cmd_serve.h — `ghl-agent serve`: the daemon (one libevent loop). */
#ifndef GHL_CMD_SERVE_H
#define GHL_CMD_SERVE_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; takes ownership of cfg. Returns the exit code. */
int server_run(struct config *cfg);

#endif
