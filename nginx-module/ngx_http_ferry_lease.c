/*
 * ngx_http_ferry_lease.c: the core's part of a direct-path exchange
 * (protocol v3, docs/protocol.md "Version 3: leases"), event-driven:
 *
 *   ngx_http_ferry_lease_start  set aside this worker's idle connections to
 *                               the app ("held"), send REQUEST_HEAD v3, read
 *                               LEASE (with the app socket passed by
 *                               SCM_RIGHTS, or "reuse" a held one) or PROCEED
 *                               (the relay path follows on this connection),
 *                               and hand it to the orchestrator's callback
 *   ngx_http_ferry_lease_retry  a leased app connection was stale: DONE
 *                               "stale", then the same head again (once)
 *
 * DONE at the end of the exchange is ngx_http_ferry_done (exchange.c).
 *
 * A head the core never answered (its connection closed before any byte of
 * LEASE/PROCEED: an idle link it dropped, or it died) is sent once more on a
 * new connection, which waits for a restarted core.
 */
#include "ngx_http_ferry.h"
#include <signal.h>

#define FERRY_PID_WAIT      1000    /* ms: a process that exited is gone */
#define FERRY_PID_POLL      20

static void lease_send_head(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc);
static void lease_head_write(ngx_event_t *wev);
static void lease_answer_read(ngx_event_t *rev);

static void
lease_link_dummy(ngx_event_t *ev)
{
    (void) ev;
}

/* The v3 head (with the held ids but the stale one) appended to ctx->out. */
static ngx_int_t
lease_encode_head(ngx_http_ferry_ctx_t *ctx)
{
    const char  *ids[FERRY_HELD_MAX];
    ngx_uint_t   i, n = 0;
    u_char      *id;

    for (i = 0; i < ctx->nheld; i++) {
        if (ctx->held[i] == NULL || ctx->held[i]->dead
            || (ctx->stale_id.len == ctx->held[i]->id.len
                && ngx_memcmp(ctx->stale_id.data, ctx->held[i]->id.data,
                              ctx->stale_id.len) == 0))
        {
            continue;           /* a retry leaves the stale process out */
        }
        id = ngx_pnalloc(ctx->r->pool, ctx->held[i]->id.len + 1);
        if (id == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(id, ctx->held[i]->id.data, ctx->held[i]->id.len);
        id[ctx->held[i]->id.len] = '\0';
        ids[n++] = (const char *) id;
    }
    ctx->head.version = FERRY_PROTO_VERSION;
    ctx->head.held = ids;
    ctx->head.nheld = n;
    ctx->head.pass = ngx_http_ferry_pass_wanted() && !ctx->upgrade;
    /* ngx_http_ferry_pass_start() routes by the sticky cookie */
    ctx->head.pass_sticky = ctx->head.pass;
    if (ferry_encode_request_head(&ctx->out, &ctx->head) != 0) {
        ngx_log_error(NGX_LOG_ERR, ctx->r->connection->log, 0,
                      "FERRY0440: Cannot encode the request head: over the "
                      "1 MiB frame limit (%uz headers)", ctx->head.nheaders);
        return NGX_ERROR;
    }
    ctx->head.held = NULL;
    ctx->head.nheld = 0;
    return NGX_OK;
}

void
ngx_http_ferry_lease_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_answer_pt answered)
{
    ctx->answered = answered;
    ctx->direct = 0;
    if (ctx->dec == NULL) {
        /* the core's answer (a request on a pass has none) */
        ctx->dec = ferry_decoder_create();
        if (ctx->dec == NULL) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }
    ctx->answer_bytes = 0;
    ngx_http_ferry_app_set_aside(ctx);
    if (lease_encode_head(ctx) != NGX_OK) {
        ngx_http_ferry_fail(ctx, NGX_HTTP_REQUEST_HEADER_TOO_LARGE);
        return;
    }
    if (ctx->peer.connection != NULL) {
        lease_send_head(ctx, NGX_OK);   /* after DONE "stale": the same link */
        return;
    }
    ngx_http_ferry_link_get(ctx, 1, lease_send_head);
}

static void
lease_send_head(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc)
{
    ngx_connection_t  *c = ctx->peer.connection;

    if (rc != NGX_OK) {
        ngx_http_ferry_fail(ctx, rc);
        return;
    }
    c->data = ctx;
    c->read->handler = lease_answer_read;
    c->write->handler = lease_head_write;
    lease_head_write(c->write);
}

/* The core link closed before anything of its answer: once, a new one. */
static void
lease_relink(ngx_http_ferry_ctx_t *ctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->r->connection->log, 0,
                   "ferry: the core connection closed before an answer; "
                   "sending the head on a new one");
    ngx_http_ferry_pass_lost_core();
    ngx_http_ferry_link_put(ctx, 0);
    ctx->link_retried = 1;
    msgpack_sbuffer_clear(&ctx->out);
    ctx->sent = 0;
    ferry_decoder_destroy(ctx->dec);
    ctx->dec = ferry_decoder_create();
    if (ctx->dec == NULL || lease_encode_head(ctx) != NGX_OK) {
        ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_http_ferry_link_get(ctx, 0, lease_send_head);
}

static void
lease_head_write(ngx_event_t *wev)
{
    ngx_connection_t           *c = wev->data;
    ngx_http_ferry_ctx_t       *ctx = c->data;
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_int_t                   rc;
    const char                 *pending;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, ctx->r->connection->log, NGX_ETIMEDOUT,
                      "FERRY0441: Cannot send the request head to the core: "
                      "timed out");
        ngx_http_ferry_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    rc = ngx_http_ferry_link_flush(ctx);
    if (rc == NGX_AGAIN) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_add_timer(wev, 60000);
        return;
    }
    if (rc == NGX_ERROR) {
        if (!ctx->link_retried) {
            lease_relink(ctx);
            return;
        }
        ngx_log_error(NGX_LOG_ERR, ctx->r->connection->log, ngx_socket_errno,
                      "FERRY0442: Cannot send the request head to the core "
                      "at %s", ngx_http_ferry_core_socket());
        ngx_http_ferry_pass_lost_core();
        ngx_http_ferry_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    if (wev->timer_set) {
        ngx_del_timer(wev);
    }
    wev->handler = lease_link_dummy;
    /* the answer: the core may queue the request or start a process first */
    lcf = ngx_http_get_module_loc_conf(ctx->r, ngx_http_ferry_module);
    ngx_add_timer(c->read, lcf->read_timeout);
    if (ferry_decoder_pending(ctx->dec, &pending) > 0) {
        lease_answer_read(c->read);
        return;
    }
    /* The answer is not there yet (it needs the core's turn): the event
     * loop tells when it is, no read that would only say EAGAIN. */
    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}

/* The LEASE's fields into ctx (copied: the decoder's buffer is reused). */
static ngx_int_t
lease_take(ngx_http_ferry_ctx_t *ctx, ferry_frame_t *f)
{
    ngx_http_request_t         *r = ctx->r;
    ngx_http_ferry_app_conn_t  *ac = NULL;
    ferry_pass_table_t         *t;
    ngx_str_t                  *h;
    ferry_str_t                 n, v;
    ngx_uint_t                  i;
    int                         fd = ctx->passed_fd;

    ctx->passed_fd = -1;
    ctx->lease_id.len = f->id.len;
    ctx->lease_id.data = ngx_pnalloc(r->pool, f->id.len + 1);
    ctx->lease_head.len = f->lease_head_len;
    ctx->lease_head.data = ngx_pnalloc(r->pool, f->lease_head_len);
    ctx->add_headers = ngx_array_create(r->pool, 2 * f->nadd + 1, sizeof(ngx_str_t));
    if (ctx->lease_id.data == NULL || ctx->lease_head.data == NULL
        || ctx->add_headers == NULL)
    {
        if (fd >= 0) {
            close(fd);
        }
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(ctx->lease_id.data, f->id.ptr, f->id.len);
    ctx->lease_id.data[f->id.len] = '\0';
    ngx_memcpy(ctx->lease_head.data, f->lease_head, f->lease_head_len);
    ctx->lease_pid = f->pid;
    ctx->chunked = f->chunked ? 1 : 0;
    for (i = 0; i < f->nadd; i++) {
        ferry_frame_add_header(f, i, &n, &v);
        h = ngx_array_push_n(ctx->add_headers, 2);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h[0].len = n.len;
        h[0].data = ngx_pstrdup(r->pool, &(ngx_str_t) { n.len, (u_char *) n.ptr });
        h[1].len = v.len;
        h[1].data = ngx_pstrdup(r->pool, &(ngx_str_t) { v.len, (u_char *) v.ptr });
        if ((n.len && h[0].data == NULL) || (v.len && h[1].data == NULL)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    ctx->lease_time = ngx_current_msec;
    ngx_gettimeofday(&ctx->lease_tv);
    t = ctx->head.pass ? ngx_http_ferry_pass_table() : NULL;
    if (t != NULL) {
        /* with a pass or without (which ends the app's pass) */
        ferry_pass_store(t, (const char *) ctx->app_key.data, f,
                         ngx_http_ferry_pass_now());
    }

    if (f->reuse) {
        if (fd >= 0) {
            close(fd);                  /* a stray one: reuse sends none */
        }
        for (i = 0; i < ctx->nheld; i++) {
            if (ctx->held[i] != NULL
                && ctx->held[i]->id.len == ctx->lease_id.len
                && ngx_memcmp(ctx->held[i]->id.data, ctx->lease_id.data,
                              ctx->lease_id.len) == 0)
            {
                ac = ctx->held[i];
                ctx->held[i] = NULL;
                break;
            }
        }
        if (ac == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "FERRY0443: Cannot use the lease from the core: it "
                          "reuses connection %V, which this request does not "
                          "hold", &ctx->lease_id);
            return NGX_HTTP_BAD_GATEWAY;
        }
        ctx->conn_reused = 1;
    } else {
        if (fd < 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "FERRY0444: Cannot use the lease from the core: no "
                          "connection to the app came with it");
            return NGX_HTTP_BAD_GATEWAY;
        }
        ac = ngx_http_ferry_app_wrap_fd(ctx, fd);
        if (ac == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ctx->conn_reused = 0;
    }
    ac->pid = ctx->lease_pid;
    ctx->conn = ac;
    ctx->direct = 1;
    ngx_http_ferry_pass_count(ctx);
    ngx_http_ferry_app_give_back(ctx);
    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ferry: lease %V: app pid %L, %s connection, body %s, "
                   "deadline %L ms", &ctx->lease_id, ctx->lease_pid,
                   ctx->conn_reused ? "kept" : "new",
                   ctx->chunked ? "chunked" : "as is", f->deadline_ms);
    ctx->deadline_ms = f->deadline_ms > 0 ? (ngx_msec_t) f->deadline_ms : 0;
    return NGX_OK;
}

static void
lease_answer_read(ngx_event_t *rev)
{
    ngx_connection_t      *c = rev->data;
    ngx_http_ferry_ctx_t  *ctx = c->data;
    ngx_http_request_t    *r = ctx->r;
    ferry_frame_t          f;
    ferry_proto_status     st;
    ngx_int_t              rc;
    ssize_t                n;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, NGX_ETIMEDOUT,
                      "FERRY0445: Cannot read the core's answer to the request "
                      "head: no answer in time");
        ngx_http_ferry_fail(ctx, NGX_HTTP_GATEWAY_TIME_OUT);
        return;
    }
    for ( ;; ) {
        st = ferry_decoder_next(ctx->dec, &f);
        if (st == FERRY_PROTO_OK) {
            break;
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "FERRY0446: Cannot read the core's answer to the "
                          "request head: %s", ferry_proto_strstatus(st));
            ngx_http_ferry_fail(ctx, NGX_HTTP_BAD_GATEWAY);
            return;
        }
        n = ngx_http_ferry_link_recv(ctx);
        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }
            return;
        }
        if (n > 0) {
            ctx->answer_bytes += n;
            continue;
        }
        /* Nothing of the answer came: nothing of the request went anywhere
         * yet in v3, so it goes again, once, on a new connection (which
         * waits for a restarted core). */
        if (ctx->answer_bytes == 0 && !ctx->link_retried) {
            if (rev->timer_set) {
                ngx_del_timer(rev);
            }
            lease_relink(ctx);
            return;
        }
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0447: Cannot read the core's answer to the request "
                      "head: the connection ended");
        ngx_http_ferry_pass_lost_core();
        ngx_http_ferry_fail(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }
    if (rev->timer_set) {
        ngx_del_timer(rev);
    }
    rev->handler = lease_link_dummy;

    switch (f.type) {
    case FERRY_FRAME_LEASE:
        rc = lease_take(ctx, &f);
        if (rc != NGX_OK) {
            ngx_http_ferry_fail(ctx, rc);
            return;
        }
        /* A kept connection the app closed meanwhile: nothing was written,
         * any method may go again (once). */
        if (ctx->conn_reused && !ngx_http_ferry_app_conn_alive(ctx->conn)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ferry: app connection %V was closed while idle",
                           &ctx->lease_id);
            ngx_http_ferry_lease_retry(ctx, 0);
            return;
        }
        ctx->answered(ctx, 0);
        return;
    case FERRY_FRAME_PROCEED:
        if (ctx->passed_fd >= 0) {
            close(ctx->passed_fd);
            ctx->passed_fd = -1;
        }
        ngx_http_ferry_app_give_back(ctx);
        if (ctx->head.pass && ngx_http_ferry_pass_table() != NULL) {
            ferry_pass_drop(ngx_http_ferry_pass_table(),
                            (const char *) ctx->app_key.data);
        }
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ferry: the core relays this request (PROCEED)");
        ctx->answered(ctx, 1);
        return;
    case FERRY_FRAME_ABORT:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0448: Cannot get a lease: the core aborted the "
                      "request: %*s: %*s", f.code.len, f.code.ptr,
                      f.message.len, f.message.ptr);
        ngx_http_ferry_fail(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0449: Cannot read the core's answer to the request "
                      "head: got a frame of type %d instead of LEASE or "
                      "PROCEED", f.type);
        ngx_http_ferry_fail(ctx, NGX_HTTP_BAD_GATEWAY);
        return;
    }
}

static void lease_retry_now(ngx_http_ferry_ctx_t *ctx);

static void
lease_pid_wait(ngx_event_t *ev)
{
    ngx_http_ferry_ctx_t  *ctx = ev->data;

    if (ctx->lease_pid > 0 && kill((pid_t) ctx->lease_pid, 0) == 0
        && ngx_current_msec - ctx->lease_time < FERRY_PID_WAIT)
    {
        ngx_add_timer(&ctx->wait, FERRY_PID_POLL);
        return;
    }
    lease_retry_now(ctx);
}

void
ngx_http_ferry_lease_retry(ngx_http_ferry_ctx_t *ctx, int wait_pid)
{
    ctx->app_retried = 1;
    ctx->stale_id = ctx->lease_id;
    if (ctx->conn != NULL) {
        ngx_http_ferry_app_conn_close(ctx->conn);
        ctx->conn = NULL;
    }
    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
    if (wait_pid && ctx->lease_pid > 0) {
        /* the app reset the connection: a process that exited right after
         * its last answer; once it is gone the core knows it */
        ctx->lease_time = ngx_current_msec;
        ctx->wait.handler = lease_pid_wait;
        ctx->wait.data = ctx;
        ctx->wait.log = ctx->r->connection->log;
        ngx_add_timer(&ctx->wait, FERRY_PID_POLL);
        return;
    }
    lease_retry_now(ctx);
}

/* DONE "stale", then the same head on the same core connection (a pass
 * request: the slow path). */
static void
lease_retry_now(ngx_http_ferry_ctx_t *ctx)
{
    msgpack_sbuffer_clear(&ctx->out);
    ctx->sent = 0;
    if (ctx->direct && ctx->peer.connection != NULL) {
        if (ngx_http_ferry_encode_done(ctx, "stale", 0, 0) != NGX_OK) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }
    ctx->direct = 0;
    ctx->passed = 0;                    /* a pass request: no DONE */
    ngx_http_ferry_pass_uncount(ctx);
    ctx->bytes_in = 0;
    ctx->bytes_out = 0;
    ngx_http_ferry_lease_start(ctx, ctx->answered);
}
