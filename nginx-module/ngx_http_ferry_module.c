/*
 * ngx_http_ferry_module.c: Ferry's nginx module: the module struct, the
 * configuration structs (create/merge) and the command table with
 * Passenger's nginx directive names.
 */
#include "ngx_http_ferry.h"

static void *ngx_http_ferry_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ferry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ferry_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static ngx_command_t ngx_http_ferry_commands[] = {

    { ngx_string("passenger_root"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ferry_main_conf_t, root),
      NULL },

    { ngx_string("passenger_enabled"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
          |NGX_HTTP_LIF_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ferry_loc_conf_t, enabled),
      NULL },

      ngx_null_command
};

static ngx_http_module_t ngx_http_ferry_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ferry_create_main_conf,       /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ferry_create_loc_conf,        /* create location configuration */
    ngx_http_ferry_merge_loc_conf          /* merge location configuration */
};

ngx_module_t ngx_http_ferry_module = {
    NGX_MODULE_V1,
    &ngx_http_ferry_module_ctx,            /* module context */
    ngx_http_ferry_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};

static void *
ngx_http_ferry_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ferry_main_conf_t  *mcf;

    /* ngx_pcalloc: root = { 0, NULL } (unset) */
    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ferry_main_conf_t));
    return mcf;
}

static void *
ngx_http_ferry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ferry_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ferry_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }
    lcf->enabled = NGX_CONF_UNSET;
    return lcf;
}

static char *
ngx_http_ferry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ferry_loc_conf_t  *prev = parent;
    ngx_http_ferry_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enabled, prev->enabled, 0);
    return NGX_CONF_OK;
}
