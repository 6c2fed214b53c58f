/*
 * ngx_http_ferry_link.c: a worker's connections to the core's module socket
 * (docs/protocol.md "Transport", "Core restarts").
 *
 *   ngx_http_ferry_link_get   an idle connection this worker kept, else a
 *                             new one; a core that is down (ENOENT,
 *                             ECONNREFUSED, EAGAIN: the master is restarting
 *                             it) is waited for with doubling delays (20 ms
 *                             ... 500 ms) for at most 10 s, then 503
 *   ngx_http_ferry_link_put   keep it for the next request (v3: after DONE
 *                             the connection is back at its start), or close;
 *                             a DONE still in ctx->out rides along: it goes
 *                             out with the next head taken from this link in
 *                             the same turn of the event loop, else alone at
 *                             the end of that turn (one write, one wakeup of
 *                             the core for both under load)
 *   ngx_http_ferry_link_recv  recvmsg: frames into the decoder, a descriptor
 *                             passed with SCM_RIGHTS (LEASE) into the ctx
 *
 * Nothing blocks: a timer runs the connect retries.
 */
#include "ngx_http_ferry.h"
#include <sys/socket.h>
#include <sys/un.h>

#define FERRY_CONNECT_BUDGET   10000    /* ms */
#define FERRY_CONNECT_DELAY0   20
#define FERRY_CONNECT_DELAY1   500
#define FERRY_LINKS_IDLE_MAX   32

/* This worker's idle core connections (a stack: the newest on top), each
 * with the DONE it has not sent yet. */
typedef struct {
    ngx_connection_t  *c;
    u_char            *done;        /* ngx_alloc'ed, NULL when none */
    size_t             len;
    size_t             sent;
} idle_link_t;

static idle_link_t   idle_links[FERRY_LINKS_IDLE_MAX];
static ngx_uint_t    nidle_links;
static ngx_event_t   done_flush;


ngx_connection_t *
ngx_http_ferry_connection(ngx_socket_t fd, ngx_log_t *log)
{
    ngx_connection_t  *c;

    if (ngx_nonblocking(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_socket_errno,
                      "FERRY0436: Cannot use a socket: "
                      ngx_nonblocking_n " failed");
        ngx_close_socket(fd);
        return NULL;
    }
    c = ngx_get_connection(fd, log);
    if (c == NULL) {
        ngx_close_socket(fd);
        return NULL;
    }
    c->type = SOCK_STREAM;
    c->recv = ngx_recv;
    c->send = ngx_send;
    c->recv_chain = ngx_recv_chain;
    c->send_chain = ngx_send_chain;
    c->sendfile = 1;
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->tcp_nodelay = NGX_TCP_NODELAY_DISABLED;
    c->log_error = NGX_ERROR_INFO;
    c->read->log = log;
    c->write->log = log;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->start_time = ngx_current_msec;

    /* Read events only: the write event is added when a write would block
     * (ngx_handle_write_event after EAGAIN). Registered for writes (as
     * ngx_add_conn does), a Unix socket wakes the worker each time the
     * peer reads from it (every request the app reads, every head the
     * core reads): twice the wakeups per request of a TCP upstream. */
    if (ngx_add_event(c->read, NGX_READ_EVENT,
                      (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                      ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_close_connection(c);
        return NULL;
    }
    c->write->ready = 1;
    return c;
}

/* ---- Idle connections --------------------------------------------------- */

static void
link_idle_remove(ngx_connection_t *c)
{
    ngx_uint_t  i;

    for (i = 0; i < nidle_links; i++) {
        if (idle_links[i].c == c) {
            if (idle_links[i].done != NULL) {
                ngx_free(idle_links[i].done);
            }
            idle_links[i] = idle_links[--nidle_links];
            return;
        }
    }
}

/* Between exchanges the core sends nothing: any event on an idle
 * connection is its close (the core stopped, or dropped an idle link). */
static void
link_idle_read(ngx_event_t *rev)
{
    ngx_connection_t  *c = rev->data;
    char               b;

    /* c->close: the worker is exiting (ngx_close_idle_connections) */
    if (!c->close
        && recv(c->fd, &b, 1, MSG_PEEK) == -1 && ngx_socket_errno == NGX_EAGAIN)
    {
        rev->ready = 0;
        if (ngx_handle_read_event(rev, 0) == NGX_OK) {
            return;
        }
    }
    /* the core stopped (or dropped this link): its passes go with it */
    ngx_http_ferry_pass_lost_core();
    link_idle_remove(c);
    ngx_close_connection(c);
}

static void
link_idle_write(ngx_event_t *wev)
{
    (void) wev;
}

/* The DONEs idle links still hold: sent at the end of the event loop's
 * turn (no head came to carry them). */
static void
link_done_flush(ngx_event_t *ev)
{
    idle_link_t  *l;
    ngx_uint_t    i;
    ssize_t       n;

    (void) ev;
    for (i = 0; i < nidle_links; /* void */) {
        l = &idle_links[i];
        while (l->done != NULL && l->sent < l->len) {
            n = l->c->send(l->c, l->done + l->sent, l->len - l->sent);
            if (n == NGX_AGAIN || n == NGX_ERROR) {
                break;
            }
            l->sent += n;
        }
        if (l->done != NULL && l->sent == l->len) {
            ngx_free(l->done);
            l->done = NULL;
        }
        if (l->done != NULL) {
            /* the core takes nothing: drop the link (it counts the lease
             * as ended when the connection closes) */
            ngx_close_connection(l->c);
            ngx_free(l->done);
            idle_links[i] = idle_links[--nidle_links];
            continue;
        }
        i++;
    }
}

void
ngx_http_ferry_link_put(ngx_http_ferry_ctx_t *ctx, int keep)
{
    ngx_connection_t  *c = ctx->peer.connection;
    const char        *pending;
    idle_link_t       *l;
    u_char            *done = NULL;
    size_t             len;

    if (c == NULL) {
        return;
    }
    ctx->peer.connection = NULL;
    len = ctx->out.size - ctx->sent;
    if (keep && nidle_links < FERRY_LINKS_IDLE_MAX && !ngx_terminate
        && !ngx_exiting && !c->read->eof && !c->read->error
        && !c->write->error && ctx->passed_fd < 0
        && ferry_decoder_pending(ctx->dec, &pending) == 0
        && (len == 0
            || (done = ngx_alloc(len, c->log)) != NULL)
        && ngx_handle_read_event(c->read, 0) == NGX_OK)
    {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }
        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }
        c->data = NULL;
        c->log = ngx_cycle->log;
        c->read->log = ngx_cycle->log;
        c->write->log = ngx_cycle->log;
        c->read->handler = link_idle_read;
        c->write->handler = link_idle_write;
        c->idle = 1;
        l = &idle_links[nidle_links++];
        l->c = c;
        l->done = done;
        l->len = len;
        l->sent = 0;
        if (done != NULL) {
            ngx_memcpy(done, ctx->out.data + ctx->sent, len);
            msgpack_sbuffer_clear(&ctx->out);
            ctx->sent = 0;
            if (!done_flush.posted) {
                done_flush.handler = link_done_flush;
                done_flush.log = ngx_cycle->log;
                ngx_post_event(&done_flush, &ngx_posted_events);
            }
        }
        if (c->read->ready) {
            link_idle_read(c->read);
        }
        return;
    }
    if (done != NULL) {
        ngx_free(done);
    }
    if (keep && len > 0) {
        (void) ngx_http_ferry_link_flush_to(ctx, c);   /* DONE, best effort */
    }
    ngx_close_connection(c);
}

/* ---- Connect ------------------------------------------------------------ */

static void link_connect(ngx_http_ferry_ctx_t *ctx);

static void
link_wait_handler(ngx_event_t *ev)
{
    link_connect(ev->data);
}

static void
link_connect(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->r;
    const char          *path = ngx_http_ferry_core_socket();
    struct sockaddr_un   sun;
    ngx_socket_t         fd;
    ngx_err_t            err;
    ngx_msec_t           waited;

    if (path == NULL || *path == '\0' || ngx_strlen(path) >= sizeof(sun.sun_path)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0438: Cannot connect to the ferry core: no socket "
                      "path (is passenger_root set in http{}?)");
        ctx->ready(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    ngx_memzero(&sun, sizeof(sun));
    sun.sun_family = AF_UNIX;
    ngx_cpystrn((u_char *) sun.sun_path, (u_char *) path, sizeof(sun.sun_path));

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_socket_errno,
                      "FERRY0439: Cannot create a socket for the ferry core "
                      "at %s", path);
        ctx->ready(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    if (ngx_nonblocking(fd) == -1
        || (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == -1
            && ngx_socket_errno != NGX_EINPROGRESS))
    {
        err = ngx_socket_errno;
        ngx_close_socket(fd);
        waited = ngx_current_msec - ctx->connect_start;
        if ((err == NGX_ENOENT || err == NGX_ECONNREFUSED || err == NGX_EAGAIN)
            && waited < FERRY_CONNECT_BUDGET && !ngx_exiting && !ngx_terminate)
        {
            /* the master is restarting the core: wait for it (the new
             * one grants its own passes) */
            ngx_http_ferry_pass_lost_core();
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, err,
                           "ferry: core at %s not there, retry in %M ms",
                           path, ctx->connect_delay);
            ctx->wait.handler = link_wait_handler;
            ctx->wait.data = ctx;
            ctx->wait.log = r->connection->log;
            ngx_add_timer(&ctx->wait, ngx_min(ctx->connect_delay,
                                              FERRY_CONNECT_BUDGET - waited));
            ctx->connect_delay = ngx_min(ctx->connect_delay * 2,
                                         FERRY_CONNECT_DELAY1);
            return;
        }
        ngx_log_error(NGX_LOG_ERR, r->connection->log, err,
                      "FERRY0430: Cannot connect to the ferry core at %s "
                      "(waited %M ms)", path, waited);
        ngx_http_ferry_pass_lost_core();
        ctx->ready(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    ctx->peer.connection = ngx_http_ferry_connection(fd, r->connection->log);
    if (ctx->peer.connection == NULL) {
        ctx->ready(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    ctx->link_reused = 0;
    ctx->ready(ctx, NGX_OK);
}

/* data before what ctx->out holds (nothing of it sent yet). */
static ngx_int_t
link_prepend(ngx_http_ferry_ctx_t *ctx, const u_char *data, size_t len)
{
    msgpack_sbuffer  sb;

    msgpack_sbuffer_init(&sb);
    if (msgpack_sbuffer_write(&sb, (const char *) data, len) != 0
        || msgpack_sbuffer_write(&sb, ctx->out.data + ctx->sent,
                                 ctx->out.size - ctx->sent) != 0)
    {
        msgpack_sbuffer_destroy(&sb);
        return NGX_ERROR;
    }
    msgpack_sbuffer_destroy(&ctx->out);
    ctx->out = sb;
    ctx->sent = 0;
    return NGX_OK;
}

void
ngx_http_ferry_link_get(ngx_http_ferry_ctx_t *ctx, int allow_idle,
    ngx_http_ferry_ready_pt ready)
{
    ngx_connection_t  *c;
    idle_link_t       *l;

    ctx->ready = ready;
    while (allow_idle && nidle_links > 0) {
        l = &idle_links[--nidle_links];
        c = l->c;
        if (l->done != NULL) {
            /* this link's unsent DONE goes first, in the same write */
            if (link_prepend(ctx, l->done + l->sent, l->len - l->sent) != NGX_OK) {
                ngx_free(l->done);
                ngx_close_connection(c);
                continue;
            }
            ngx_free(l->done);
            l->done = NULL;
        }
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }
        c->idle = 0;
        c->log = ctx->r->connection->log;
        c->read->log = c->log;
        c->write->log = c->log;
        ctx->peer.connection = c;
        ctx->link_reused = 1;
        ready(ctx, NGX_OK);
        return;
    }
    ctx->connect_start = ngx_current_msec;
    ctx->connect_delay = FERRY_CONNECT_DELAY0;
    link_connect(ctx);
}

/* ---- I/O ---------------------------------------------------------------- */

ngx_int_t
ngx_http_ferry_link_flush_to(ngx_http_ferry_ctx_t *ctx, ngx_connection_t *c)
{
    ssize_t  n;

    while (ctx->sent < ctx->out.size) {
        n = c->send(c, (u_char *) ctx->out.data + ctx->sent,
                    ctx->out.size - ctx->sent);
        if (n == NGX_AGAIN || n == NGX_ERROR) {
            return n;
        }
        ctx->sent += n;
    }
    msgpack_sbuffer_clear(&ctx->out);
    ctx->sent = 0;
    return NGX_OK;
}

ngx_int_t
ngx_http_ferry_link_flush(ngx_http_ferry_ctx_t *ctx)
{
    return ngx_http_ferry_link_flush_to(ctx, ctx->peer.connection);
}

ssize_t
ngx_http_ferry_link_recv(ngx_http_ferry_ctx_t *ctx)
{
    ngx_connection_t  *c = ctx->peer.connection;
    union {
        struct cmsghdr  align;
        char            buf[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct msghdr    msg;
    struct iovec     iov;
    struct cmsghdr  *cm;
    char            *buf;
    size_t           space, i, count;
    ssize_t          n;
    int             *fds;

    if (ferry_decoder_space(ctx->dec, NGX_HTTP_FERRY_READ_CHUNK, &buf, &space) != 0) {
        return NGX_ERROR;
    }
    ngx_memzero(&msg, sizeof(msg));
    iov.iov_base = buf;
    iov.iov_len = space;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    do {
        n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && ngx_socket_errno == NGX_EINTR);
    if (n < 0) {
        if (ngx_socket_errno == NGX_EAGAIN) {
            c->read->ready = 0;
            return NGX_AGAIN;
        }
        c->read->error = 1;
        return NGX_ERROR;
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        fds = (int *) CMSG_DATA(cm);
        count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < count; i++) {
            if (ctx->passed_fd < 0) {
                ctx->passed_fd = fds[i];
                continue;
            }
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "FERRY0437: Closing an unexpected descriptor passed "
                          "by the core (one is already waiting to be used)");
            close(fds[i]);
        }
    }
    if (n == 0) {
        c->read->eof = 1;
        return 0;
    }
    ferry_decoder_commit(ctx->dec, n);
    return n;
}
