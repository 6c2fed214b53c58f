/*
 * ngx_http_ferry_app.c: the direct path (protocol v3, docs/protocol.md "What
 * the module does on the direct path"): the worker speaks HTTP/1.1 to the
 * app over the leased socket, through nginx's own upstream machinery:
 *
 *   peer.get          hands nginx the leased connection (a socket the core
 *                     passed, or one this worker kept), as nginx's keepalive
 *                     module hands out cached connections (NGX_DONE)
 *   create_request    the LEASE's head; the body streams after it from
 *                     nginx's unbuffered request body reader, as it is or
 *                     as HTTP/1.1 chunks (body_filter), never held whole
 *   process_header    status line and headers (ngx_http_parse_status_line /
 *                     ngx_http_parse_header_line), 1xx skipped, a 101 only
 *                     for an upgrade the client asked for (nginx then
 *                     tunnels), hop-by-hop headers dropped, the LEASE's
 *                     add_headers added
 *   input filters     the body by Content-Length, chunks (ngx_http_parse_
 *                     chunked) or the connection's end, passed on unbuffered
 *                     with nginx's backpressure
 *   peer.free         the connection back to the worker's cache (at most 64
 *                     idle, each at most 4 s) or closed; DONE to the core;
 *                     a request the app never read is asked for again once
 *
 * Full duplex: the response is read while the body is still being sent
 * (preserve_output), so an app that answers while it reads never deadlocks.
 */
#include "ngx_http_ferry.h"

#define FERRY_APP_IDLE_MAX      64
#define FERRY_APP_IDLE_TIME     4000    /* ms, below Node's 5 s keepAliveTimeout */
#define FERRY_APP_HEAD_MAX      (64 * 1024)

/* This worker's idle app connections, the most recently used first. */
static ngx_queue_t  app_cache;
static ngx_uint_t   app_cache_n;
static ngx_uint_t   app_cache_init;

static ngx_str_t  ngx_http_ferry_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
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
    u->intercept_errors = 0;
    u->pass_request_headers = 0;
    u->pass_request_body = 1;
    u->preserve_output = 1;
    u->ignore_headers = NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT
                        | NGX_HTTP_UPSTREAM_IGN_XA_EXPIRES
                        | NGX_HTTP_UPSTREAM_IGN_XA_LIMIT_RATE
                        | NGX_HTTP_UPSTREAM_IGN_XA_BUFFERING
                        | NGX_HTTP_UPSTREAM_IGN_XA_CHARSET;
    u->module.len = sizeof("ferry") - 1;
    u->module.data = (u_char *) "ferry";

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "ferry_headers_hash";
    return ngx_http_upstream_hide_headers_hash(cf, u, &prev->upstream,
                                               ngx_http_ferry_hide_headers,
                                               &hash);
}

/* ---- The worker's cache of app connections -------------------------------- */

static void
app_cache_setup(void)
{
    if (!app_cache_init) {
        ngx_queue_init(&app_cache);
        app_cache_init = 1;
    }
}

void
ngx_http_ferry_app_conn_close(ngx_http_ferry_app_conn_t *ac)
{
    if (ac->c != NULL) {
        if (ac->c->pool != NULL) {
            ngx_destroy_pool(ac->c->pool);
            ac->c->pool = NULL;
        }
        ngx_close_connection(ac->c);
        ac->c = NULL;
    }
    if (ac->cached) {
        ngx_queue_remove(&ac->queue);
        ac->cached = 0;
        app_cache_n--;
    }
    ngx_free(ac);
}

/* An idle (or held) connection: the app closed it, said something we did
 * not ask for, or the idle time is up. */
static void
app_idle_read(ngx_event_t *rev)
{
    ngx_connection_t           *c = rev->data;
    ngx_http_ferry_app_conn_t  *ac = c->data;
    char                        b;

    /* c->close: the worker is exiting (ngx_close_idle_connections) */
    if (!rev->timedout && !c->close
        && recv(c->fd, &b, 1, MSG_PEEK) == -1 && ngx_socket_errno == NGX_EAGAIN)
    {
        rev->ready = 0;
        if (ngx_handle_read_event(rev, 0) == NGX_OK) {
            return;
        }
    }
    if (ac->held) {
        /* set aside for a request: it sees "dead" and asks again */
        if (c->pool != NULL) {
            ngx_destroy_pool(c->pool);
            c->pool = NULL;
        }
        ngx_close_connection(c);
        ac->c = NULL;
        ac->dead = 1;
        return;
    }
    ngx_http_ferry_app_conn_close(ac);
}

static void
app_idle_write(ngx_event_t *wev)
{
    (void) wev;
}

/* Keep ac idle in the cache (the newest first; the oldest goes when full). */
static ngx_int_t
app_cache_put(ngx_http_ferry_app_conn_t *ac, int fresh_idle)
{
    ngx_connection_t           *c = ac->c;
    ngx_http_ferry_app_conn_t  *old;

    app_cache_setup();
    if (ac->dead || c == NULL || ngx_exiting || ngx_terminate
        || ngx_handle_read_event(c->read, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }
    if (app_cache_n >= FERRY_APP_IDLE_MAX) {
        old = ngx_queue_data(ngx_queue_last(&app_cache),
                             ngx_http_ferry_app_conn_t, queue);
        ngx_http_ferry_app_conn_close(old);
    }
    ac->held = 0;
    ac->cached = 1;
    ngx_queue_insert_head(&app_cache, &ac->queue);
    app_cache_n++;
    if (fresh_idle) {
        ac->idle_since = ngx_current_msec;
    }
    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }
    if (ngx_current_msec - ac->idle_since >= FERRY_APP_IDLE_TIME) {
        ngx_http_ferry_app_conn_close(ac);
        return NGX_OK;
    }
    ngx_add_timer(c->read, FERRY_APP_IDLE_TIME - (ngx_current_msec - ac->idle_since));
    c->read->delayed = 0;
    c->read->handler = app_idle_read;
    c->write->handler = app_idle_write;
    c->data = ac;
    c->idle = 1;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    if (c->pool != NULL) {
        c->pool->log = ngx_cycle->log;
    }
    if (c->read->ready) {
        app_idle_read(c->read);
    }
    return NGX_OK;
}

void
ngx_http_ferry_app_set_aside(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_ferry_app_conn_t  *ac;
    ngx_queue_t                *q, *next;
    ngx_uint_t                  i;

    app_cache_setup();
    ctx->nheld = 0;
    for (q = ngx_queue_head(&app_cache);
         q != ngx_queue_sentinel(&app_cache) && ctx->nheld < FERRY_HELD_MAX;
         q = next)
    {
        next = ngx_queue_next(q);
        ac = ngx_queue_data(q, ngx_http_ferry_app_conn_t, queue);
        if (ac->key.len != ctx->app_key.len
            || ngx_memcmp(ac->key.data, ctx->app_key.data, ac->key.len) != 0)
        {
            continue;
        }
        /* one per app process: its most recently used connection */
        for (i = 0; i < ctx->nheld; i++) {
            if (ctx->held[i]->pid == ac->pid) {
                break;
            }
        }
        if (i < ctx->nheld) {
            continue;
        }
        ngx_queue_remove(q);
        ac->cached = 0;
        app_cache_n--;
        ac->held = 1;
        ctx->held[ctx->nheld++] = ac;
    }
}

void
ngx_http_ferry_app_give_back(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_ferry_app_conn_t  *ac;
    ngx_uint_t                  i;

    for (i = 0; i < ctx->nheld; i++) {
        ac = ctx->held[i];
        ctx->held[i] = NULL;
        if (ac == NULL) {
            continue;
        }
        ac->held = 0;
        if (ac->dead || app_cache_put(ac, 0) != NGX_OK) {
            ngx_http_ferry_app_conn_close(ac);
        }
    }
    ctx->nheld = 0;
}

ngx_http_ferry_app_conn_t *
ngx_http_ferry_app_wrap_fd(ngx_http_ferry_ctx_t *ctx, int fd)
{
    ngx_http_ferry_app_conn_t  *ac;
    u_char                     *p;

    ac = ngx_alloc(sizeof(*ac) + ctx->app_key.len + ctx->lease_id.len,
                   ctx->r->connection->log);
    if (ac == NULL) {
        close(fd);
        return NULL;
    }
    ngx_memzero(ac, sizeof(*ac));
    p = (u_char *) (ac + 1);
    ac->key.data = p;
    ac->key.len = ctx->app_key.len;
    p = ngx_cpymem(p, ctx->app_key.data, ctx->app_key.len);
    ac->id.data = p;
    ac->id.len = ctx->lease_id.len;
    ngx_memcpy(p, ctx->lease_id.data, ctx->lease_id.len);
    ac->pid = ctx->lease_pid;
    ac->c = ngx_http_ferry_connection(fd, ctx->r->connection->log);
    if (ac->c == NULL) {
        ngx_free(ac);
        return NULL;
    }
    return ac;
}

int
ngx_http_ferry_app_conn_alive(ngx_http_ferry_app_conn_t *ac)
{
    char  b;

    if (ac->dead || ac->c == NULL) {
        return 0;
    }
    return recv(ac->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1
           && ngx_socket_errno == NGX_EAGAIN;
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
 * the request failed), with no body byte taken from the client and no
 * response byte: asked for again, once (docs/protocol.md "Retry once"). */
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
    return c->write->error || (c->read->error && !c->read->eof);
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
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        ngx_http_ferry_lease_retry(ctx, reset);
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
    } else {
        outcome = "app_error";
    }
    if (u->header_sent) {
        status = r->headers_out.status;
    } else if (failed) {
        status = ngx_strcmp(outcome, "timeout") == 0 ? NGX_HTTP_GATEWAY_TIME_OUT
                                                     : NGX_HTTP_BAD_GATEWAY;
    } else {
        status = rc >= NGX_HTTP_SPECIAL_RESPONSE ? rc : 0;
    }

    if (!failed && c != NULL && ngx_strcmp(outcome, "ok") == 0
        && u->keepalive && u->request_body_sent && !u->upgrade
        && !c->read->eof && !c->read->error && !c->read->timedout
        && !c->write->error && !c->write->timedout
        && !ngx_terminate && !ngx_exiting)
    {
        if (app_cache_put(ac, 1) == NGX_OK) {
            reusable = 1;
            pc->connection = NULL;
        }
    }
    if (!reusable) {
        ac->c = NULL;               /* nginx closes it */
        ngx_free(ac);
    }
    ngx_http_ferry_lease_done(ctx, outcome, status, reusable);
}

static ngx_int_t
ngx_http_ferry_app_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_http_upstream_t   *u = r->upstream;
    struct sockaddr_un    *sun;
    ngx_str_t             *name;

    (void) us;
    sun = ngx_pcalloc(r->pool, sizeof(*sun));
    name = ngx_palloc(r->pool, sizeof(*name));
    if (sun == NULL || name == NULL) {
        return NGX_ERROR;
    }
    name->data = ngx_pnalloc(r->pool, sizeof("ferry app pid ") + NGX_INT64_LEN);
    if (name->data == NULL) {
        return NGX_ERROR;
    }
    name->len = ngx_sprintf(name->data, "ferry app pid %L", ctx->lease_pid)
                - name->data;
    sun->sun_family = AF_UNIX;
    u->peer.sockaddr = (struct sockaddr *) sun;
    u->peer.socklen = sizeof(*sun);
    u->peer.name = name;
    u->peer.get = ngx_http_ferry_app_get_peer;
    u->peer.free = ngx_http_ferry_app_free_peer;
    u->peer.data = ctx;
    u->peer.tries = 1;
    return NGX_OK;
}

/* ---- Request ------------------------------------------------------------ */

/* The body after the head: counted, and framed as chunks when the LEASE
 * says so (nginx's proxy module frames its unbuffered bodies the same
 * way). The first buffer is the head. */
static ngx_int_t
ngx_http_ferry_body_filter(void *data, ngx_chain_t *in)
{
    ngx_http_request_t    *r = data;
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    off_t                  size;
    u_char                *chunk;
    ngx_int_t              rc;
    ngx_buf_t             *b;
    ngx_chain_t           *out, *cl, *tl, **ll, **fl;

    out = NULL;
    ll = &out;
    if (in == NULL) {
        goto out;
    }
    if (!ctx->body_head_sent) {
        ctx->body_head_sent = 1;
        tl = ngx_alloc_chain_link(r->pool);
        if (tl == NULL) {
            return NGX_ERROR;
        }
        tl->buf = in->buf;
        *ll = tl;
        ll = &tl->next;
        in = in->next;
        if (in == NULL) {
            tl->next = NULL;
            goto out;
        }
    }

    size = 0;
    cl = in;
    fl = ll;
    for ( ;; ) {
        size += ngx_buf_size(cl->buf);
        if (cl->buf->flush || cl->buf->sync || ngx_buf_in_memory(cl->buf)
            || cl->buf->in_file)
        {
            tl = ngx_alloc_chain_link(r->pool);
            if (tl == NULL) {
                return NGX_ERROR;
            }
            tl->buf = cl->buf;
            *ll = tl;
            ll = &tl->next;
        }
        if (cl->next == NULL) {
            break;
        }
        cl = cl->next;
    }
    ctx->bytes_in += size;

    if (!ctx->chunked) {
        *ll = NULL;
        goto out;
    }
    if (size) {
        tl = ngx_chain_get_free_buf(r->pool, &ctx->body_free);
        if (tl == NULL) {
            return NGX_ERROR;
        }
        b = tl->buf;
        chunk = b->start;
        if (chunk == NULL) {
            chunk = ngx_palloc(r->pool, sizeof("0000000000000000" CRLF) - 1);
            if (chunk == NULL) {
                return NGX_ERROR;
            }
            b->start = chunk;
            b->end = chunk + sizeof("0000000000000000" CRLF) - 1;
        }
        b->tag = (ngx_buf_tag_t) &ngx_http_ferry_body_filter;
        b->memory = 0;
        b->temporary = 1;
        b->pos = chunk;
        b->last = ngx_sprintf(chunk, "%xO" CRLF, size);
        tl->next = *fl;
        *fl = tl;
    }
    if (cl->buf->last_buf) {
        tl = ngx_chain_get_free_buf(r->pool, &ctx->body_free);
        if (tl == NULL) {
            return NGX_ERROR;
        }
        b = tl->buf;
        b->tag = (ngx_buf_tag_t) &ngx_http_ferry_body_filter;
        b->temporary = 0;
        b->memory = 1;
        b->last_buf = 1;
        b->pos = (u_char *) CRLF "0" CRLF CRLF;
        b->last = b->pos + 7;
        cl->buf->last_buf = 0;
        *ll = tl;
        if (size == 0) {
            b->pos += 2;
        }
    } else if (size > 0) {
        tl = ngx_chain_get_free_buf(r->pool, &ctx->body_free);
        if (tl == NULL) {
            return NGX_ERROR;
        }
        b = tl->buf;
        b->tag = (ngx_buf_tag_t) &ngx_http_ferry_body_filter;
        b->temporary = 0;
        b->memory = 1;
        b->pos = (u_char *) CRLF;
        b->last = b->pos + 2;
        *ll = tl;
    } else {
        *ll = NULL;
    }

out:
    rc = ngx_chain_writer(&r->upstream->writer, out);
    ngx_chain_update_chains(r->pool, &ctx->body_free, &ctx->body_busy, &out,
                            (ngx_buf_tag_t) &ngx_http_ferry_body_filter);
    return rc;
}

static ngx_int_t
ngx_http_ferry_create_request(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_http_upstream_t   *u = r->upstream;
    ngx_buf_t             *b;
    ngx_chain_t           *cl, *body;

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }
    b->start = ctx->lease_head.data;
    b->pos = b->start;
    b->last = b->start + ctx->lease_head.len;
    b->end = b->last;
    b->memory = 1;
    b->flush = 1;
    cl->buf = b;
    cl->next = NULL;
    body = u->request_bufs;
    u->request_bufs = cl;
    if (!ctx->has_body) {
        return NGX_OK;
    }
    ctx->body_head_sent = 0;
    u->output.output_filter = ngx_http_ferry_body_filter;
    u->output.filter_ctx = r;
    if (r->request_body_no_buffering) {
        return NGX_OK;          /* nginx appends the body as it arrives */
    }
    /* the whole body came with the head: it follows it (copies of the
     * buffers: nginx moves their positions as it sends) */
    for ( ; body != NULL; body = body->next) {
        b = ngx_alloc_buf(r->pool);
        cl->next = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl->next == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(b, body->buf, sizeof(ngx_buf_t));
        cl = cl->next;
        cl->buf = b;
        cl->next = NULL;
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_ferry_reinit_request(ngx_http_request_t *r)
{
    (void) r;
    return NGX_OK;
}

static ngx_int_t ngx_http_ferry_process_header(ngx_http_request_t *r);

static ngx_int_t
ngx_http_ferry_process_status_line(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_http_upstream_t   *u = r->upstream;
    ngx_int_t              rc;
    size_t                 len;

    rc = ngx_http_parse_status_line(r, &u->buffer, &ctx->status);
    if (rc == NGX_AGAIN) {
        return rc;
    }
    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0450: Cannot read the app's response (pid %L): "
                      "no valid HTTP/1.x status line", ctx->lease_pid);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
    if (u->state && u->state->status == 0) {
        u->state->status = ctx->status.code;
    }
    u->headers_in.status_n = ctx->status.code;
    len = ctx->status.end - ctx->status.start;
    u->headers_in.status_line.len = len;
    u->headers_in.status_line.data = ngx_pnalloc(r->pool, len);
    if (u->headers_in.status_line.data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(u->headers_in.status_line.data, ctx->status.start, len);
    if (ctx->status.http_version < NGX_HTTP_VERSION_11) {
        u->headers_in.connection_close = 1;
    }
    u->process_header = ngx_http_ferry_process_header;
    return ngx_http_ferry_process_header(r);
}

/* Does the app's Upgrade value name what the client asked for? */
static int
ngx_http_ferry_upgrade_matches(ngx_http_request_t *r, ngx_http_upstream_t *u)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;

    if (r->headers_in.upgrade == NULL) {
        return 0;
    }
    for (part = &u->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == 7
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Upgrade", 7) == 0)
            {
                return ngx_strlcasestrn(r->headers_in.upgrade->value.data,
                                        r->headers_in.upgrade->value.data
                                        + r->headers_in.upgrade->value.len,
                                        h[i].value.data, h[i].value.len - 1)
                       != NULL;
            }
        }
    }
    return 0;
}

/* An interim response (1xx but a 101 asked for): skipped, the parse starts
 * again at the next status line. */
static ngx_int_t
ngx_http_ferry_skip_interim(ngx_http_request_t *r, ngx_http_ferry_ctx_t *ctx,
    ngx_http_upstream_t *u)
{
    ngx_memzero(&u->headers_in, sizeof(ngx_http_upstream_headers_in_t));
    u->headers_in.content_length_n = -1;
    u->headers_in.last_modified_time = -1;
    if (ngx_list_init(&u->headers_in.headers, r->pool, 8, sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&u->headers_in.trailers, r->pool, 2, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }
    ngx_memzero(&ctx->status, sizeof(ngx_http_status_t));
    r->state = 0;
    u->process_header = ngx_http_ferry_process_status_line;
    return ngx_http_ferry_process_status_line(r);
}

/* Add the LEASE's add_headers to the app's headers. */
static ngx_int_t
ngx_http_ferry_add_headers(ngx_http_request_t *r, ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_upstream_header_t     *hh;
    ngx_table_elt_t                *h;
    ngx_str_t                      *a;
    ngx_uint_t                      i;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    a = ctx->add_headers ? ctx->add_headers->elts : NULL;
    for (i = 0; a != NULL && i + 1 < ctx->add_headers->nelts; i += 2) {
        h = ngx_list_push(&r->upstream->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->key = a[i];
        h->value = a[i + 1];
        h->lowcase_key = ngx_pnalloc(r->pool, h->key.len);
        if (h->lowcase_key == NULL) {
            return NGX_ERROR;
        }
        h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, h->key.len);
        hh = ngx_hash_find(&umcf->headers_in_hash, h->hash, h->lowcase_key,
                           h->key.len);
        if (hh && hh->handler(r, h, hh->offset) != NGX_OK) {
            return NGX_ERROR;
        }
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_ferry_process_header(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t           *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_http_upstream_t            *u = r->upstream;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_upstream_header_t     *hh;
    ngx_table_elt_t                *h;
    ngx_int_t                       rc;
    ngx_uint_t                      status;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    for ( ;; ) {
        rc = ngx_http_parse_header_line(r, &u->buffer, 1);
        if (rc == NGX_OK) {
            h = ngx_list_push(&u->headers_in.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }
            h->hash = r->header_hash;
            h->key.len = r->header_name_end - r->header_name_start;
            h->value.len = r->header_end - r->header_start;
            h->key.data = ngx_pnalloc(r->pool,
                               h->key.len + 1 + h->value.len + 1 + h->key.len);
            if (h->key.data == NULL) {
                h->hash = 0;
                return NGX_ERROR;
            }
            h->value.data = h->key.data + h->key.len + 1;
            h->lowcase_key = h->key.data + h->key.len + 1 + h->value.len + 1;
            ngx_memcpy(h->key.data, r->header_name_start, h->key.len);
            h->key.data[h->key.len] = '\0';
            ngx_memcpy(h->value.data, r->header_start, h->value.len);
            h->value.data[h->value.len] = '\0';
            if (h->key.len == r->lowcase_index) {
                ngx_memcpy(h->lowcase_key, r->lowcase_header, h->key.len);
            } else {
                ngx_strlow(h->lowcase_key, h->key.data, h->key.len);
            }
            hh = ngx_hash_find(&umcf->headers_in_hash, h->hash,
                               h->lowcase_key, h->key.len);
            if (hh && hh->handler(r, h, hh->offset) != NGX_OK) {
                return NGX_ERROR;
            }
            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {
            status = u->headers_in.status_n;
            if (status >= 100 && status < 200
                && status != NGX_HTTP_SWITCHING_PROTOCOLS)
            {
                return ngx_http_ferry_skip_interim(r, ctx, u);
            }
            if (status == NGX_HTTP_SWITCHING_PROTOCOLS) {
                if (!ctx->upgrade || !ngx_http_ferry_upgrade_matches(r, u)) {
                    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                                  "FERRY0451: Cannot pass the app's response "
                                  "(pid %L): a 101 for an upgrade the client "
                                  "did not ask for", ctx->lease_pid);
                    return NGX_HTTP_UPSTREAM_INVALID_HEADER;
                }
                u->keepalive = 0;
                u->upgrade = 1;
            }
            if (ngx_http_ferry_add_headers(r, ctx) != NGX_OK) {
                return NGX_ERROR;
            }
            if (u->headers_in.chunked) {
                u->headers_in.content_length_n = -1;
            }
            if (status == NGX_HTTP_NO_CONTENT || status == NGX_HTTP_NOT_MODIFIED
                || r->method == NGX_HTTP_HEAD
                || (!u->headers_in.chunked
                    && u->headers_in.content_length_n == 0))
            {
                u->keepalive = !u->headers_in.connection_close;
            }
            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0452: Cannot read the app's response (pid %L): "
                      "an invalid header line", ctx->lease_pid);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
}

/* ---- Response body ------------------------------------------------------ */

static ngx_int_t ngx_http_ferry_copy_filter(void *data, ssize_t bytes);
static ngx_int_t ngx_http_ferry_chunked_filter(void *data, ssize_t bytes);

static ngx_int_t
ngx_http_ferry_input_filter_init(void *data)
{
    ngx_http_request_t    *r = data;
    ngx_http_upstream_t   *u = r->upstream;
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || r->method == NGX_HTTP_HEAD)
    {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;
    } else if (u->headers_in.chunked) {
        ngx_memzero(&ctx->chunked_state, sizeof(ngx_http_chunked_t));
        u->input_filter = ngx_http_ferry_chunked_filter;
        u->length = 1;
    } else if (u->headers_in.content_length_n == 0) {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;
    } else {
        /* Content-Length, or the connection's end (-1) */
        u->length = u->headers_in.content_length_n;
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_ferry_copy_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t    *r = data;
    ngx_http_upstream_t   *u = r->upstream;
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_buf_t             *b;
    ngx_chain_t           *cl, **ll;

    if (u->length == 0) {
        u->keepalive = 0;           /* more than Content-Length said */
        return NGX_OK;
    }
    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }
    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NGX_ERROR;
    }
    *ll = cl;
    cl->buf->flush = 1;
    cl->buf->memory = 1;
    b = &u->buffer;
    cl->buf->pos = b->last;
    b->last += bytes;
    cl->buf->last = b->last;
    cl->buf->tag = u->output.tag;

    if (u->length == -1) {
        ctx->bytes_out += bytes;
        return NGX_OK;
    }
    if (bytes > u->length) {
        cl->buf->last = cl->buf->pos + u->length;
        bytes = u->length;
        u->keepalive = 0;
    }
    ctx->bytes_out += bytes;
    u->length -= bytes;
    if (u->length == 0) {
        u->keepalive = !u->headers_in.connection_close;
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_ferry_chunked_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t    *r = data;
    ngx_http_upstream_t   *u = r->upstream;
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_int_t              rc;
    ngx_buf_t             *b, *buf;
    ngx_chain_t           *cl, **ll;

    buf = &u->buffer;
    buf->pos = buf->last;
    buf->last += bytes;
    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }
    for ( ;; ) {
        rc = ngx_http_parse_chunked(r, buf, &ctx->chunked_state);
        if (rc == NGX_OK) {
            cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
            if (cl == NULL) {
                return NGX_ERROR;
            }
            *ll = cl;
            ll = &cl->next;
            b = cl->buf;
            b->flush = 1;
            b->memory = 1;
            b->pos = buf->pos;
            b->tag = u->output.tag;
            if (buf->last - buf->pos >= ctx->chunked_state.size) {
                buf->pos += (size_t) ctx->chunked_state.size;
                b->last = buf->pos;
                ctx->chunked_state.size = 0;
            } else {
                ctx->chunked_state.size -= buf->last - buf->pos;
                buf->pos = buf->last;
                b->last = buf->last;
            }
            ctx->bytes_out += b->last - b->pos;
            continue;
        }
        if (rc == NGX_DONE) {
            u->keepalive = !u->headers_in.connection_close;
            u->length = 0;
            if (buf->pos != buf->last) {
                u->keepalive = 0;       /* data after the last chunk */
            }
            break;
        }
        if (rc == NGX_AGAIN) {
            break;
        }
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "FERRY0453: Cannot read the app's response (pid %L): "
                      "invalid chunked body", ctx->lease_pid);
        return NGX_ERROR;
    }
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
ngx_http_ferry_app_start(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_request_t         *r = ctx->r;
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_upstream_t        *u;
    ngx_int_t                   rc;

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
