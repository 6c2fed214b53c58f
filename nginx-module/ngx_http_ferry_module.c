/*
 * ngx_http_ferry_module.c: Ferry's nginx module: the module struct and its
 * hooks. The configuration is in ngx_http_ferry_config.c (the direct
 * path's upstream conf in ngx_http_ferry_app.c), the core's supervision in
 * ngx_http_ferry_daemon.c, requests in ngx_http_ferry_handler.c.
 */
#include "ngx_http_ferry.h"

/* The content phase handler runs before nginx's static module (a module
 * loaded later registers later and is asked first). */
static ngx_int_t
ngx_http_ferry_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_core_main_conf_t  *cmcf;
    ngx_http_handler_pt        *h;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_CONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_ferry_content;
    return NGX_OK;
}

/* A location's settings, then its direct path's upstream conf. */
static char *
ngx_http_ferry_merge_loc(ngx_conf_t *cf, void *parent, void *child)
{
    char  *rv;

    rv = ngx_http_ferry_merge_loc_conf(cf, parent, child);
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    if (ngx_http_ferry_app_init_conf(cf, child, parent) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

static ngx_int_t
ngx_http_ferry_init_module(ngx_cycle_t *cycle)
{
    /* read in the master: workers get a cleared environment */
    (void) ngx_http_ferry_relay_only();
    (void) ngx_http_ferry_pass_wanted();
    ngx_http_ferry_pass_shared_init(cycle);
    return ngx_http_ferry_daemon_init(cycle);
}

static ngx_int_t
ngx_http_ferry_init_process(ngx_cycle_t *cycle)
{
    (void) cycle;
    ngx_http_ferry_daemon_init_process();
    return NGX_OK;
}

static void
ngx_http_ferry_exit_master(ngx_cycle_t *cycle)
{
    (void) cycle;
    ngx_http_ferry_daemon_exit_master();
}

static ngx_http_module_t ngx_http_ferry_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ferry_postconfiguration,      /* postconfiguration */

    ngx_http_ferry_create_main_conf,       /* create main configuration */
    ngx_http_ferry_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ferry_create_loc_conf,        /* create location configuration */
    ngx_http_ferry_merge_loc               /* merge location configuration */
};

ngx_module_t ngx_http_ferry_module = {
    NGX_MODULE_V1,
    &ngx_http_ferry_module_ctx,            /* module context */
    ngx_http_ferry_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_ferry_init_module,            /* init module */
    ngx_http_ferry_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    ngx_http_ferry_exit_master,            /* exit master */
    NGX_MODULE_V1_PADDING
};
