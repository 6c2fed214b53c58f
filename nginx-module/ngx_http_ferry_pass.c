/*
 * ngx_http_ferry_pass.c: a request on a pass (docs/protocol.md "Passes"),
 * without the core: the worker's pass for the request's app (its table:
 * ngx_http_ferry_pass_table.c) is usable now (not expired, restart.txt as
 * the core saw it: stat'ed at most once per passenger_stat_throttle_rate,
 * the core's own interval), the worker keeps an idle connection to one of
 * the pass's processes (the one of the process with the fewest of its requests
 * in flight: ngx_http_ferry_app_cache.c), and the core would build the
 * same head (ferry_app_head(), plus the X-Ferry-Pass marker). Then the
 * exchange runs as a leased one, without DONE; anything else takes the
 * slow path (the REQUEST_HEAD to the core: ngx_http_ferry_lease.c).
 */
#include "ngx_http_ferry.h"


/* The pass's add_headers into ctx (copied: the table's may change). */
static ngx_int_t
pass_headers(ngx_http_ferry_ctx_t *ctx, const ferry_str_t *add,
    size_t nadd)
{
    ngx_pool_t  *pool = ctx->r->pool;
    ngx_str_t   *h;
    size_t       i;

    ctx->add_headers = ngx_array_create(pool, 2 * nadd + 1, sizeof(ngx_str_t));
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
    return NGX_OK;
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
    if (pass_headers(ctx, v.add_headers, v.nadd) != NGX_OK) {
        return NGX_ERROR;
    }
    /* none idle: the core passes a new connection (how a worker warms up) */
    ac = ngx_http_ferry_app_take_pass(ctx, v.procs, v.nprocs);
    if (ac == NULL) {
        return NGX_DECLINED;
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
