/*
 * ferry_app_cache.h: the Apache child's idle connections to app processes
 * (protocol v3, docs/protocol.md "Keep-alive"), implemented in
 * ferry_app_cache.c. Shared by the child's threads under a mutex: at most
 * FERRY_APP_CACHE_MAX idle connections, each idle at most
 * FERRY_APP_CACHE_IDLE (below Node's keepAliveTimeout of 5 s), the oldest
 * dropped first; keyed by app and lease id. Under the same mutex: the
 * child's passes and its requests in flight per app process
 * (docs/protocol.md "Passes"; the table is ferry_pass.c).
 */
#ifndef FERRY_APP_CACHE_H
#define FERRY_APP_CACHE_H

#include "httpd.h"
#include "apr_network_io.h"
#include "apr_tables.h"

#include "ferry_proto.h"

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

/* ---- Passes ------------------------------------------------------------- */

/* A LEASE for app key (whose head asked for a pass) was just read: its pass
 * becomes the app's, or the app has none when it brought none. */
void ferry_app_cache_pass_store(const char *key, const ferry_frame_t *lease);

/* The app's pass is dropped (the core relays its requests: PROCEED). */
void ferry_app_cache_pass_drop(const char *key);

/* Every pass is dropped (the core connection was lost). */
void ferry_app_cache_pass_clear(void);

/* A request of app key on a pass: when the app has a usable pass (not
 * expired, restart file unchanged) and this child an idle connection to one
 * of the pass's processes, take the one whose process has the fewest
 * requests in flight (ferry_pass_choose; if the app has not closed it),
 * count the request on it (end it with ferry_app_cache_uncount) and copy
 * the pass's response headers into *add (const char * name/value pairs in
 * p). With sticky sessions (the pass's sticky data) the sticky id in the
 * head's Cookie headers comes first (ferry_sticky_id): an id of one of the
 * pass's processes takes an idle connection to that one or none, any other
 * id none; no id, the least busy; *add is then the sticky add_headers and
 * the chosen process's Set-Cookie (head->https: the HTTPS one). cookie is
 * the sticky cookie name the app is configured with here (NULL: no sticky
 * sessions here), the id is read with it before the mutex is taken (again
 * with the pass's name if that differs). NULL: take the slow path. The
 * system calls (stat, peek) happen outside the mutex. */
ferry_app_conn_t *ferry_app_cache_pass_take(const char *key,
                                            const ferry_request_head_t *head,
                                            const char *cookie, apr_pool_t *p,
                                            apr_array_header_t **add);

/* A request on process id starts (a LEASE) / ends (every counted one). */
void ferry_app_cache_count(const char *id);
void ferry_app_cache_uncount(const char *id);

#endif
