/*
 * ngx_http_ferry_pass.c: a request on a pass (docs/protocol.md "Passes"),
 * without the core: the worker's pass for the request's app (its table:
 * ngx_http_ferry_pass_table.c) is usable now (not expired, restart.txt as
 * the core saw it: stat'ed at most once per passenger_stat_throttle_rate,
 * the core's own interval), the worker keeps an idle connection to one of
 * the pass's processes (the one of the process with the fewest of its requests
 * in flight: ngx_http_ferry_app_cache.c; with sticky sessions the one the
 * request's cookie names, read by ferry_sticky_id() as the core reads it,
 * with that process's Set-Cookie added), and the core would build the
 * same head (ferry_app_head(), plus the X-Ferry-Pass marker). Then the
 * exchange runs as a leased one, without DONE; anything else takes the
 * slow path (the REQUEST_HEAD to the core: ngx_http_ferry_lease.c).
 */
#include "ngx_http_ferry.h"


/* The pass's add_headers into ctx (copied: the table's may change); with
 * sticky sessions its sticky add_headers and then "Set-Cookie" pinning the
 * client to procs[j] (the HTTPS one for an HTTPS request). */
static ngx_int_t
pass_headers(ngx_http_ferry_ctx_t *ctx, const ferry_pass_view_t *v, size_t j)
{
    ngx_pool_t         *pool = ctx->r->pool;
    ngx_str_t          *h;
    size_t              i, nadd;
    const ferry_str_t  *add;
    const char         *cookie;

    add = v->sticky_cookie != NULL ? v->sticky_add_headers : v->add_headers;
    nadd = v->sticky_cookie != NULL ? v->nsticky_add : v->nadd;
    ctx->add_headers = ngx_array_create(pool, 2 * nadd + 2, sizeof(ngx_str_t));
    if (ctx->add_headers == NULL) {
        return NGX_ERROR;
    }
    for (i = 0; i < 2 * nadd; i++) {
        h = ngx_array_push(ctx->add_headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->len = add[i].len;
        h->data = ngx_pnalloc(pool, add[i].len + 1);
        if (h->data == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(h->data, add[i].ptr, add[i].len);
    }
    if (v->sticky_cookie == NULL) {
        return NGX_OK;
    }
    cookie = ctx->head.https ? v->sticky_set_cookie_https[j]
                             : v->sticky_set_cookie[j];
    h = ngx_array_push_n(ctx->add_headers, 2);
    if (h == NULL) {
        return NGX_ERROR;
    }
    ngx_str_set(&h[0], "Set-Cookie");
    h[1].len = ngx_strlen(cookie);
    h[1].data = ngx_pnalloc(pool, h[1].len + 1);
    if (h[1].data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(h[1].data, cookie, h[1].len);
    return NGX_OK;
}

/* The index of the app connection's process in the pass's procs. */
static size_t
pass_proc_index(const ferry_pass_view_t *v, ngx_http_ferry_app_conn_t *ac)
{
    size_t  i;

    for (i = 0; i < v->nprocs; i++) {
        if (ngx_strlen(v->procs[i]) == ac->id.len
            && ngx_memcmp(v->procs[i], ac->id.data, ac->id.len) == 0)
        {
            return i;
        }
    }
    return FERRY_PASS_NONE;
}

/* The app's request head with the pass marker (ferry_app_head.c: the
 * core's bytes); NGX_DECLINED when the core must build it. */
static ngx_int_t
pass_head(ngx_http_ferry_ctx_t *ctx)
{
    char     stack[2048];
    size_t   len;
    u_char  *buf;
    int      chunked = 0;

    /* built on the stack, kept at its size: the request's pool has room
     * for a small head without another block */
    len = ferry_app_head(&ctx->head, 1, stack, sizeof(stack), &chunked);
    if (len == 0) {
        return NGX_DECLINED;
    }
    buf = ngx_pnalloc(ctx->r->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }
    if (len <= sizeof(stack)) {
        ngx_memcpy(buf, stack, len);
    } else if (ferry_app_head(&ctx->head, 1, (char *) buf, len, &chunked)
               != len)
    {
        return NGX_DECLINED;
    }
    ctx->lease_head.data = buf;
    ctx->lease_head.len = len;
    ctx->chunked = chunked ? 1 : 0;
    return NGX_OK;
}

ngx_int_t
ngx_http_ferry_pass_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_answer_pt answered)
{
    ferry_pass_table_t         *t = ngx_http_ferry_pass_table();
    ngx_http_ferry_app_conn_t  *ac;
    ferry_pass_view_t           v;
    ngx_int_t                   rc;
    const char *const          *procs;
    size_t                      nprocs, j;
    char                        sticky[FERRY_STICKY_ID_SIZE];

    ctx->answered = answered;
    if (t == NULL || ctx->upgrade
        || !ferry_pass_lookup(t, (const char *) ctx->app_key.data,
                              ngx_http_ferry_pass_now(), &v))
    {
        return NGX_DECLINED;
    }
    if (v.restart_due
        && !ferry_pass_restart_unchanged(v.restart_file, v.restart_mtime_ns))
    {
        /* the core sees the head, restarts the app if it must, and grants
         * a new pass or none */
        ferry_pass_drop(t, (const char *) ctx->app_key.data);
        return NGX_DECLINED;
    }
    rc = pass_head(ctx);
    if (rc != NGX_OK) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->r->connection->log, 0,
                       "ferry: no pass for this request: its head is one "
                       "only the core may build");
        return rc;
    }
    /* With sticky sessions a request whose cookie names a process goes to
     * it (none idle: the core connects to it); one the pass does not list
     * goes to the core, which pins or reroutes it (docs/protocol.md
     * "Passes"). */
    procs = v.procs;
    nprocs = v.nprocs;
    j = FERRY_PASS_NONE;
    if (v.sticky_cookie != NULL
        && ferry_sticky_id(ctx->head.headers, ctx->head.nheaders,
                           v.sticky_cookie, sticky))
    {
        j = ferry_pass_index(sticky, v.sticky_ids, v.nprocs);
        if (j == FERRY_PASS_NONE) {
            return NGX_DECLINED;
        }
        procs = &v.procs[j];
        nprocs = 1;
    }
    /* none idle: the core passes a new connection (how a worker warms up) */
    ac = ngx_http_ferry_app_take_pass(ctx, procs, nprocs,
                                      j != FERRY_PASS_NONE);
    if (ac == NULL) {
        return NGX_DECLINED;
    }
    if (v.sticky_cookie != NULL && j == FERRY_PASS_NONE) {
        j = pass_proc_index(&v, ac);
        if (j == FERRY_PASS_NONE) {         /* take_pass keeps to procs */
            ngx_http_ferry_app_conn_close(ac);
            return NGX_DECLINED;
        }
    }
    if (pass_headers(ctx, &v, j) != NGX_OK) {
        ngx_http_ferry_app_conn_close(ac);
        return NGX_ERROR;
    }
    ctx->lease_id.len = ac->id.len;
    ctx->lease_id.data = ngx_pnalloc(ctx->r->pool, ac->id.len + 1);
    if (ctx->lease_id.data == NULL) {
        ngx_http_ferry_app_conn_close(ac);
        return NGX_ERROR;
    }
    ngx_memcpy(ctx->lease_id.data, ac->id.data, ac->id.len);
    ctx->lease_id.data[ac->id.len] = '\0';
    ctx->lease_pid = ac->pid;
    ctx->lease_time = ngx_current_msec;
    ngx_gettimeofday(&ctx->lease_tv);
    ctx->deadline_ms = 0;
    ctx->conn = ac;
    ctx->conn_reused = 1;
    ctx->passed = 1;
    ngx_http_ferry_pass_count(ctx);
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ctx->r->connection->log, 0,
                   "ferry: pass %V: app pid %L, body %s", &ctx->lease_id,
                   ctx->lease_pid, ctx->chunked ? "chunked" : "as is");
    return NGX_OK;
}
