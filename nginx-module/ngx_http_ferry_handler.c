/*
 * ngx_http_ferry_handler.c: requests of passenger_enabled locations, top
 * down (docs/protocol.md "Version 3: leases"):
 *
 *   Step One    map: not ours (disabled, a subrequest, a static file under
 *               root, no app detected in the app root) → declined; else
 *               the REQUEST_HEAD (head.c)
 *   Step Two    a pass the core granted this worker for the app (pass.c):
 *               an idle connection to one of its processes and
 *               the head built here, no core round trip (docs/protocol.md
 *               "Passes"); else the lease: the head to the core (lease.c,
 *               over link.c), which answers LEASE or PROCEED
 *   Step Three  LEASE → the direct path: HTTP/1.1 to the app over the leased
 *               socket through nginx's upstream (app.c), DONE at its end
 *               PROCEED → the relay path: frames through the core (relay.c)
 *   Step Four   a leased (or passed) connection that was stale (the app
 *               never read the request): ask the core again, once (lease.c)
 *
 * The steps report back here through the callbacks below; what they share
 * to end an exchange (DONE, fail, cleanup) is in exchange.c.
 *
 * FERRY_DATA_PATH=relay in nginx's environment sends version 2 heads: every
 * request takes the relay path.
 */
#include "ngx_http_ferry.h"
#include <stdlib.h>

static int  relay_only = -1;

int
ngx_http_ferry_relay_only(void)
{
    const char  *v;

    if (relay_only < 0) {
        v = getenv("FERRY_DATA_PATH");
        relay_only = v != NULL && ngx_strcmp(v, "relay") == 0;
    }
    return relay_only;
}

/* A request for a regular file under the location's root, whatever its
 * method: nginx has it (its static module serves a GET or HEAD and
 * answers 405 to others), as Passenger and mod_ferry leave an app's
 * public/ files to the web server. A miss is remembered for a moment
 * (ngx_http_ferry_nofile.c). */
static int
ngx_http_ferry_static_file(ngx_http_request_t *r)
{
    ngx_str_t   path;
    size_t      root;
    u_char     *last;

    if (r->uri.data[r->uri.len - 1] == '/') {
        return 0;
    }
    last = ngx_http_map_uri_to_path(r, &path, &root, 0);
    if (last == NULL) {
        return 0;
    }
    return ngx_http_ferry_is_file(path.data, last - path.data);
}

/* Passenger's page cache, for a GET or HEAD whose URI names no file:
 * <uri>.html, or <uri>index.html when the URI ends in '/', if that is a
 * regular file under the root. The request is redirected there internally
 * (nginx's static module serves it, as for any file); NGX_DECLINED when
 * there is no such file. */
static ngx_int_t
ngx_http_ferry_page_cache(ngx_http_request_t *r)
{
    static u_char    index_html[] = "index.html";
    static u_char    dot_html[] = ".html";
    ngx_str_t        path, uri;
    size_t           root, n;
    u_char          *last, *suffix;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) || r->uri.len == 0) {
        return NGX_DECLINED;
    }
    if (r->uri.data[r->uri.len - 1] == '/') {
        suffix = index_html;
        n = sizeof(index_html) - 1;
    } else {
        suffix = dot_html;
        n = sizeof(dot_html) - 1;
    }
    last = ngx_http_map_uri_to_path(r, &path, &root, n);
    if (last == NULL) {
        return NGX_DECLINED;
    }
    last = ngx_cpymem(last, suffix, n);
    *last = '\0';
    if (!ngx_http_ferry_is_file(path.data, last - path.data)) {
        return NGX_DECLINED;
    }
    uri.len = r->uri.len + n;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(ngx_cpymem(uri.data, r->uri.data, r->uri.len), suffix, n);
    return ngx_http_internal_redirect(r, &uri, &r->args);
}

/* FERRY_DATA_PATH=relay: the core connection for the v2 head. */
static void
ngx_http_ferry_relay_ready(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc)
{
    if (rc != NGX_OK) {
        ngx_http_ferry_fail(ctx, rc);
        return;
    }
    ngx_http_ferry_relay_start(ctx);
}

/* Step Four: the app never read the request on the leased connection. */
static void
ngx_http_ferry_stale(ngx_http_ferry_ctx_t *ctx, ngx_uint_t reset)
{
    ngx_http_ferry_lease_retry(ctx, reset);
}

/* Step Three: the core's answer. */
static void
ngx_http_ferry_answered(ngx_http_ferry_ctx_t *ctx, ngx_uint_t proceed)
{
    if (proceed) {
        ngx_http_ferry_relay_start(ctx);
        return;
    }
    ngx_http_ferry_app_start(ctx, ngx_http_ferry_stale);
}

static ngx_int_t
ngx_http_ferry_handler(ngx_http_request_t *r, ngx_http_ferry_map_t *m)
{
    ngx_http_ferry_ctx_t  *ctx;
    ngx_pool_cleanup_t    *cln;
    ngx_int_t              rc;

    ctx = ngx_pcalloc(r->pool, sizeof(*ctx));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx->r = r;
    ctx->passed_fd = -1;
    msgpack_sbuffer_init(&ctx->out);
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        msgpack_sbuffer_destroy(&ctx->out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    cln->handler = ngx_http_ferry_cleanup;
    cln->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_ferry_module);

    /* Step One: the head */
    if (ngx_http_ferry_head_init(r, ctx, m) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!ctx->has_body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }
    r->main->count++;
    /* until the core answers, a writable client runs nothing (the default
     * handler would run the content phase again) */
    r->write_event_handler = ngx_http_request_empty_handler;
    /* and a client that goes away meanwhile ends it */
    r->read_event_handler = ngx_http_ferry_watch_client;

    /* Step Two: the core decides (or decided: a pass); Step Three follows
     * its answer */
    if (ngx_http_ferry_relay_only()) {
        ctx->dec = ferry_decoder_create();
        if (ctx->dec == NULL) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }
        if (ferry_encode_request_head(&ctx->out, &ctx->head) != 0) {
            ngx_http_ferry_fail(ctx, NGX_HTTP_REQUEST_HEADER_TOO_LARGE);
            return NGX_DONE;
        }
        ngx_http_ferry_link_get(ctx, 1, ngx_http_ferry_relay_ready);
        return NGX_DONE;
    }
    rc = ngx_http_ferry_pass_start(ctx, ngx_http_ferry_answered);
    if (rc == NGX_OK) {
        ngx_http_ferry_answered(ctx, 0);
        return NGX_DONE;
    }
    if (rc == NGX_ERROR) {
        ngx_http_ferry_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }
    ngx_http_ferry_lease_start(ctx, ngx_http_ferry_answered);
    return NGX_DONE;
}

ngx_int_t
ngx_http_ferry_content(ngx_http_request_t *r)
{
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_ferry_map_t        m;
    ngx_int_t                   rc;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    if (!lcf->enabled || r != r->main || ngx_http_ferry_static_file(r)) {
        return NGX_DECLINED;
    }
    rc = ngx_http_ferry_page_cache(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }
    rc = ngx_http_ferry_map(r, &m);
    if (rc != NGX_OK) {
        return rc;
    }
    return ngx_http_ferry_handler(r, &m);
}
