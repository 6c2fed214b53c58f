/*
 * ferry_app_cache.c: the Apache child's idle app connections (see
 * ferry_app_cache.h). One list per child, most recently idle first, under a
 * thread mutex; a request sets aside the ones for its app while the core
 * chooses (they are in no list meanwhile, so no other thread can use them),
 * then puts back those it did not get a `reuse` for. Sockets are closed
 * outside the mutex. The child's passes and in-flight counts (ferry_pass.c)
 * live under the same mutex: a request on a pass takes its connection from
 * this list in the same step as it checks the pass.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include "ferry_app_cache.h"
#include "ferry_config.h"
#include "ferry_log.h"
#include "ferry_pass.h"

APLOG_USE_MODULE(ferry);

static struct {
    ferry_app_conn_t *head;     /* most recently idle */
    ferry_app_conn_t *tail;     /* oldest */
    apr_size_t count;
    ferry_pass_table_t *passes; /* NULL: no passes in this child */
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
} cache;

static void lock(void)
{
#if APR_HAS_THREADS
    if (cache.mutex != NULL) {
        apr_thread_mutex_lock(cache.mutex);
    }
#endif
}

static void unlock(void)
{
#if APR_HAS_THREADS
    if (cache.mutex != NULL) {
        apr_thread_mutex_unlock(cache.mutex);
    }
#endif
}

/* Close every cached connection when the child exits (its pool goes). */
static apr_status_t cache_cleanup(void *data)
{
    ferry_app_conn_t *conn, *next;

    (void)data;
    lock();
    conn = cache.head;
    cache.head = cache.tail = NULL;
    cache.count = 0;
    ferry_pass_table_destroy(cache.passes);
    cache.passes = NULL;
    unlock();
    for (; conn != NULL; conn = next) {
        next = conn->next;
        ferry_app_conn_close(conn);
    }
    return APR_SUCCESS;
}

void ferry_app_cache_child_init(apr_pool_t *pchild, server_rec *s)
{
#if APR_HAS_THREADS
    apr_status_t rv = apr_thread_mutex_create(&cache.mutex,
                                              APR_THREAD_MUTEX_DEFAULT, pchild);

    if (rv != APR_SUCCESS) {
        /* Without a mutex the cache is not used (see set_aside/put). */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0121)
                     "Cannot create the app connection cache mutex; app "
                     "connections will not be kept alive in this child");
        cache.mutex = NULL;
        return;
    }
#endif
    cache.passes = ferry_pass_table_create();
    if (cache.passes == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, APR_ENOMEM, s, FERRY_LOGNO(0139)
                     "Cannot create the pass table; every request of this "
                     "child asks the core");
    }
    else {
        /* A pass's restart.txt is stat'ed as often as the core checks it
         * (PassengerStatThrottleRate, a global directive), not per request. */
        const ferry_server_conf_t *sc = ferry_server_conf(s);
        int rate = sc->stat_throttle_rate != FERRY_UNSET
                   ? sc->stat_throttle_rate : FERRY_DEFAULT_STAT_THROTTLE_RATE;

        ferry_pass_set_restart_interval(cache.passes,
                                        (int64_t)rate * APR_USEC_PER_SEC);
    }
    apr_pool_cleanup_register(pchild, NULL, cache_cleanup,
                              apr_pool_cleanup_null);
}

static int cache_usable(void)
{
#if APR_HAS_THREADS
    return cache.mutex != NULL;
#else
    return 1;
#endif
}

static apr_status_t conn_sock_cleanup(void *data)
{
    ferry_app_conn_t *conn = data;

    if (conn->sock != NULL) {
        apr_socket_close(conn->sock);
        conn->sock = NULL;
    }
    return APR_SUCCESS;
}

ferry_app_conn_t *ferry_app_conn_from_fd(int fd, const char *key,
                                         const char *id, apr_int64_t pid)
{
    apr_pool_t *p;
    ferry_app_conn_t *conn;
    apr_os_sock_t os = fd;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        close(fd);
        return NULL;
    }
    apr_pool_tag(p, "ferry_app_conn");
    conn = apr_pcalloc(p, sizeof(*conn));
    conn->pool = p;
    if (apr_os_sock_put(&conn->sock, &os, p) != APR_SUCCESS) {
        close(fd);
        apr_pool_destroy(p);
        return NULL;
    }
    /* apr_os_sock_put registers no cleanup: ours closes the descriptor. */
    apr_pool_cleanup_register(p, conn, conn_sock_cleanup,
                              apr_pool_cleanup_null);
    conn->key = apr_pstrdup(p, key);
    conn->id = apr_pstrdup(p, id);
    conn->pid = pid;
    return conn;
}

void ferry_app_conn_close(ferry_app_conn_t *conn)
{
    if (conn != NULL) {
        apr_pool_destroy(conn->pool);
    }
}

int ferry_app_conn_idle_alive(ferry_app_conn_t *conn)
{
    apr_os_sock_t fd;
    char b;
    ssize_t n;

    if (conn->sock == NULL
        || apr_os_sock_get(&fd, conn->sock) != APR_SUCCESS) {
        return 0;
    }
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void unlink_conn(ferry_app_conn_t *conn)
{
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    }
    else {
        cache.head = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    else {
        cache.tail = conn->prev;
    }
    conn->prev = conn->next = NULL;
    cache.count--;
}

/* Unlink connections idle too long onto *dead (caller closes them). */
static void expire(apr_time_t now, ferry_app_conn_t **dead)
{
    ferry_app_conn_t *conn;

    while ((conn = cache.tail) != NULL
           && now - conn->idle_since > FERRY_APP_CACHE_IDLE) {
        unlink_conn(conn);
        conn->next = *dead;
        *dead = conn;
    }
}

static void close_list(ferry_app_conn_t *conn)
{
    ferry_app_conn_t *next;

    for (; conn != NULL; conn = next) {
        next = conn->next;
        ferry_app_conn_close(conn);
    }
}

apr_size_t ferry_app_cache_set_aside(const char *key, ferry_app_conn_t **out,
                                     apr_size_t max)
{
    ferry_app_conn_t *conn, *next, *dead = NULL;
    apr_size_t n = 0, i, kept;

    if (!cache_usable()) {
        return 0;
    }
    lock();
    expire(apr_time_now(), &dead);
    /* One connection per app process (the newest): the core leases one
     * process, and the other idle connections stay for this child's other
     * threads (taking them all would make their requests connect anew). */
    for (conn = cache.head; conn != NULL && n < max; conn = next) {
        next = conn->next;
        if (strcmp(conn->key, key) != 0) {
            continue;
        }
        for (i = 0; i < n && strcmp(out[i]->id, conn->id) != 0; i++) {
        }
        if (i < n) {
            continue;
        }
        unlink_conn(conn);
        out[n++] = conn;
    }
    unlock();
    close_list(dead);
    /* Drop the ones the app has closed (or sent something on) meanwhile:
     * offering them would only cost a retry. */
    for (i = 0, kept = 0; i < n; i++) {
        if (ferry_app_conn_idle_alive(out[i])) {
            out[kept++] = out[i];
        }
        else {
            ferry_app_conn_close(out[i]);
        }
    }
    return kept;
}

void ferry_app_cache_put(ferry_app_conn_t *conn, int fresh)
{
    ferry_app_conn_t *pos, *dead = NULL;
    apr_time_t now = apr_time_now();

    if (!cache_usable()) {
        ferry_app_conn_close(conn);
        return;
    }
    if (fresh) {
        conn->idle_since = now;
    }
    lock();
    expire(now, &dead);
    if (now - conn->idle_since > FERRY_APP_CACHE_IDLE) {
        conn->next = dead;
        dead = conn;
        conn = NULL;
    }
    else {
        /* Keep the list ordered by idle_since, newest first. */
        for (pos = cache.head; pos != NULL && pos->idle_since > conn->idle_since;
             pos = pos->next) {
        }
        conn->next = pos;
        conn->prev = pos ? pos->prev : cache.tail;
        if (conn->prev != NULL) {
            conn->prev->next = conn;
        }
        else {
            cache.head = conn;
        }
        if (pos != NULL) {
            pos->prev = conn;
        }
        else {
            cache.tail = conn;
        }
        cache.count++;
        while (cache.count > FERRY_APP_CACHE_MAX) {
            pos = cache.tail;
            unlink_conn(pos);
            pos->next = dead;
            dead = pos;
        }
    }
    unlock();
    close_list(dead);
}

/* ---- Passes ------------------------------------------------------------- */

void ferry_app_cache_pass_store(const char *key, const ferry_frame_t *lease)
{
    if (!cache_usable() || cache.passes == NULL) {
        return;
    }
    lock();
    ferry_pass_store(cache.passes, key, lease, apr_time_now());
    unlock();
}

void ferry_app_cache_pass_drop(const char *key)
{
    if (!cache_usable() || cache.passes == NULL) {
        return;
    }
    lock();
    ferry_pass_drop(cache.passes, key);
    unlock();
}

void ferry_app_cache_pass_clear(void)
{
    if (!cache_usable() || cache.passes == NULL) {
        return;
    }
    lock();
    ferry_pass_clear_all(cache.passes);
    unlock();
}

/* The response headers of a pass request on procs[j] into a new array in
 * p: the pass's add_headers, or with sticky data its sticky add_headers
 * and then "Set-Cookie" pinning the client to procs[j]. */
static apr_array_header_t *pass_headers(const ferry_pass_view_t *v,
                                        apr_size_t j, int https,
                                        apr_pool_t *p)
{
    const ferry_str_t *h = v->sticky_cookie ? v->sticky_add_headers
                                            : v->add_headers;
    apr_size_t i, n = v->sticky_cookie ? v->nsticky_add : v->nadd;
    apr_array_header_t *add = apr_array_make(p, (int)(2 * n + 2),
                                             sizeof(const char *));

    for (i = 0; i < 2 * n; i++) {
        APR_ARRAY_PUSH(add, const char *) = apr_pstrmemdup(p, h[i].ptr,
                                                           h[i].len);
    }
    if (v->sticky_cookie != NULL) {
        APR_ARRAY_PUSH(add, const char *) = "Set-Cookie";
        APR_ARRAY_PUSH(add, const char *) = apr_pstrdup(p,
            https ? v->sticky_set_cookie_https[j] : v->sticky_set_cookie[j]);
    }
    return add;
}

/* The newest idle connection of app key to process id, or NULL. */
static ferry_app_conn_t *find_idle(const char *key, const char *id)
{
    ferry_app_conn_t *conn;

    for (conn = cache.head; conn != NULL; conn = conn->next) {
        if (strcmp(conn->id, id) == 0 && strcmp(conn->key, key) == 0) {
            return conn;
        }
    }
    return NULL;
}

ferry_app_conn_t *ferry_app_cache_pass_take(const char *key,
                                            const ferry_request_head_t *head,
                                            const char *cookie, apr_pool_t *p,
                                            apr_array_header_t **add)
{
    ferry_pass_view_t v;
    ferry_app_conn_t *conn, *cand[FERRY_HELD_MAX], *chosen = NULL, *dead = NULL;
    const char *ids[FERRY_HELD_MAX], *restart_file = NULL, *read_as = NULL;
    char sticky[FERRY_STICKY_ID_SIZE];
    apr_int64_t restart_mtime = 0;
    int restart_due = 0, has_id = 0, reread;
    apr_time_t now = apr_time_now();
    apr_size_t n = 0, pick, j = 0;

    if (!cache_usable() || cache.passes == NULL) {
        return NULL;
    }
    /* The sticky id, read before the mutex with the cookie name the app
     * is configured with here; a pass naming another cookie has it read
     * again with that one (once). */
    if (cookie != NULL) {
        has_id = ferry_sticky_id(head->headers, head->nheaders, cookie,
                                 sticky);
        read_as = cookie;
    }
    /* Under the mutex: no system call (a thread preempted while holding it
     * would stall the child's other threads). */
    for (reread = 0; ; reread++) {
        lock();
        if (!ferry_pass_lookup(cache.passes, key, now, &v)) {
            unlock();
            return NULL;
        }
        /* A due stat stays due if this lookup is repeated. */
        restart_due = restart_due || v.restart_due;
        if (v.sticky_cookie == NULL
            || (read_as != NULL && strcmp(read_as, v.sticky_cookie) == 0)) {
            break;
        }
        if (reread) {
            unlock();
            return NULL;                /* a new pass, a new name: the core */
        }
        read_as = apr_pstrdup(p, v.sticky_cookie);
        unlock();
        has_id = ferry_sticky_id(head->headers, head->nheaders, read_as,
                                 sticky);
    }
    expire(now, &dead);
    if (v.sticky_cookie != NULL && has_id) {
        /* Sticky sessions, and the request names a process: that one,
         * over an idle connection of this child, or the core (none idle:
         * it connects to that process; not one of the pass's: it pins or
         * reroutes the request). */
        j = ferry_pass_index(sticky, v.sticky_ids, v.nprocs);
        if (j != FERRY_PASS_NONE) {
            chosen = find_idle(key, v.procs[j]);
        }
    }
    else {
        /* The newest idle connection of each process the pass names; the
         * one of the least busy process, unless a process this child has
         * no idle connection to is less busy: then the core passes one
         * (that is also how a child warms up, with none idle). */
        for (conn = cache.head; conn != NULL && n < FERRY_HELD_MAX;
             conn = conn->next) {
            if (strcmp(conn->key, key) == 0
                && !ferry_pass_listed(conn->id, ids, n)
                && ferry_pass_listed(conn->id, v.procs, v.nprocs)) {
                cand[n] = conn;
                ids[n++] = conn->id;
            }
        }
        pick = n > 0 ? ferry_pass_choose(cache.passes, key, ids, n, now)
                     : FERRY_PASS_GROW;
        if (pick != FERRY_PASS_GROW) {
            chosen = cand[pick];
            j = ferry_pass_index(chosen->id, v.procs, v.nprocs);
        }
    }
    if (chosen != NULL) {
        unlink_conn(chosen);
        ferry_pass_begin(cache.passes, chosen->id);
        *add = pass_headers(&v, j, head->https, p);
        if (restart_due) {
            restart_file = apr_pstrdup(p, v.restart_file);
            restart_mtime = v.restart_mtime_ns;
        }
    }
    unlock();
    close_list(dead);
    if (chosen == NULL) {
        return NULL;
    }
    /* The restart file as the core saw it (else the core must see this
     * request: it restarts the app, and grants a new pass or none), and a
     * connection the app has not closed meanwhile (else the core passes a
     * new one: a process that died is not offered again). The restart
     * file is stat'ed once per PassengerStatThrottleRate per pass and
     * child, as the core checks it (ferry_pass_set_restart_interval). */
    if (restart_due
        && !ferry_pass_restart_unchanged(restart_file, restart_mtime)) {
        lock();
        ferry_pass_drop(cache.passes, key);
        ferry_pass_end(cache.passes, chosen->id);
        unlock();
        ferry_app_cache_put(chosen, 0);
        return NULL;
    }
    if (!ferry_app_conn_idle_alive(chosen)) {
        ferry_app_cache_uncount(chosen->id);
        ferry_app_conn_close(chosen);
        return NULL;
    }
    return chosen;
}

void ferry_app_cache_count(const char *id)
{
    if (!cache_usable() || cache.passes == NULL) {
        return;
    }
    lock();
    ferry_pass_begin(cache.passes, id);
    unlock();
}

void ferry_app_cache_uncount(const char *id)
{
    if (!cache_usable() || cache.passes == NULL) {
        return;
    }
    lock();
    ferry_pass_end(cache.passes, id);
    unlock();
}
