/*
 * ferry_client_watch.c: noticing a client that went away while the module
 * waits for a response head (ferry_client_watch.h), on both data paths.
 *
 * httpd tells a module that the client left only when a write to it fails,
 * and the first write to a peer that closed usually succeeds: a request
 * abandoned before the app answered would be counted under the app's
 * status and the app would work on for nobody. nginx sees the hang-up at
 * once (its upstream module watches the client's connection). mod_ferry
 * cannot afford a system call per request for it, so the first
 * FERRY_WATCH_AFTER of a wait is the same single poll() every wait made
 * before; only a wait that goes on longer polls the client's socket with
 * it, for POLLRDHUP (the client's FIN; pipelined bytes and TLS records do
 * not wake it) or an error. As in nginx, a client that half-closes its
 * side while it waits counts as gone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* POLLRDHUP */
#endif
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_core.h"
#include "apr_portable.h"

#include "ferry_client_watch.h"

APLOG_USE_MODULE(ferry);

#ifdef POLLRDHUP
#define FERRY_HANGUP_EVENTS POLLRDHUP
#else
#define FERRY_HANGUP_EVENTS POLLIN      /* then a peek tells EOF from data */
#endif

apr_socket_t *ferry_client_socket(request_rec *r)
{
    conn_rec *c = r->connection;

    /* An HTTP/2 stream shares its connection with other streams: the
     * stream's own end is not visible on the socket. */
    if (c->master != NULL || c->aborted) {
        return NULL;
    }
    return ap_get_conn_socket(c);
}

/* poll() until an event or the timeout (EINTR restarts it with what is
 * left). Returns poll's result. */
static int poll_for(struct pollfd *pfd, nfds_t n, apr_interval_time_t timeout)
{
    apr_time_t until = apr_time_now() + timeout;
    apr_interval_time_t left = timeout;
    int rc;

    for (;;) {
        rc = poll(pfd, n, (int)((left + 999) / 1000));
        if (rc >= 0 || errno != EINTR) {
            return rc;
        }
        left = until - apr_time_now();
        if (left <= 0) {
            return 0;
        }
    }
}

/* The client's socket reported an event: did it hang up? */
static int hung_up(int fd, short revents)
{
#ifdef POLLRDHUP
    (void)fd;
    return (revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
#else
    char b;

    if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
        return 1;
    }
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
#endif
}

apr_status_t ferry_wait_readable(apr_socket_t *sock, apr_socket_t *client,
                                 apr_interval_time_t timeout)
{
    struct pollfd pfd[2];
    apr_os_sock_t fd, cfd;
    apr_interval_time_t first;
    apr_time_t start;
    int rc;

    if (apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return APR_EBADF;
    }
    pfd[0].fd = fd;
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;

    /* Step One: the peer alone, as long as a normal answer takes. */
    first = client != NULL && timeout > FERRY_WATCH_AFTER ? FERRY_WATCH_AFTER
                                                          : timeout;
    rc = poll_for(pfd, 1, first);
    if (rc > 0) {
        return APR_SUCCESS;
    }
    if (rc < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (first == timeout || apr_os_sock_get(&cfd, client) != APR_SUCCESS) {
        return APR_TIMEUP;
    }

    /* Step Two: a long wait; the client's hang-up ends it too. */
    pfd[1].fd = cfd;
    pfd[1].events = FERRY_HANGUP_EVENTS;
    pfd[1].revents = 0;
    timeout -= first;
    start = apr_time_now();
    rc = poll_for(pfd, 2, timeout);
    if (rc < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (rc == 0) {
        return APR_TIMEUP;
    }
    if (pfd[1].revents != 0 && hung_up(cfd, pfd[1].revents)) {
        return APR_ECONNABORTED;
    }
    if (pfd[0].revents != 0) {
        return APR_SUCCESS;
    }
    /* Bytes from the client, not a hang-up (a system without POLLRDHUP):
     * wait for the peer alone for the rest of the time. */
    timeout -= apr_time_now() - start;
    if (timeout <= 0) {
        return APR_TIMEUP;
    }
    rc = poll_for(pfd, 1, timeout);
    return rc > 0 ? APR_SUCCESS : rc == 0 ? APR_TIMEUP
                                          : APR_FROM_OS_ERROR(errno);
}
