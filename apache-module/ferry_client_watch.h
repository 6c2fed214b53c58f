/*
 * ferry_client_watch.h: noticing a client that went away while the module
 * waits for a response head (implemented in ferry_client_watch.c).
 */
#ifndef FERRY_CLIENT_WATCH_H
#define FERRY_CLIENT_WATCH_H

#include "httpd.h"
#include "apr_network_io.h"

/* How long a wait for a response head goes on before the client's
 * connection is watched with it (no cost for answers faster than this). */
#define FERRY_WATCH_AFTER apr_time_from_msec(100)

/* The client socket to watch while r waits for its response head, or NULL
 * when there is none to watch (an HTTP/2 stream, an aborted connection). */
apr_socket_t *ferry_client_socket(request_rec *r);

/* Wait until sock is readable, at most timeout (> 0). With client NULL,
 * one poll of sock. Else sock alone for the first FERRY_WATCH_AFTER, then
 * sock and the client's hang-up together. APR_SUCCESS: sock is readable;
 * APR_TIMEUP; APR_ECONNABORTED: the client hung up (or half-closed its
 * side). */
apr_status_t ferry_wait_readable(apr_socket_t *sock, apr_socket_t *client,
                                 apr_interval_time_t timeout);

#endif
