/*
 * ferry_conn.h: the module's connection to the core's Unix socket
 * (implemented in ferry_conn.c).
 */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include "httpd.h"
#include "apr_network_io.h"

#include "ferry_proto.h"

/* Total time a request waits for the core to accept (the core may be
 * restarting), then 503. */
#define FERRY_CONNECT_BUDGET   apr_time_from_sec(10)
#define FERRY_CONNECT_BACKOFF0 apr_time_from_msec(20)
#define FERRY_CONNECT_BACKOFF_MAX apr_time_from_msec(500)

/* Connect to ferry_core_socket_path(): the socket timeout is set before
 * connect; ENOENT/ECONNREFUSED/EAGAIN are retried with doubling capped
 * sleeps within FERRY_CONNECT_BUDGET. The socket lives in pool p. Logs the
 * final failure. */
apr_status_t ferry_conn_open(request_rec *r, apr_pool_t *p, apr_socket_t **sock);

/* Protocol v2: the core connection of a client connection, reused by its
 * sequential requests (docs/protocol.md "Connections"). It lives in a
 * subpool of c->pool, so it closes with the client connection at the latest. */
typedef struct {
    apr_pool_t *pool;           /* owns sock and dec; NULL when there is none */
    apr_socket_t *sock;
    ferry_decoder_t *dec;
    apr_uint32_t exchanges;     /* completed on this connection */
    int passed_fd;              /* v3: a descriptor that came with SCM_RIGHTS
                                 * and is not taken yet; -1 when none (closed
                                 * by a cleanup of pool) */
} ferry_link_t;

/* The core connection for r: the client connection's idle one if the core
 * has not closed it (*reused = 1), else a new one. APR_ENOMEM when the
 * decoder cannot be allocated; connect failures as ferry_conn_open. */
apr_status_t ferry_link_acquire(request_rec *r, ferry_link_t **link,
                                int *reused);

/* The exchange is over. reusable: it completed cleanly both ways (our END
 * sent, the core's END read, nothing left over), so the connection can carry
 * the next request; otherwise it is closed now. */
void ferry_link_release(request_rec *r, ferry_link_t *link, int reusable);

/* Send all of data (len bytes), waiting at most timeout per write. */
apr_status_t ferry_conn_send(apr_socket_t *sock, const char *data,
                             apr_size_t len, apr_interval_time_t timeout);

/* Send a BODY frame carrying data (len <= FERRY_BODY_CHUNK). */
apr_status_t ferry_conn_send_body(apr_socket_t *sock, const char *data,
                                  apr_size_t len, apr_interval_time_t timeout);

/* One read (recvmsg) from the link's socket into its decoder; timeout 0 is
 * a non-blocking read (EAGAIN when nothing is there). APR_EOF when the core
 * closed its side. A descriptor passed with SCM_RIGHTS (MSG_CMSG_CLOEXEC) is
 * kept in link->passed_fd; a second one before the first is taken, or any
 * beyond the first in a message, is closed at once. client: watch it while
 * waiting (ferry_wait_readable: APR_ECONNABORTED when it hung up), or NULL. */
apr_status_t ferry_conn_recv(request_rec *r, ferry_link_t *link,
                             apr_interval_time_t timeout, apr_socket_t *client,
                             apr_size_t *got);

/* Take the descriptor kept by ferry_conn_recv (-1 when none): the caller
 * owns it from now on. */
int ferry_link_take_fd(ferry_link_t *link);

#endif
