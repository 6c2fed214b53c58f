/*
 * ngx_http_ferry_module.c: Ferry's nginx module: the module struct and its
 * hooks. The configuration is in ngx_http_ferry_config.c.
 */
#include "ngx_http_ferry.h"

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
