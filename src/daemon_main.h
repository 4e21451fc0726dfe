/* daemon_main.h -- entry points used by main.c. */
#ifndef RMILTER_DAEMON_MAIN_H
#define RMILTER_DAEMON_MAIN_H

#include <stdbool.h>

struct rmilter_config;

/* Runs the daemon until SIGTERM/SIGINT; returns the exit code. */
int daemon_run(const char *conf_path, bool foreground, bool debug);
/* Loads and validates PATH, logging every diagnostic (notices too when
 * PRINT_NOTICES); NULL if it has errors. */
struct rmilter_config *daemon_load_config(const char *path, bool print_notices);

#endif
