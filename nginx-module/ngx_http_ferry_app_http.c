/*
 * ngx_http_ferry_app_http.c: HTTP/1.1 to the app on the direct path, as
 * nginx's upstream callbacks (docs/protocol.md "What the module does on
 * the direct path"; mod_ferry's ferry_app_http.c):
 *
 *   create_request    the LEASE's head; the body streams after it from
 *                     nginx's unbuffered request body reader, as it is or
 *                     as HTTP/1.1 chunks (body_filter), never held whole
 *   process_header    status line and headers (ngx_http_parse_status_line /
 *                     ngx_http_parse_header_line), 1xx skipped, a 101 only
 *                     for an upgrade the client asked for (nginx then
 *                     tunnels), hop-by-hop headers dropped (the location's
 *                     hide list), the LEASE's add_headers added
 *   input filters     the body by Content-Length, chunks (ngx_http_parse_
 *                     chunked) or the connection's end, passed on
 *                     unbuffered with nginx's backpressure; bytes counted
 *                     for DONE
 */
#include "ngx_http_ferry.h"


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

ngx_int_t
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

ngx_int_t
ngx_http_ferry_reinit_request(ngx_http_request_t *r)
{
    (void) r;
    return NGX_OK;
}

static ngx_int_t ngx_http_ferry_process_header(ngx_http_request_t *r);

ngx_int_t
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

static ngx_int_t ngx_http_ferry_chunked_filter(void *data, ssize_t bytes);

ngx_int_t
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

ngx_int_t
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
