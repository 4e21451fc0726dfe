/* listen.h -- opening and closing the milter listening socket. */
#ifndef RMILTER_LISTEN_H
#define RMILTER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

struct rmilter_config;

/* Opens c->bind (non-blocking, close-on-exec, listening with
 * c->listen_backlog).  A stale unix socket is removed first.  Returns the fd,
 * or -1 with ERR filled.  *IS_TCP tells whether TCP_NODELAY applies. */
int listen_open(const struct rmilter_config *c, bool *is_tcp, char *err,
    size_t errlen);
/* true if systemd socket activation passed us a socket: listen_open then
 * uses fd 3 whatever bind_socket says. */
bool listen_is_systemd(void);
/* Removes a stale unix socket file at PATH (0 if none or removed); fails
 * with ERR if PATH is not a socket or a process answers there.  Used for
 * bind_socket and control_socket. */
int listen_unix_remove_stale(const char *path, char *err, size_t errlen);
/* Closes FD; REMOVE_PATH removes the unix socket file (only if we made it). */
void listen_close(const struct rmilter_config *c, int fd, bool remove_path);

#endif
