/* listen.c -- the milter socket: unix, inet, inet6, fd:N and systemd socket
 * activation (LISTEN_FDS/LISTEN_PID). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "listen.h"

#define SD_LISTEN_FDS_START 3

static int
set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int
listen_unix_remove_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "%s is in use by another process", path);
		return -1;
	}
	if (unlink(path) < 0) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s",
		    path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
listen_unix(const struct rmilter_config *c, char *err, size_t errlen)
{
	const char *path = c->bind.path;
	struct sockaddr_un sun;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	if (listen_unix_remove_stale(path, err, errlen) < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto fail;
	if (c->bind_socket_mode >= 0 &&
	    chmod(path, (mode_t)c->bind_socket_mode) < 0)
		goto fail;
	if (c->bind_socket_owner != NULL) {
		char owner[256], *grp;
		uid_t uid = (uid_t)-1;
		gid_t gid = (gid_t)-1;
		struct passwd *pw;
		struct group *gr;

		snprintf(owner, sizeof(owner), "%s", c->bind_socket_owner);
		if ((grp = strchr(owner, ':')) != NULL)
			*grp++ = '\0';
		if (*owner != '\0') {
			if ((pw = getpwnam(owner)) == NULL) {
				snprintf(err, errlen, "bind_socket_owner: "
				    "unknown user '%s'", owner);
				close(fd);
				return -1;
			}
			uid = pw->pw_uid;
		}
		if (grp != NULL && *grp != '\0') {
			if ((gr = getgrnam(grp)) == NULL) {
				snprintf(err, errlen, "bind_socket_owner: "
				    "unknown group '%s'", grp);
				close(fd);
				return -1;
			}
			gid = gr->gr_gid;
		}
		if (chown(path, uid, gid) < 0)
			goto fail;
	}
	if (listen(fd, (int)c->listen_backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", c->bind.text ? c->bind.text : path,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
listen_inet(const struct rmilter_config *c, int family, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16], host[256];
	const char *h = c->bind.host;
	int fd = -1, one = 1, rc;

	if (h != NULL && h[0] == '[') {
		snprintf(host, sizeof(host), "%s", h + 1);
		host[strcspn(host, "]")] = '\0';
		h = host;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", c->bind.port);
	if ((rc = getaddrinfo(h, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", c->bind.text ? c->bind.text :
		    "bind_socket", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, (int)c->listen_backlog) == 0)
			break;
		snprintf(err, errlen, "%s: %s", c->bind.text ? c->bind.text :
		    "bind_socket", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* fd:N; with systemd socket activation LISTEN_PID/LISTEN_FDS must cover N. */
static int
listen_fd(const struct rmilter_config *c, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	int fd = c->bind.fd, acc = 0;
	socklen_t len = sizeof(acc);

	if (pid != NULL && nfds != NULL) {
		if ((pid_t)atol(pid) != getpid()) {
			snprintf(err, errlen, "LISTEN_PID=%s is not our pid "
			    "(%d)", pid, (int)getpid());
			return -1;
		}
		if (fd < SD_LISTEN_FDS_START ||
		    fd >= SD_LISTEN_FDS_START + atoi(nfds)) {
			snprintf(err, errlen, "fd:%d is not among the %s "
			    "socket(s) passed by systemd", fd, nfds);
			return -1;
		}
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 ||
	    !acc) {
		snprintf(err, errlen, "fd:%d is not a listening socket", fd);
		return -1;
	}
	return fd;
}

/* true if systemd passed us sockets (LISTEN_PID is our pid). */
static bool
systemd_activated(void)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");

	return pid != NULL && nfds != NULL && (pid_t)atol(pid) == getpid() &&
	    atoi(nfds) >= 1;
}

bool
listen_is_systemd(void)
{
	return systemd_activated();
}

int
listen_open(const struct rmilter_config *c, bool *is_tcp, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	err[0] = '\0';
	if (c->bind.kind != CONF_LISTEN_FD && systemd_activated()) {
		/* socket activation wins over the configured address */
		struct rmilter_config tmp = *c;

		tmp.bind.kind = CONF_LISTEN_FD;
		tmp.bind.fd = SD_LISTEN_FDS_START;
		fd = listen_fd(&tmp, err, errlen);
	} else switch (c->bind.kind) {
	case CONF_LISTEN_UNIX:
		fd = listen_unix(c, err, errlen);
		break;
	case CONF_LISTEN_INET:
		fd = listen_inet(c, AF_INET, err, errlen);
		break;
	case CONF_LISTEN_INET6:
		fd = listen_inet(c, AF_INET6, err, errlen);
		break;
	case CONF_LISTEN_FD:
		fd = listen_fd(c, err, errlen);
		break;
	default:
		snprintf(err, errlen, "no bind_socket configured");
		return -1;
	}
	if (fd < 0)
		return -1;
	if (set_nonblock_cloexec(fd) < 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*is_tcp = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	return fd;
}

void
listen_close(const struct rmilter_config *c, int fd, bool remove_path)
{
	if (fd < 0)
		return;
	close(fd);
	if (remove_path && c->bind.kind == CONF_LISTEN_UNIX &&
	    c->bind.path != NULL)
		unlink(c->bind.path);
}
