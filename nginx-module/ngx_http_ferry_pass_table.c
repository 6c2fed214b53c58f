/*
 * ngx_http_ferry_pass_table.c: this worker's passes (docs/protocol.md
 * "Passes"): the table of the shared ferry_pass.c (a pass per app key, the
 * worker's requests in flight per app process, leased or on a pass, also
 * counted in the table all workers share, mapped by the master), and the
 * switch. nginx workers are single threaded: no locking.
 *
 * Passes are on unless FERRY_PASS=off is in nginx's environment: then the
 * module never asks for one (REQUEST_HEAD `pass` absent) and every request
 * sends its head to the core; read in the master, as FERRY_DATA_PATH is.
 */
#include "ngx_http_ferry.h"
#include <stdlib.h>

static int                  pass_wanted = -1;
static ferry_pass_table_t  *passes;


int
ngx_http_ferry_pass_wanted(void)
{
    const char  *v;

    if (pass_wanted < 0) {
        v = getenv("FERRY_PASS");
        pass_wanted = v == NULL || ngx_strcmp(v, "off") != 0;
    }
    return pass_wanted;
}

/* passenger_stat_throttle_rate (s; the core's default 1): a pass's
 * restart.txt is stat'ed at most that often, as the core checks it. */
static int64_t
pass_restart_interval_us(void)
{
    ngx_http_ferry_main_conf_t  *mcf;
    ngx_http_ferry_value_t      *v;

    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_ferry_module);
    v = mcf != NULL ? ngx_http_ferry_value(mcf->server, "stat_throttle_rate")
                    : NULL;
    return (int64_t) (v != NULL ? v->num : 1) * 1000000;
}

void
ngx_http_ferry_pass_shared_init(ngx_cycle_t *cycle)
{
    if (ngx_http_ferry_pass_wanted() && ferry_pass_shared_create() != 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "FERRY0460: Cannot map the in-flight counts the "
                      "workers share; each worker picks app processes by "
                      "its own requests only");
    }
}

ferry_pass_table_t *
ngx_http_ferry_pass_table(void)
{
    if (passes == NULL && ngx_http_ferry_pass_wanted()) {
        passes = ferry_pass_table_create();
        if (passes == NULL) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "FERRY0455: Cannot use passes: out of memory for "
                          "the worker's pass table");
            return NULL;
        }
        ferry_pass_set_restart_interval(passes, pass_restart_interval_us());
    }
    return passes;
}

int64_t
ngx_http_ferry_pass_now(void)
{
    return (int64_t) ngx_current_msec * 1000;
}

void
ngx_http_ferry_pass_lost_core(void)
{
    if (passes != NULL) {
        ferry_pass_clear_all(passes);
    }
}

void
ngx_http_ferry_pass_count(ngx_http_ferry_ctx_t *ctx)
{
    if (passes != NULL && !ctx->counted) {
        ferry_pass_begin(passes, (const char *) ctx->lease_id.data);
        ctx->counted = 1;
    }
}

void
ngx_http_ferry_pass_uncount(ngx_http_ferry_ctx_t *ctx)
{
    if (ctx->counted) {
        ctx->counted = 0;
        ferry_pass_end(passes, (const char *) ctx->lease_id.data);
    }
}
