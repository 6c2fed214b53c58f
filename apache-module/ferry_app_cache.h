/*
 * ferry_app_cache.h: the Apache child's idle connections to app processes
 * (protocol v3, docs/protocol.md "Keep-alive"), implemented in
 * ferry_app_cache.c. Shared by the child's threads under a mutex: at most
 * FERRY_APP_CACHE_MAX idle connections, each idle at most
 * FERRY_APP_CACHE_IDLE (below Node's keepAliveTimeout of 5 s), the oldest
 * dropped first; keyed by app and lease id.
 */
#ifndef FERRY_APP_CACHE_H
#define FERRY_APP_CACHE_H

#include "httpd.h"
#include "apr_network_io.h"

#define FERRY_APP_CACHE_MAX  64
#define FERRY_APP_CACHE_IDLE apr_time_from_sec(4)

/* One connection to an app process. It owns its pool (an unmanaged root
 * pool: it outlives requests and moves between threads); destroying the
 * pool closes the socket. */
typedef struct ferry_app_conn_t {
    apr_pool_t *pool;
    apr_socket_t *sock;
    const char *key;            /* the app: "<app_root>\n<app_env>\n<group>" */
    const char *id;             /* the LEASE id of this connection */
    apr_int64_t pid;            /* the app process (log lines) */
    apr_time_t idle_since;
    apr_uint32_t exchanges;     /* completed on this connection */
    struct ferry_app_conn_t *prev, *next;   /* cache list links */
} ferry_app_conn_t;

/* child_init: create the cache and its mutex in pchild. */
void ferry_app_cache_child_init(apr_pool_t *pchild, server_rec *s);

/* Wrap a descriptor the core passed (SCM_RIGHTS) as an app connection. On
 * failure the descriptor is closed and NULL returned. */
ferry_app_conn_t *ferry_app_conn_from_fd(int fd, const char *key,
                                         const char *id, apr_int64_t pid);

/* Close the connection and free its pool. */
void ferry_app_conn_close(ferry_app_conn_t *conn);

/* The app end of an idle connection has neither closed nor sent anything
 * (a non-blocking MSG_PEEK). */
int ferry_app_conn_idle_alive(ferry_app_conn_t *conn);

/* Take idle connections of app key out of the cache for one request's
 * "held" list: the most recently used one of each app process, up to max.
 * Expired and dead ones are closed on the way. Returns the count. */
apr_size_t ferry_app_cache_set_aside(const char *key, ferry_app_conn_t **out,
                                     apr_size_t max);

/* Put conn (back) into the cache. fresh: it just finished an exchange (its
 * idle time starts now); else it was set aside and not used (its idle time
 * runs on). The oldest connection is closed when the cache is full. */
void ferry_app_cache_put(ferry_app_conn_t *conn, int fresh);

#endif
