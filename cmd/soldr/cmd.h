/* Subcommands of the soldr binary. Each returns the process exit status. */
#ifndef SOLDR_CMD_H
#define SOLDR_CMD_H

#include "common/config.h"
#include "store/store.h"

int cmd_serve(const struct soldr_config *cfg, int argc, char **argv);
int cmd_replay(const struct soldr_config *cfg, int argc, char **argv);
int cmd_webhook(const struct soldr_config *cfg, int argc, char **argv);
int cmd_purge(const struct soldr_config *cfg, int argc, char **argv);
int cmd_stats(const struct soldr_config *cfg, int argc, char **argv);
int cmd_ui(const struct soldr_config *cfg, int argc, char **argv);

/* Creates the data directory if missing and opens the store; prints the
 * reason to stderr and returns non-zero on failure. */
int cmd_open_store(const struct soldr_config *cfg, struct store **st, int fallback_fd);

#endif
