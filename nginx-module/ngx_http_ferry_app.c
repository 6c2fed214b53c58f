/*
 * ngx_http_ferry_app.c: the direct path (protocol v3, docs/protocol.md "What
 * the module does on the direct path"): the worker speaks HTTP/1.1 to the
 * app over the leased socket, through nginx's own upstream machinery:
 *
 *   the conf          each location's ngx_http_upstream_conf_t: unbuffered,
 *                     passenger_read_timeout, no next upstream, hop-by-hop
 *                     headers hidden, X-Accel-* not acted on
 *   peer.get          hands nginx the leased connection (a socket the core
 *                     passed, or one this worker kept), as nginx's keepalive
 *                     module hands out cached connections (NGX_DONE)
 *   the HTTP/1.1      create_request, process_header, input filters:
 *                     ngx_http_ferry_app_http.c
 *   peer.free         the connection back to the worker's cache
 *                     (ngx_http_ferry_app_cache.c) or closed; DONE to the
 *                     core; a request the app never read goes back to the
 *                     orchestrator (its stale callback), once
 *
 * Full duplex: the response is read while the body is still being sent
 * (preserve_output), so an app that answers while it reads never deadlocks.
 */
#include "ngx_http_ferry.h"

#define FERRY_APP_HEAD_MAX      (64 * 1024)

static ngx_str_t  ngx_http_ferry_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    /* nginx acts on them (unless passenger_ignore_headers), as Passenger
     * and proxy_pass do: never the client's */
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_string("Keep-Alive"),
    ngx_string("Proxy-Connection"),
    ngx_string("TE"),
    ngx_string("Trailer"),
    ngx_null_string
};

/* ---- Configuration ------------------------------------------------------ */

static ngx_int_t ngx_http_ferry_app_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);

ngx_int_t
ngx_http_ferry_app_init_conf(ngx_conf_t *cf, ngx_http_ferry_loc_conf_t *conf,
    ngx_http_ferry_loc_conf_t *prev)
{
    ngx_http_upstream_conf_t      *u = &conf->upstream;
    ngx_http_upstream_srv_conf_t  *uscf;
    ngx_hash_init_t                hash;

    ngx_conf_merge_msec_value(conf->read_timeout, prev->read_timeout, 300000);
    uscf = prev->upstream.upstream;
    if (uscf == NULL) {
        uscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_srv_conf_t));
        if (uscf == NULL) {
            return NGX_ERROR;
        }
        uscf->peer.init = ngx_http_ferry_app_init_peer;
        uscf->flags = 0;
        ngx_str_set(&uscf->host, "ferry-app");
    }
    u->upstream = uscf;
    u->local = NULL;
    u->connect_timeout = 60000;
    u->send_timeout = 60000;
    u->read_timeout = conf->read_timeout;
    u->buffer_size = FERRY_APP_HEAD_MAX;
    u->buffering = 0;
    u->request_buffering = 0;
    u->ignore_client_abort = 0;
    u->next_upstream = 0;
    u->next_upstream_tries = 1;
    /* passenger_intercept_errors: nginx's error_page for the app's
     * statuses >= 300 that have one */
    u->intercept_errors = conf->intercept_errors;
    u->pass_request_headers = 0;
    u->pass_request_body = 1;
    u->preserve_output = 1;
    /* X-Accel-Redirect (an internal redirect: X-Sendfile for nginx),
     * -Limit-Rate, -Charset, -Expires act as under Passenger; -Buffering
     * changes nothing (change_buffering is off: responses stream) */
    u->ignore_headers = conf->ignore_headers & ~NGX_CONF_BITMASK_SET;
    u->module.len = sizeof("ferry") - 1;
    u->module.data = (u_char *) "ferry";

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "ferry_headers_hash";
    return ngx_http_upstream_hide_headers_hash(cf, u, &prev->upstream,
                                               ngx_http_ferry_hide_headers,
                                               &hash);
}

/* ---- The peer: the leased connection -------------------------------------- */

static ngx_int_t
ngx_http_ferry_app_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_ferry_ctx_t       *ctx = data;
    ngx_http_ferry_app_conn_t  *ac = ctx->conn;
    ngx_connection_t           *c;

    if (ac == NULL || ac->c == NULL) {
        return NGX_ERROR;
    }
    c = ac->c;
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }
    c->idle = 0;
    c->sent = 0;
    c->data = NULL;
    c->log = pc->log;
    c->read->log = pc->log;
    c->write->log = pc->log;
    if (c->pool != NULL) {
        c->pool->log = pc->log;
    }
    pc->connection = c;
    return NGX_DONE;
}

/* A request the app never read (it reset the connection, or the write of
 * the request failed) or an idempotent one on a kept connection it closed,
 * with no body byte taken from the client and no response byte: asked for
 * again, once (docs/protocol.md "Retry once"). */
static int
ngx_http_ferry_app_retryable(ngx_http_ferry_ctx_t *ctx, ngx_http_upstream_t *u,
    ngx_connection_t *c)
{
    if (ctx->app_retried || ctx->has_body || ctx->upgrade || c == NULL
        || u->header_sent || ctx->deadline_hit
        || (u->buffer.start != NULL && u->buffer.last != u->buffer.start)
        || c->read->timedout || c->write->timedout)
    {
        return 0;
    }
    /* A clean close of a kept connection with no answer by a process that
     * is not exiting: the app closed (or half-closed) it as we wrote; an
     * idempotent request is sent again (RFC 9110 9.2.2). Never a request
     * its process died on. */
    return c->write->error || (c->read->error && !c->read->eof)
           || (c->read->eof && ctx->conn_reused
               && (ctx->r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD
                                    | NGX_HTTP_PUT | NGX_HTTP_DELETE
                                    | NGX_HTTP_OPTIONS | NGX_HTTP_TRACE))
               && !ferry_proc_exiting(ctx->lease_pid));
}

static void
ngx_http_ferry_app_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_ferry_ctx_t       *ctx = data;
    ngx_http_request_t         *r = ctx->r;
    ngx_http_upstream_t        *u = r->upstream;
    ngx_http_ferry_app_conn_t  *ac = ctx->conn;
    ngx_connection_t           *c = pc->connection;
    ngx_int_t                   rc = ctx->final_rc, status;
    const char                 *outcome;
    int                         failed = (state & NGX_PEER_FAILED) != 0;
    int                         reusable = 0, reset;

    pc->tries = 0;
    if (ac == NULL) {
        return;
    }
    ctx->conn = NULL;

    if (failed && ngx_http_ferry_app_retryable(ctx, u, c)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ferry: app connection %V failed before the app read "
                       "the request; asking the core again", &ctx->lease_id);
        /* This upstream ends here without an answer: detach it (its
         * finalization then only drops the request reference we add) and
         * ask the core again. */
        reset = c->read->error;
        ac->c = NULL;
        if (c->pool != NULL) {
            ngx_destroy_pool(c->pool);
        }
        ngx_close_connection(c);
        pc->connection = NULL;
        ngx_free(ac);
        if (u->cleanup != NULL) {
            *u->cleanup = NULL;
            u->cleanup = NULL;
        }
        r->main->count++;
        r->read_event_handler = ngx_http_ferry_watch_client;
        r->write_event_handler = ngx_http_request_empty_handler;
        ctx->stale(ctx, reset);
        return;
    }

    if (ctx->deadline_hit
        || (c != NULL && (c->read->timedout || c->write->timedout))
        || rc == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        outcome = "timeout";
    } else if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
               || rc == NGX_HTTP_REQUEST_TIME_OUT || r->connection->error)
    {
        outcome = "client_aborted";
    } else if (!failed && rc == NGX_OK) {
        outcome = "ok";
    } else if (!failed && !u->header_sent && u->conf->intercept_errors
               && rc >= NGX_HTTP_SPECIAL_RESPONSE
               && rc == (ngx_int_t) u->headers_in.status_n)
    {
        /* passenger_intercept_errors: the app answered; nginx's error_page
         * replaces its body (the connection, its body unread, closes) */
        outcome = "ok";
    } else if (!failed && !u->header_sent && rc == NGX_DECLINED
               && u->headers_in.x_accel_redirect != NULL)
    {
        /* X-Accel-Redirect: the app answered; nginx serves the URI it
         * named instead (the connection, its body unread, closes) */
        outcome = "ok";
    } else {
        outcome = "app_error";
    }
    if (u->header_sent) {
        status = r->headers_out.status;
    } else if (failed) {
        status = ngx_strcmp(outcome, "timeout") == 0 ? NGX_HTTP_GATEWAY_TIME_OUT
                                                     : NGX_HTTP_BAD_GATEWAY;
    } else if (ngx_strcmp(outcome, "client_aborted") == 0) {
        status = 0;             /* nothing was sent (nginx logs 499) */
    } else if (rc == NGX_DECLINED && u->headers_in.x_accel_redirect != NULL) {
        status = u->headers_in.status_n;
    } else {
        status = rc >= NGX_HTTP_SPECIAL_RESPONSE ? rc : 0;
    }
    if (u->upgrade && u->header_sent) {
        /* the tunnel's bytes to the client (nginx moved them itself), as
         * mod_ferry counts them: what was sent after the 101's head */
        ctx->bytes_out = r->connection->sent - ctx->client_sent0
                         - (off_t) r->header_size;
        if (ctx->bytes_out < 0) {
            ctx->bytes_out = 0;
        }
    }

    if (!failed && c != NULL && ngx_strcmp(outcome, "ok") == 0
        && u->keepalive && u->request_body_sent && !u->upgrade
        && !c->read->eof && !c->read->error && !c->read->timedout
        && !c->write->error && !c->write->timedout
        && !ngx_terminate && !ngx_exiting)
    {
        if (ngx_http_ferry_app_cache_put(ac, 1) == NGX_OK) {
            reusable = 1;
            pc->connection = NULL;
        }
    }
    if (!reusable) {
        ac->c = NULL;               /* nginx closes it */
        ngx_free(ac);
    }
    ngx_http_ferry_done(ctx, outcome, status, reusable);
}

static ngx_int_t
ngx_http_ferry_app_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    /* only read: the connection is there (peer.get), nothing connects */
    static struct sockaddr_un   sun = { .sun_family = AF_UNIX };
    static ngx_str_t            app = ngx_string("ferry app");
    ngx_http_ferry_ctx_t       *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_http_upstream_t        *u = r->upstream;
    ngx_str_t                  *name;

    (void) us;
    u->peer.get = ngx_http_ferry_app_get_peer;
    u->peer.free = ngx_http_ferry_app_free_peer;
    u->peer.data = ctx;
    u->peer.tries = 1;
    u->peer.sockaddr = (struct sockaddr *) &sun;
    u->peer.socklen = sizeof(sun);
    if (ctx->conn == NULL) {
        u->peer.name = &app;            /* peer.get fails: 502 */
        return NGX_OK;
    }
    /* the request's copy: $upstream_addr and log lines outlive the
     * connection */
    name = ngx_palloc(r->pool, sizeof(ngx_str_t) + ctx->conn->name.len);
    if (name == NULL) {
        return NGX_ERROR;
    }
    name->len = ctx->conn->name.len;
    name->data = (u_char *) (name + 1);
    ngx_memcpy(name->data, ctx->conn->name.data, name->len);
    u->peer.name = name;
    return NGX_OK;
}

static void
ngx_http_ferry_abort_request(ngx_http_request_t *r)
{
    (void) r;
}

static void
ngx_http_ferry_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);

    ctx->final_rc = rc;
}

/* PassengerMaxRequestTime: cut the exchange as a read timeout would (504
 * before the response head, else the client connection is closed). */
static void
ngx_http_ferry_deadline(ngx_event_t *ev)
{
    ngx_http_ferry_ctx_t  *ctx = ev->data;
    ngx_http_upstream_t   *u = ctx->r->upstream;
    ngx_connection_t      *c;

    ngx_log_error(NGX_LOG_ERR, ctx->r->connection->log, 0,
                  "FERRY0454: The request to app pid %L ran past its max "
                  "request time: cut", ctx->lease_pid);
    ctx->deadline_hit = 1;
    if (u == NULL || u->peer.connection == NULL) {
        return;
    }
    c = u->peer.connection;
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }
    c->read->timedout = 1;
    c->read->handler(c->read);
}

/* ---- Start -------------------------------------------------------------- */

void
ngx_http_ferry_app_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_stale_pt stale)
{
    ngx_http_request_t         *r = ctx->r;
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_upstream_t        *u;
    ngx_int_t                   rc;

    ctx->stale = stale;
    if (ngx_http_upstream_create(r) != NGX_OK) {
        ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    u = r->upstream;
    ngx_str_set(&u->schema, "ferry://");
    u->output.tag = (ngx_buf_tag_t) &ngx_http_ferry_module;
    u->conf = &lcf->upstream;
    u->buffering = 0;
    u->create_request = ngx_http_ferry_create_request;
    u->reinit_request = ngx_http_ferry_reinit_request;
    u->process_header = ngx_http_ferry_process_status_line;
    u->abort_request = ngx_http_ferry_abort_request;
    u->finalize_request = ngx_http_ferry_finalize_request;
    u->input_filter_init = ngx_http_ferry_input_filter_init;
    u->input_filter = ngx_http_ferry_copy_filter;
    u->input_filter_ctx = r;
    ngx_memzero(&ctx->status, sizeof(ngx_http_status_t));
    r->state = 0;
    ctx->final_rc = 0;
    ctx->client_sent0 = r->connection->sent;
    if (ctx->deadline_ms > 0) {
        /* from the LEASE; a retried lease starts it again */
        ctx->deadline.handler = ngx_http_ferry_deadline;
        ctx->deadline.data = ctx;
        ctx->deadline.log = r->connection->log;
        ngx_add_timer(&ctx->deadline, ctx->deadline_ms);
    }

    if (!ctx->has_body) {
        ngx_http_upstream_init(r);
        return;
    }
    /* The body streams: nginx reads what fits client_body_buffer_size and
     * passes it on before it reads more. */
    r->request_body_no_buffering = 1;
    rc = ngx_http_read_client_request_body(r, ngx_http_upstream_init);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_http_ferry_fail(ctx, rc);
        return;
    }
    /* the body reader holds its own reference now */
    ngx_http_finalize_request(r, NGX_DONE);
}
