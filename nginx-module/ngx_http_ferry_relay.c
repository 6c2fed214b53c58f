/*
 * ngx_http_ferry_relay.c: the relay path (protocol v2 frames after a v3
 * PROCEED, or v2 heads with FERRY_DATA_PATH=relay; docs/protocol.md),
 * event-driven, nothing blocks. The core connection is open (and, for v2,
 * the head is in ctx->out).
 *
 *   Step One    the request body as it arrives (nginx's unbuffered request
 *               body: read more only once what was read went to the core),
 *               then END
 *   Step Two    RESPONSE_HEAD, then BODY frames, passing each to the client
 *               as it comes; reading from the core pauses while the client
 *               is not taking what was passed (backpressure)
 *   Step Three  END: last buffer; the core connection is closed
 *
 * A RESPONSE_HEAD 101 to an upgrade request ends the framing: the 101 goes
 * to the client, then bytes are tunnelled both ways between the client and
 * the core connection (the shape of nginx's own upgraded upstream: read a
 * side only while the other takes what was read), until either side closes
 * or nothing comes from the core for passenger_read_timeout.
 */
#include "ngx_http_ferry.h"

#define FERRY_READ_CHUNK   NGX_HTTP_FERRY_READ_CHUNK


static void ngx_http_ferry_core_write(ngx_event_t *wev);
static ngx_int_t ngx_http_ferry_pump(ngx_http_ferry_ctx_t *ctx);
static void ngx_http_ferry_core_read(ngx_event_t *rev);
static void ngx_http_ferry_client_write(ngx_http_request_t *r);
static ngx_int_t ngx_http_ferry_wait_client(ngx_http_request_t *r);
static void ngx_http_ferry_finish(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc);

static void
ngx_http_ferry_relay_body(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_connection_t      *c = ctx->peer.connection;

    c->data = ctx;
    c->read->handler = ngx_http_ferry_core_read;
    c->write->handler = ngx_http_ferry_core_write;
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }
    /* Step One: the body; Step Two: the answer, read from the start (the
     * app may answer before the body is complete) */
    if (ngx_http_ferry_pump(ctx) == NGX_OK && ctx->peer.connection != NULL) {
        ngx_http_ferry_core_read(ctx->peer.connection->read);
    }
}

void
ngx_http_ferry_relay_start(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->r;
    ngx_int_t            rc;

    ctx->relaying = 1;

    if (!ctx->has_body) {
        if (ferry_encode_end(&ctx->out) != 0) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ctx->body_done = 1;
        ngx_http_ferry_relay_body(r);
        return;
    }
    /* The body streams: nginx reads what fits its client_body_buffer_size,
     * the pump passes it on and asks for more (never the whole body). */
    r->request_body_no_buffering = 1;
    rc = ngx_http_read_client_request_body(r, ngx_http_ferry_relay_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ngx_http_ferry_fail(ctx, rc);
        return;
    }
    /* the body reader holds its own reference now */
    ngx_http_finalize_request(r, NGX_DONE);
}

/* The client sent more of the body. */
static void
ngx_http_ferry_client_read(ngx_http_request_t *r)
{
    (void) ngx_http_ferry_pump(ngx_http_get_module_ctx(r, ngx_http_ferry_module));
}

/* Frame what nginx read of the body as BODY frames (the bufs are consumed). */
static ngx_int_t
ngx_http_ferry_frame_body(ngx_http_ferry_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_buf_t  *b;
    size_t      n;

    for ( ; in != NULL; in = in->next) {
        b = in->buf;
        while (b->pos < b->last) {
            n = ngx_min((size_t) (b->last - b->pos), FERRY_BODY_CHUNK);
            if (ferry_encode_body(&ctx->out, (const char *) b->pos, n) != 0) {
                return NGX_ERROR;
            }
            b->pos += n;
        }
    }
    return NGX_OK;
}

/* Send what is pending to the core; when it is all out, take more of the
 * request body (or END). Never holds more than one read of the body.
 * NGX_DONE: the request was finalized (ctx may be gone). */
static ngx_int_t
ngx_http_ferry_pump(ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_request_t  *r = ctx->r;
    ngx_connection_t    *c;
    ngx_event_t         *wev;
    ngx_int_t            rc;
    ssize_t              n;

    for ( ;; ) {
        c = ctx->peer.connection;
        if (c == NULL) {
            return NGX_OK;
        }
        wev = c->write;
        while (ctx->sent < ctx->out.size) {
            n = c->send(c, (u_char *) ctx->out.data + ctx->sent,
                        ctx->out.size - ctx->sent);
            if (n == NGX_AGAIN) {
                if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                    ngx_http_ferry_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                    return NGX_DONE;
                }
                ngx_add_timer(wev, 60000);
                return NGX_OK;
            }
            if (n == NGX_ERROR) {
                if (ctx->head_done || ctx->done) {
                    return NGX_OK;  /* the core answered early and closed */
                }
                ngx_http_ferry_finish(ctx, NGX_HTTP_BAD_GATEWAY);
                return NGX_DONE;
            }
            ctx->sent += n;
        }
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }
        msgpack_sbuffer_clear(&ctx->out);
        ctx->sent = 0;
        if (ctx->body_done) {
            return NGX_OK;
        }

        /* more body: what nginx has, then what it can read now */
        if (r->request_body != NULL && r->request_body->bufs != NULL) {
            rc = ngx_http_ferry_frame_body(ctx, r->request_body->bufs);
            r->request_body->bufs = NULL;
            if (rc != NGX_OK) {
                ngx_http_ferry_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return NGX_DONE;
            }
            continue;
        }
        if (!r->reading_body) {
            if (ferry_encode_end(&ctx->out) != 0) {
                ngx_http_ferry_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return NGX_DONE;
            }
            ctx->body_done = 1;
            /* until the response head: a client that goes away ends it */
            r->read_event_handler = ngx_http_ferry_watch_client;
            continue;
        }
        r->read_event_handler = ngx_http_ferry_client_read;
        rc = ngx_http_read_unbuffered_request_body(r);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_ERROR) {
            /* the client's body is broken or timed out (400/408/413) */
            ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR : rc);
            return NGX_DONE;
        }
        if (r->request_body->bufs == NULL && r->reading_body) {
            return NGX_OK;  /* NGX_AGAIN: wait for the client */
        }
    }
}

static void
ngx_http_ferry_core_write(ngx_event_t *wev)
{
    ngx_connection_t      *c = wev->data;
    ngx_http_ferry_ctx_t  *ctx = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, ctx->r->connection->log, NGX_ETIMEDOUT,
                      "FERRY0435: Cannot send the request to the ferry core: "
                      "timed out");
        ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR
                                                  : NGX_HTTP_GATEWAY_TIME_OUT);
        return;
    }
    (void) ngx_http_ferry_pump(ctx);
}

/* RESPONSE_HEAD → r->headers_out. */
static ngx_int_t
ngx_http_ferry_response_head_fields(ngx_http_ferry_ctx_t *ctx, ferry_frame_t *f)
{
    ngx_http_request_t  *r = ctx->r;
    ngx_table_elt_t     *h;
    ferry_str_t          name, value;
    size_t               i;

    r->headers_out.status = f->status;
    for (i = 0; i < f->nheaders; i++) {
        ferry_frame_header(f, i, &name, &value);
        if (name.len == 12
            && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Content-Type", 12) == 0)
        {
            r->headers_out.content_type.data = ngx_pnalloc(r->pool, value.len);
            if (r->headers_out.content_type.data == NULL) {
                return NGX_ERROR;
            }
            ngx_memcpy(r->headers_out.content_type.data, value.ptr, value.len);
            r->headers_out.content_type.len = value.len;
            r->headers_out.content_type_len = value.len;
            continue;
        }
        if (name.len == 14
            && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Content-Length", 14) == 0)
        {
            r->headers_out.content_length_n = ngx_atoof((u_char *) value.ptr, value.len);
            continue;
        }
        /* nginx writes its own Date and Server; hop-by-hop ones go */
        if ((name.len == 4
             && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Date", 4) == 0)
            || (name.len == 6
             && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Server", 6) == 0)
            || (name.len == 10
             && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Connection", 10) == 0)
            || (name.len == 17
             && ngx_strncasecmp((u_char *) name.ptr, (u_char *) "Transfer-Encoding", 17) == 0))
        {
            continue;
        }
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->hash = 1;
        h->key.data = ngx_pnalloc(r->pool, name.len + value.len);
        if (h->key.data == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(h->key.data, name.ptr, name.len);
        h->key.len = name.len;
        h->value.data = h->key.data + name.len;
        ngx_memcpy(h->value.data, value.ptr, value.len);
        h->value.len = value.len;
    }
    return NGX_OK;
}

static ngx_int_t
ngx_http_ferry_response_head(ngx_http_ferry_ctx_t *ctx, ferry_frame_t *f)
{
    if (ngx_http_ferry_response_head_fields(ctx, f) != NGX_OK) {
        return NGX_ERROR;
    }
    ctx->head_done = 1;
    return ngx_http_send_header(ctx->r);
}

/* One BODY frame to the client (copied: the frame is the decoder's). */
static ngx_int_t
ngx_http_ferry_body(ngx_http_ferry_ctx_t *ctx, const char *data, size_t len)
{
    ngx_http_request_t  *r = ctx->r;
    ngx_chain_t         *cl;
    ngx_buf_t           *b;
    ngx_int_t            rc;

    if (len == 0 || r->header_only) {
        return NGX_OK;
    }
    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }
    b = cl->buf;
    if (b->start == NULL || (size_t) (b->end - b->start) < len) {
        b->start = ngx_palloc(r->pool, ngx_max(len, FERRY_READ_CHUNK));
        if (b->start == NULL) {
            return NGX_ERROR;
        }
        b->end = b->start + ngx_max(len, FERRY_READ_CHUNK);
    }
    b->pos = b->start;
    b->last = ngx_cpymem(b->pos, data, len);
    b->memory = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_ferry_module;
    rc = ngx_http_output_filter(r, cl);
    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &cl,
                            (ngx_buf_tag_t) &ngx_http_ferry_module);
    return rc;
}

/* ---- The tunnel after a 101 ------------------------------------------- */

static void ngx_http_ferry_tunnel(ngx_http_ferry_ctx_t *ctx, ngx_uint_t from_core,
    ngx_uint_t do_write);

static void
ngx_http_ferry_tunnel_core_read(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_ferry_tunnel(c->data, 1, 0);
}

static void
ngx_http_ferry_tunnel_core_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_ferry_tunnel(c->data, 0, 1);
}

static void
ngx_http_ferry_tunnel_client_read(ngx_http_request_t *r)
{
    ngx_http_ferry_tunnel(ngx_http_get_module_ctx(r, ngx_http_ferry_module), 0, 0);
}

static void
ngx_http_ferry_tunnel_client_write(ngx_http_request_t *r)
{
    ngx_http_ferry_tunnel(ngx_http_get_module_ctx(r, ngx_http_ferry_module), 1, 1);
}

static ngx_int_t
ngx_http_ferry_tunnel_buf(ngx_http_request_t *r, ngx_buf_t *b)
{
    if (b->start == NULL) {
        b->start = ngx_palloc(r->pool, FERRY_READ_CHUNK);
        if (b->start == NULL) {
            return NGX_ERROR;
        }
        b->pos = b->start;
        b->last = b->start;
        b->end = b->start + FERRY_READ_CHUNK;
        b->temporary = 1;
    }
    return NGX_OK;
}

static void
ngx_http_ferry_tunnel(ngx_http_ferry_ctx_t *ctx, ngx_uint_t from_core,
    ngx_uint_t do_write)
{
    ngx_http_request_t         *r = ctx->r;
    ngx_connection_t           *client = r->connection, *core = ctx->peer.connection;
    ngx_connection_t           *src, *dst;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_buf_t                  *b;
    ngx_uint_t                  flags;
    size_t                      size;
    ssize_t                     n;

    if (client->write->timedout || core->read->timedout || core->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, client->log, NGX_ETIMEDOUT,
                      "ferry: the upgraded connection timed out");
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    if (from_core) {
        src = core;
        dst = client;
        b = &ctx->tun_up;
    } else {
        src = client;
        dst = core;
        b = &ctx->tun_down;
        if (r->header_in->last > r->header_in->pos) {
            /* what the client sent right after its upgrade request */
            b = r->header_in;
            b->end = b->last;
            do_write = 1;
        }
    }
    if (ngx_http_ferry_tunnel_buf(r, b) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }

    for ( ;; ) {
        if (do_write) {
            size = b->last - b->pos;
            if (size && dst->write->ready) {
                n = dst->send(dst, b->pos, size);
                if (n == NGX_ERROR) {
                    ngx_http_ferry_finish(ctx, NGX_ERROR);
                    return;
                }
                if (n > 0) {
                    b->pos += n;
                    if (b->pos == b->last) {
                        b->pos = b->start;
                        b->last = b->start;
                    }
                }
            }
        }
        size = b->end - b->last;
        if (size && src->read->ready) {
            n = src->recv(src, b->last, size);
            if (n == NGX_AGAIN || n == 0) {
                break;
            }
            if (n > 0) {
                do_write = 1;
                b->last += n;
                continue;
            }
            if (n == NGX_ERROR) {
                src->read->eof = 1;
            }
        }
        break;
    }

    if ((core->read->eof && ctx->tun_up.pos == ctx->tun_up.last)
        || (client->read->eof && ctx->tun_down.pos == ctx->tun_down.last)
        || (client->read->eof && core->read->eof))
    {
        ngx_http_ferry_finish(ctx, NGX_OK);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    if (ngx_handle_write_event(core->write, 0) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    if (core->write->active && !core->write->ready) {
        ngx_add_timer(core->write, 60000);
    } else if (core->write->timer_set) {
        ngx_del_timer(core->write);
    }
    flags = (core->read->eof || core->read->error) ? NGX_CLOSE_EVENT : 0;
    if (ngx_handle_read_event(core->read, flags) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    if (core->read->active && !core->read->ready) {
        ngx_add_timer(core->read, lcf->read_timeout);
    } else if (core->read->timer_set) {
        ngx_del_timer(core->read);
    }
    if (ngx_handle_write_event(client->write, clcf->send_lowat) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    flags = (client->read->eof || client->read->error) ? NGX_CLOSE_EVENT : 0;
    if (ngx_handle_read_event(client->read, flags) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    if (client->write->active && !client->write->ready) {
        ngx_add_timer(client->write, clcf->send_timeout);
    } else if (client->write->timer_set) {
        ngx_del_timer(client->write);
    }
}

/* A 101 to the client, then the raw stream (the bytes the decoder holds
 * after the frame are its first ones). */
static void
ngx_http_ferry_tunnel_start(ngx_http_ferry_ctx_t *ctx, ferry_frame_t *f)
{
    ngx_http_request_t  *r = ctx->r;
    ngx_connection_t    *core = ctx->peer.connection;
    const char          *pending;
    size_t               n;
    ngx_int_t            rc;

    rc = ngx_http_ferry_response_head_fields(ctx, f);
    if (rc != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->keepalive = 0;
    ctx->head_done = 1;
    if (ngx_http_ferry_tunnel_buf(r, &ctx->tun_up) != NGX_OK) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    n = ferry_decoder_pending(ctx->dec, &pending);
    if (n > (size_t) (ctx->tun_up.end - ctx->tun_up.last)) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    ctx->tun_up.last = ngx_cpymem(ctx->tun_up.last, pending, n);
    ferry_decoder_consume(ctx->dec, n);

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK
        || ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR)
    {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    r->connection->log->action = "tunnelling an upgraded connection";
    if (core->read->timer_set) {
        ngx_del_timer(core->read);
    }
    core->read->handler = ngx_http_ferry_tunnel_core_read;
    core->write->handler = ngx_http_ferry_tunnel_core_write;
    r->read_event_handler = ngx_http_ferry_tunnel_client_read;
    r->write_event_handler = ngx_http_ferry_tunnel_client_write;
    ngx_http_ferry_tunnel(ctx, 1, 1);
    if (ctx->peer.connection != NULL) {
        ngx_http_ferry_tunnel(ctx, 0, 1);
    }
}

static void
ngx_http_ferry_core_read(ngx_event_t *rev)
{
    ngx_connection_t      *c = rev->data;
    ngx_http_ferry_ctx_t  *ctx = c->data;
    ngx_http_request_t    *r = ctx->r;
    ferry_frame_t          f;
    ferry_proto_status     st;
    ngx_int_t              rc;
    char                  *buf;
    size_t                 space;
    ssize_t                n;

    if (ctx->paused) {
        return;     /* the client is busy: the core waits (its socket fills) */
    }
    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, NGX_ETIMEDOUT,
                      "FERRY0431: Cannot read the core's answer: timed out");
        ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR
                                                  : NGX_HTTP_GATEWAY_TIME_OUT);
        return;
    }

    for ( ;; ) {
        /* frames already received first */
        while ((st = ferry_decoder_next(ctx->dec, &f)) == FERRY_PROTO_OK) {
            switch (f.type) {
            case FERRY_FRAME_RESPONSE_HEAD:
                if (ctx->head_done) {
                    goto protocol;
                }
                if (f.status == NGX_HTTP_SWITCHING_PROTOCOLS) {
                    if (!ctx->upgrade || ctx->sent < ctx->out.size) {
                        goto protocol;
                    }
                    ngx_http_ferry_tunnel_start(ctx, &f);
                    return;
                }
                rc = ngx_http_ferry_response_head(ctx, &f);
                if (rc == NGX_ERROR || rc > NGX_OK) {
                    ngx_http_ferry_finish(ctx, NGX_ERROR);
                    return;
                }
                break;
            case FERRY_FRAME_BODY:
                if (!ctx->head_done) {
                    goto protocol;
                }
                rc = ngx_http_ferry_body(ctx, f.data, f.len);
                if (rc == NGX_ERROR) {
                    ngx_http_ferry_finish(ctx, NGX_ERROR);
                    return;
                }
                if (rc == NGX_AGAIN || ctx->busy != NULL) {
                    /* the client is not taking it: stop reading the core
                     * until it is (the next frames wait in the decoder) */
                    ctx->paused = 1;
                    r->write_event_handler = ngx_http_ferry_client_write;
                    if (rev->timer_set) {
                        ngx_del_timer(rev);
                    }
                    if (ngx_http_ferry_wait_client(r) != NGX_OK) {
                        ngx_http_ferry_finish(ctx, NGX_ERROR);
                    }
                    return;
                }
                break;
            case FERRY_FRAME_END:
                if (!ctx->head_done) {
                    goto protocol;
                }
                ctx->done = 1;
                ngx_http_ferry_finish(ctx, ngx_http_send_special(r, NGX_HTTP_LAST));
                return;
            case FERRY_FRAME_ABORT:
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "FERRY0432: The ferry core aborted the "
                              "response: %*s", f.message.len, f.message.ptr);
                ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR
                                                          : NGX_HTTP_BAD_GATEWAY);
                return;
            default:
                goto protocol;
            }
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            goto protocol;
        }

        if (ferry_decoder_space(ctx->dec, FERRY_READ_CHUNK, &buf, &space) != 0) {
            ngx_http_ferry_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        n = c->recv(c, (u_char *) buf, space);
        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_ferry_finish(ctx, NGX_ERROR);
                return;
            }
            ngx_add_timer(rev, ((ngx_http_ferry_loc_conf_t *)
                ngx_http_get_module_loc_conf(r, ngx_http_ferry_module))->read_timeout);
            return;
        }
        if (n == 0 || n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "FERRY0433: Cannot read the core's answer: the "
                          "connection ended");
            ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR
                                                      : NGX_HTTP_BAD_GATEWAY);
            return;
        }
        ferry_decoder_commit(ctx->dec, n);
    }

protocol:
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "FERRY0434: Cannot read the core's answer: %s",
                  ferry_proto_strstatus(st == FERRY_PROTO_OK
                                        ? FERRY_PROTO_MALFORMED : st));
    ngx_http_ferry_finish(ctx, ctx->head_done ? NGX_ERROR : NGX_HTTP_BAD_GATEWAY);
}

/* Wait until the client's socket takes more (bounded by send_timeout). */
static ngx_int_t
ngx_http_ferry_wait_client(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_event_t               *wev = r->connection->write;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }
    if (!wev->ready && !wev->timer_set) {
        ngx_add_timer(wev, clcf->send_timeout);
    }
    return NGX_OK;
}

/* The client took (some of) what was passed: send the rest, then read the
 * core again. */
static void
ngx_http_ferry_client_write(ngx_http_request_t *r)
{
    ngx_http_ferry_ctx_t  *ctx = ngx_http_get_module_ctx(r, ngx_http_ferry_module);
    ngx_int_t              rc;

    if (r->connection->write->timedout) {
        ngx_http_ferry_finish(ctx, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }
    rc = ngx_http_output_filter(r, NULL);
    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, NULL,
                            (ngx_buf_tag_t) &ngx_http_ferry_module);
    if (rc == NGX_ERROR) {
        ngx_http_ferry_finish(ctx, NGX_ERROR);
        return;
    }
    if (rc == NGX_AGAIN || ctx->busy != NULL) {
        if (ngx_http_ferry_wait_client(r) != NGX_OK) {
            ngx_http_ferry_finish(ctx, NGX_ERROR);
        }
        return;
    }
    if (r->connection->write->timer_set) {
        ngx_del_timer(r->connection->write);
    }
    if (ctx->paused) {
        ctx->paused = 0;
        r->write_event_handler = ngx_http_request_empty_handler;
        ngx_http_ferry_core_read(ctx->peer.connection->read);
    }
}

static void
ngx_http_ferry_finish(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc)
{
    if (rc > NGX_OK && ctx->head_done) {
        rc = NGX_ERROR;   /* the status is out: cut the response */
    }
    ngx_http_ferry_fail(ctx, rc);
}
