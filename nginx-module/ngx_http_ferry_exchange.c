/*
 * ngx_http_ferry_exchange.c: what the data path steps share to end an
 * exchange (as mod_ferry's ferry_exchange.c): DONE to the core, failing
 * the request with a status, the request pool's cleanup, a client that
 * went away before the response head. Called by the
 * steps (lease.c, app.c, relay.c) and the orchestrator (handler.c); calls
 * none of them, only the connections below (link.c, app_cache.c).
 */
#include "ngx_http_ferry.h"


ngx_int_t
ngx_http_ferry_encode_done(ngx_http_ferry_ctx_t *ctx, const char *outcome,
    ngx_int_t status, int reusable)
{
    struct timeval  tv;
    ferry_done_t    d;

    ngx_gettimeofday(&tv);
    ngx_memzero(&d, sizeof(d));
    d.id = (const char *) ctx->lease_id.data;
    d.outcome = outcome;
    d.status = status;
    d.bytes_in = ctx->bytes_in;
    d.bytes_out = ctx->bytes_out;
    d.duration_us = (int64_t) (tv.tv_sec - ctx->lease_tv.tv_sec) * 1000000
                    + (tv.tv_usec - ctx->lease_tv.tv_usec);
    d.reusable = reusable;
    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, ctx->r->connection->log, 0,
                   "ferry: DONE %V: %s, status %i, %O bytes in, %O bytes out, "
                   "%L us, %s", &ctx->lease_id, outcome, status, ctx->bytes_in,
                   ctx->bytes_out, d.duration_us, reusable ? "kept" : "closed");
    return ferry_encode_done(&ctx->out, &d) == 0 ? NGX_OK : NGX_ERROR;
}

void
ngx_http_ferry_done(ngx_http_ferry_ctx_t *ctx, const char *outcome,
    ngx_int_t status, int reusable)
{
    int  keep = 0;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
    ngx_http_ferry_pass_uncount(ctx);
    if (ctx->passed) {
        ctx->passed = 0;                /* the core never heard of it */
        return;
    }
    if (!ctx->direct) {
        return;
    }
    ctx->direct = 0;
    if (ctx->peer.connection == NULL) {
        return;
    }
    /* DONE: one-way, nothing to wait for; it rides with the next head on
     * this link (link_put). A core that died meanwhile changes nothing for
     * this request. */
    msgpack_sbuffer_clear(&ctx->out);
    ctx->sent = 0;
    if (ngx_http_ferry_encode_done(ctx, outcome, status, reusable) == NGX_OK) {
        keep = 1;
    }
    ngx_http_ferry_link_put(ctx, keep);
}

void
ngx_http_ferry_fail(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc)
{
    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
    if (ctx->direct || ctx->passed || ctx->counted) {
        ngx_http_ferry_done(ctx, rc == NGX_HTTP_GATEWAY_TIME_OUT
                                 ? "timeout" : "app_error",
                            rc > NGX_OK ? rc : 0, 0);
    }
    if (ctx->conn != NULL) {
        ngx_http_ferry_app_conn_close(ctx->conn);
        ctx->conn = NULL;
    }
    ngx_http_ferry_app_give_back(ctx);
    ngx_http_ferry_link_put(ctx, 0);
    ngx_http_finalize_request(ctx->r, rc);
}

void
ngx_http_ferry_cleanup(void *data)
{
    ngx_http_ferry_ctx_t  *ctx = data;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
    if (ctx->direct || ctx->passed || ctx->counted) {
        /* the request ended before its exchange with the app did */
        ngx_http_ferry_done(ctx, "client_aborted", 0, 0);
    }
    if (ctx->conn != NULL) {
        ngx_http_ferry_app_conn_close(ctx->conn);
        ctx->conn = NULL;
    }
    ngx_http_ferry_app_give_back(ctx);
    if (ctx->passed_fd >= 0) {
        close(ctx->passed_fd);
        ctx->passed_fd = -1;
    }
    if (ctx->peer.connection != NULL) {
        ngx_close_connection(ctx->peer.connection);
        ctx->peer.connection = NULL;
    }
    if (ctx->dec != NULL) {
        ferry_decoder_destroy(ctx->dec);
        ctx->dec = NULL;
    }
    msgpack_sbuffer_destroy(&ctx->out);
}


/* The client left before the response head: a relaying core gets ABORT
 * (best effort: the link is closed next; a core still deciding, LEASE or
 * PROCEED, takes the close as the client going away), and nginx ends the
 * request with 499 as its upstream module does. */
static void
ngx_http_ferry_client_left(ngx_http_ferry_ctx_t *ctx)
{
    ngx_connection_t  *c = ctx->peer.connection;
    msgpack_sbuffer    sb;

    if (ctx->relaying && c != NULL && ctx->sent >= ctx->out.size) {
        msgpack_sbuffer_init(&sb);
        if (ferry_encode_abort(&sb, "client_aborted",
                               "The client closed the connection before the "
                               "response") == 0)
        {
            (void) c->send(c, (u_char *) sb.data, sb.size);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    ngx_http_ferry_fail(ctx, NGX_HTTP_CLIENT_CLOSED_REQUEST);
}

/* nginx's ngx_http_upstream_check_broken_connection, for a read event. */
void
ngx_http_ferry_watch_client(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_connection_t      *c = r->connection;
    ngx_event_t           *rev = c->read;
    ngx_err_t              err = 0;
    char                   buf[1];
    ssize_t                n;

    if (ctx == NULL || ctx->head_done) {
        ngx_http_block_reading(r);
        return;
    }
#if (NGX_HTTP_V2)
    if (r->stream) {
        return;
    }
#endif
#if (NGX_HAVE_EPOLLRDHUP)
    if ((ngx_event_flags & NGX_USE_EPOLL_EVENT) && ngx_use_epoll_rdhup) {
        socklen_t  len = sizeof(ngx_err_t);

        if (!rev->pending_eof) {
            return;             /* bytes (a body, a pipelined request) */
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
            err = ngx_socket_errno;
        }
    } else
#endif
    {
        n = recv(c->fd, buf, 1, MSG_PEEK);
        err = ngx_socket_errno;
        if ((ngx_event_flags & NGX_USE_LEVEL_EVENT) && rev->active) {
            if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
                ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }
        if (n > 0 || (n == -1 && err == NGX_EAGAIN)) {
            return;
        }
        if (n == 0) {
            err = 0;
        }
    }
    rev->eof = 1;
    c->error = 1;
    ngx_log_error(NGX_LOG_INFO, c->log, err,
                  "ferry: the client closed the connection before the "
                  "response head");
    ngx_http_ferry_client_left(ctx);
}
