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
 * sleeps within FERRY_CONNECT_BUDGET. Logs the final failure. */
apr_status_t ferry_conn_open(request_rec *r, apr_socket_t **sock);

/* Send all of data (len bytes), waiting at most timeout per write. */
apr_status_t ferry_conn_send(apr_socket_t *sock, const char *data,
                             apr_size_t len, apr_interval_time_t timeout);

/* Send a BODY frame carrying data (len <= FERRY_BODY_CHUNK). */
apr_status_t ferry_conn_send_body(apr_socket_t *sock, const char *data,
                                  apr_size_t len, apr_interval_time_t timeout);

/* One read from sock into dec; timeout 0 is a non-blocking read (EAGAIN when
 * nothing is there). APR_EOF when the core closed its side. */
apr_status_t ferry_conn_recv(apr_socket_t *sock, ferry_decoder_t *dec,
                             apr_interval_time_t timeout, apr_size_t *got);

#endif
