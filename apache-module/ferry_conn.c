/*
 * ferry_conn.c: connect to the core's Unix socket and move bytes on it;
 * reads use recvmsg, so a connected app socket the core passes with a LEASE
 * (SCM_RIGHTS, protocol v3) is kept, and any other descriptor closed.
 *
 * Shape of mod_cgid's connect_to_daemon and mod_wsgi's wsgi_connect_daemon:
 * the socket timeout is set before connect, a refused/missing socket (the
 * core is starting or being restarted by the Apache parent) is retried with
 * doubling, capped sleeps inside a total budget, then the request gets 503.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_portable.h"
#include "apr_poll.h"

#include "ferry_client_watch.h"
#include "ferry_conn.h"
#include "ferry_daemon.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* The error is one a restarting core produces. */
static int is_retryable(apr_status_t rv)
{
    return APR_STATUS_IS_ENOENT(rv) || APR_STATUS_IS_ECONNREFUSED(rv)
           || APR_STATUS_IS_EAGAIN(rv) || APR_STATUS_IS_TIMEUP(rv);
}

/* 1 if the core's last known pid is running, 0 if not, -1 if unknown. */
static int core_alive(void)
{
    pid_t pid = ferry_core_pid();

    if (pid <= 0) {
        return -1;
    }
    return (kill(pid, 0) == 0 || errno == EPERM) ? 1 : 0;
}

apr_status_t ferry_conn_open(request_rec *r, apr_pool_t *p, apr_socket_t **sock)
{
    const char *path = ferry_core_socket_path();
    apr_sockaddr_t *sa;
    apr_socket_t *s = NULL;
    apr_status_t rv;
    apr_time_t start = apr_time_now(), left;
    apr_interval_time_t backoff = FERRY_CONNECT_BACKOFF0;
    int attempts = 0, alive;

    *sock = NULL;
    if (path == NULL || *path == '\0') {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0100)
                      "Cannot connect to the core: its socket path is not "
                      "known (did the core start? see FERRY02xx lines)");
        return APR_ENOENT;
    }
    rv = apr_sockaddr_info_get(&sa, path, APR_UNIX, 0, 0, p);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0101)
                      "Cannot resolve the core socket path %s", path);
        return rv;
    }

    for (;;) {
        attempts++;
        rv = apr_socket_create(&s, APR_UNIX, SOCK_STREAM, 0, p);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0102)
                          "Cannot create a socket for the core at %s", path);
            return rv;
        }
        /* Timeout first, so neither connect nor any later I/O can block
         * forever. */
        apr_socket_timeout_set(s, r->server->timeout);
        rv = apr_socket_connect(s, sa);
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                          "connected to the core at %s (attempt %d)",
                          path, attempts);
            *sock = s;
            return APR_SUCCESS;
        }
        apr_socket_close(s);
        left = FERRY_CONNECT_BUDGET - (apr_time_now() - start);
        if (!is_retryable(rv) || left <= 0) {
            break;
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, rv, r,
                      "connect #%d to the core at %s failed; retrying in "
                      "%" APR_TIME_T_FMT " ms", attempts, path,
                      apr_time_as_msec(backoff));
        apr_sleep(backoff < left ? backoff : left);
        backoff *= 2;
        if (backoff > FERRY_CONNECT_BACKOFF_MAX) {
            backoff = FERRY_CONNECT_BACKOFF_MAX;
        }
    }

    alive = core_alive();
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0103)
                  "Cannot connect to the core at %s: gave up after %d "
                  "attempt(s) in %" APR_TIME_T_FMT " ms (core pid %ld %s)",
                  path, attempts, apr_time_as_msec(apr_time_now() - start),
                  (long)ferry_core_pid(),
                  alive == 1 ? "is running" : alive == 0 ? "is not running"
                                                         : "unknown");
    return rv;
}

apr_status_t ferry_conn_send(apr_socket_t *sock, const char *data,
                             apr_size_t len, apr_interval_time_t timeout)
{
    apr_status_t rv;
    apr_size_t n;

    apr_socket_timeout_set(sock, timeout);
    while (len > 0) {
        n = len;
        rv = apr_socket_send(sock, data, &n);
        data += n;
        len -= n;
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t ferry_conn_send_body(apr_socket_t *sock, const char *data,
                                  apr_size_t len, apr_interval_time_t timeout)
{
    char prefix[FERRY_BODY_PREFIX_MAX];
    apr_size_t plen = ferry_body_prefix(prefix, len);
    apr_size_t total = plen + len, done = 0, n;
    struct iovec vec[2];
    apr_int32_t nvec;
    apr_status_t rv;

    apr_socket_timeout_set(sock, timeout);
    while (done < total) {
        nvec = 0;
        if (done < plen) {
            vec[nvec].iov_base = prefix + done;
            vec[nvec].iov_len = plen - done;
            nvec++;
            if (len > 0) {
                vec[nvec].iov_base = (void *)data;
                vec[nvec].iov_len = len;
                nvec++;
            }
        }
        else {
            vec[nvec].iov_base = (void *)(data + (done - plen));
            vec[nvec].iov_len = total - done;
            nvec++;
        }
        n = 0;
        rv = apr_socket_sendv(sock, vec, nvec, &n);
        done += n;
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* Keep fd as the link's passed descriptor, or close it when one is kept. */
static void keep_fd(request_rec *r, ferry_link_t *link, int fd)
{
    if (link->passed_fd < 0) {
        link->passed_fd = fd;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FERRY_LOGNO(0119)
                  "Closing an unexpected descriptor passed by the core "
                  "(one is already waiting to be used)");
    close(fd);
}

/* recvmsg once into buf; descriptors go to keep_fd. */
static apr_status_t recv_once(request_rec *r, ferry_link_t *link, int fd,
                              char *buf, apr_size_t *len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct msghdr msg;
    struct iovec iov;
    struct cmsghdr *cm;
    ssize_t n;
    int *fds;
    size_t i, count;

    memset(&msg, 0, sizeof(msg));
    iov.iov_base = buf;
    iov.iov_len = *len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    do {
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        *len = 0;
        return APR_FROM_OS_ERROR(errno);
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        fds = (int *)CMSG_DATA(cm);
        count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < count; i++) {
            keep_fd(r, link, fds[i]);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        /* More descriptors than we make room for: the kernel closed the
         * rest; nothing to do but say so. */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FERRY_LOGNO(0120)
                      "The core passed more descriptors than one; the "
                      "extra ones were dropped");
    }
    *len = (apr_size_t)n;
    return n == 0 ? APR_EOF : APR_SUCCESS;
}

apr_status_t ferry_conn_recv(request_rec *r, ferry_link_t *link,
                             apr_interval_time_t timeout, apr_socket_t *client,
                             apr_size_t *got)
{
    char *buf;
    apr_size_t space, avail;
    apr_status_t rv;
    apr_os_sock_t fd;

    *got = 0;
    if (ferry_decoder_space(link->dec, FERRY_BODY_CHUNK, &buf, &space) != 0) {
        return APR_ENOMEM;
    }
    if (apr_os_sock_get(&fd, link->sock) != APR_SUCCESS) {
        return APR_EBADF;
    }
    for (;;) {
        avail = space;
        rv = recv_once(r, link, fd, buf, &avail);
        if (rv == APR_SUCCESS) {
            ferry_decoder_commit(link->dec, avail);
            *got = avail;
            return APR_SUCCESS;
        }
        if (!APR_STATUS_IS_EAGAIN(rv) || timeout == 0) {
            return rv;
        }
        rv = ferry_wait_readable(link->sock, client,
                                 timeout > 0 ? timeout : FERRY_CONNECT_BUDGET);
        if (rv != APR_SUCCESS) {
            return rv;          /* APR_TIMEUP, APR_ECONNABORTED (client) */
        }
    }
}

int ferry_link_take_fd(ferry_link_t *link)
{
    int fd = link->passed_fd;

    link->passed_fd = -1;
    return fd;
}

/* ---- Protocol v2: one core connection per client connection ------------ */

static apr_status_t decoder_cleanup(void *data)
{
    ferry_decoder_destroy(data);
    return APR_SUCCESS;
}

/* The idle connection is still usable: the core has neither closed it nor
 * sent anything (between exchanges it sends nothing). */
static int link_alive(ferry_link_t *link)
{
    apr_os_sock_t fd;
    char b;
    ssize_t n;

    if (apr_os_sock_get(&fd, link->sock) != APR_SUCCESS) {
        return 0;
    }
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static apr_status_t passed_fd_cleanup(void *data)
{
    ferry_link_t *link = data;

    if (link->passed_fd >= 0) {
        close(link->passed_fd);
        link->passed_fd = -1;
    }
    return APR_SUCCESS;
}

static void link_close(ferry_link_t *link)
{
    if (link->pool != NULL) {
        apr_pool_destroy(link->pool);   /* closes the socket, frees dec */
    }
    link->pool = NULL;
    link->sock = NULL;
    link->dec = NULL;
    link->exchanges = 0;
}

apr_status_t ferry_link_acquire(request_rec *r, ferry_link_t **linkp,
                                int *reused)
{
    conn_rec *c = r->connection;
    ferry_link_t *link = ap_get_module_config(c->conn_config, &ferry_module);
    apr_status_t rv;

    *reused = 0;
    if (link == NULL) {
        link = apr_pcalloc(c->pool, sizeof(*link));
        link->passed_fd = -1;
        ap_set_module_config(c->conn_config, &ferry_module, link);
    }
    *linkp = link;
    if (link->pool != NULL) {
        if (link_alive(link)) {
            *reused = 1;
            ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                          "reusing the core connection (%u exchanges)",
                          (unsigned)link->exchanges);
            return APR_SUCCESS;
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "the core closed the idle connection; opening another");
        link_close(link);
    }
    rv = apr_pool_create(&link->pool, c->pool);
    if (rv != APR_SUCCESS) {
        link->pool = NULL;
        return rv;
    }
    apr_pool_tag(link->pool, "ferry_core_link");
    link->dec = ferry_decoder_create();
    if (link->dec == NULL) {
        link_close(link);
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(link->pool, link->dec, decoder_cleanup,
                              apr_pool_cleanup_null);
    apr_pool_cleanup_register(link->pool, link, passed_fd_cleanup,
                              apr_pool_cleanup_null);
    rv = ferry_conn_open(r, link->pool, &link->sock);
    if (rv != APR_SUCCESS) {
        link_close(link);
    }
    return rv;
}

void ferry_link_release(request_rec *r, ferry_link_t *link, int reusable)
{
    const char *pending;

    if (link == NULL || link->pool == NULL) {
        return;
    }
    if (reusable && ferry_decoder_pending(link->dec, &pending) == 0) {
        link->exchanges++;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "closing the core connection after %u exchanges",
                  (unsigned)link->exchanges);
    link_close(link);
}
