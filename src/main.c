/* main.c -- command line: rmilter [-c FILE] [-n] [-t] [-s] [-d] [-v] [-h]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "daemon_main.h"
#include "log.h"
#include "pipeline.h"
#include "record.h"

#define DEFAULT_CONF "/etc/rmilter.conf"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: rmilter [-c FILE] [-n] [-t] [-s] [-d] [-v] [-h]\n"
	    "  -c FILE  configuration file (default " DEFAULT_CONF ")\n"
	    "  -n       stay in the foreground, log to stderr\n"
	    "  -t       test the configuration and exit (0 valid, 1 invalid)\n"
	    "  -s       print the counters of the running daemon and exit\n"
	    "  -d       debug logging\n"
	    "  -v       print the version and exit\n"
	    "  -h       this help\n");
}

/* -t: every diagnostic on stderr as FILE:LINE: level: message. */
static int
config_test(const char *path)
{
	struct conf_diag diag;
	struct rmilter_config *c;
	char line[1024];
	size_t i;

	conf_diag_init(&diag);
	c = pipeline_conf_load(path, &diag);
	for (i = 0; i < diag.n; i++) {
		conf_diag_format(&diag.v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	if (c != NULL)
		fprintf(stderr, "%s: configuration OK (%zu notice(s))\n", path,
		    diag.n);
	else
		fprintf(stderr, "%s: %zu error(s)\n", path, diag.nerrors);
	conf_diag_free(&diag);
	conf_unref(c);
	return c != NULL ? 0 : 1;
}

/* -s: the counters of the running daemon, from its control_socket. */
static int
stats_show(const char *path)
{
	struct conf_diag diag;
	struct rmilter_config *c;
	char line[1024];
	size_t i;
	int rc;

	conf_diag_init(&diag);
	c = pipeline_conf_load(path, &diag);
	if (c == NULL) {
		for (i = 0; i < diag.n; i++) {
			conf_diag_format(&diag.v[i], line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
		fprintf(stderr, "%s: %zu error(s)\n", path, diag.nerrors);
		conf_diag_free(&diag);
		return 1;
	}
	conf_diag_free(&diag);
	rc = stats_client_run(c);
	conf_unref(c);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *conf = DEFAULT_CONF;
	bool foreground = false, debug = false, test = false, stats = false;
	int ch;

	log_init("rmilter");
	while ((ch = getopt(argc, argv, "c:ntsdvh")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			foreground = true;
			break;
		case 't':
			test = true;
			break;
		case 's':
			stats = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'v':
			printf("rmilter %s\n", RMILTER_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (test)
		return config_test(conf);
	if (stats)
		return stats_show(conf);
	return daemon_run(conf, foreground, debug);
}
