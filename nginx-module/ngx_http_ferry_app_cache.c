/*
 * ngx_http_ferry_app_cache.c: the app connections a worker keeps between
 * exchanges (docs/protocol.md "Keep-alive"), as mod_ferry's
 * ferry_app_cache.c does per Apache child: at most 64 idle, each at most
 * 4 s (below Node's default keepAliveTimeout of 5 s), the oldest goes
 * first, keyed by the app and the LEASE id. A request sets aside the newest
 * one per app process ("held" in its head); the core answers "reuse" one
 * of them or passes a new socket (ngx_http_ferry_app_wrap_fd). A kept
 * connection the app closes is closed here at once.
 */
#include "ngx_http_ferry.h"

#define FERRY_APP_IDLE_MAX      64
#define FERRY_APP_IDLE_TIME     4000    /* ms, below Node's 5 s keepAliveTimeout */
#define FERRY_APP_PEEK_AFTER    2       /* ms idle: recv(MSG_PEEK) before use */

/* This worker's idle app connections, the most recently used first. */
static ngx_queue_t  app_cache;
static ngx_uint_t   app_cache_n;
static ngx_uint_t   app_cache_init;


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
ngx_int_t
ngx_http_ferry_app_cache_put(ngx_http_ferry_app_conn_t *ac, int fresh_idle)
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

ngx_http_ferry_app_conn_t *
ngx_http_ferry_app_take_pass(ngx_http_ferry_ctx_t *ctx,
    const char *const *procs, size_t nprocs, ngx_uint_t pinned)
{
    ngx_http_ferry_app_conn_t  *ac, *cand[FERRY_HELD_MAX];
    const char                 *ids[FERRY_HELD_MAX];
    ngx_queue_t                *q;
    size_t                      i, j, n, pick;

    app_cache_setup();
    for ( ;; ) {
        /* the newest idle connection of each process the pass names */
        n = 0;
        for (q = ngx_queue_head(&app_cache);
             q != ngx_queue_sentinel(&app_cache) && n < FERRY_HELD_MAX;
             q = ngx_queue_next(q))
        {
            ac = ngx_queue_data(q, ngx_http_ferry_app_conn_t, queue);
            if (ac->key.len != ctx->app_key.len
                || ngx_memcmp(ac->key.data, ctx->app_key.data, ac->key.len) != 0)
            {
                continue;
            }
            for (i = 0; i < nprocs; i++) {
                if (ngx_strlen(procs[i]) == ac->id.len
                    && ngx_memcmp(procs[i], ac->id.data, ac->id.len) == 0)
                {
                    break;
                }
            }
            if (i == nprocs) {
                continue;                   /* not the pass's */
            }
            for (j = 0; j < n && ids[j] != procs[i]; j++) { /* void */ }
            if (j < n) {
                continue;                   /* an older one of a process */
            }
            cand[n] = ac;
            ids[n++] = procs[i];
        }
        if (n == 0) {
            return NULL;
        }
        /* the least busy process (this worker's requests in flight on it),
         * unless one this worker holds no idle connection to is less busy
         * (then the core passes one), or the app closed (or half-closed)
         * that connection meanwhile: then again. A connection idle for less than FERRY_APP_PEEK_AFTER
         * ms (under load, most) is not looked at with a recv(): the app
         * answered on it a moment ago and did not say "close"; one idle
         * longer is (an app's idle timeout may have closed it) */
        pick = pinned ? 0
               : ferry_pass_choose(ngx_http_ferry_pass_table(),
                                   (const char *) ctx->app_key.data, ids, n,
                                   ngx_http_ferry_pass_now());
        if (pick == FERRY_PASS_GROW) {
            return NULL;
        }
        ac = cand[pick];
        ngx_queue_remove(&ac->queue);
        ac->cached = 0;
        app_cache_n--;
        if ((!ctx->has_body
             && ngx_current_msec - ac->idle_since < FERRY_APP_PEEK_AFTER)
            || ngx_http_ferry_app_conn_alive(ac))
        {
            return ac;
        }
        ngx_http_ferry_app_conn_close(ac);
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
        if (ac->dead || ngx_http_ferry_app_cache_put(ac, 0) != NGX_OK) {
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

    ac = ngx_alloc(sizeof(*ac) + ctx->app_key.len + ctx->lease_id.len
                   + sizeof("ferry app pid ") - 1 + NGX_INT64_LEN,
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
    p = ngx_cpymem(p, ctx->lease_id.data, ctx->lease_id.len);
    ac->name.data = p;
    ac->name.len = ngx_sprintf(p, "ferry app pid %L", ctx->lease_pid) - p;
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
