/*
 * ngx_http_ferry.h: the nginx integration of Ferry, shared by the module's
 * files. ngx_http_ferry_module.c holds the module struct, the configuration
 * (create/merge, directive setters, command table).
 */
#ifndef NGX_HTTP_FERRY_H
#define NGX_HTTP_FERRY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/* http{} level: server-wide settings (Passenger keeps one per nginx). */
typedef struct {
    ngx_str_t root;                 /* passenger_root */
} ngx_http_ferry_main_conf_t;

/* server{} / location{} level: per-application settings. */
typedef struct {
    ngx_flag_t enabled;             /* passenger_enabled */
} ngx_http_ferry_loc_conf_t;

extern ngx_module_t ngx_http_ferry_module;

#endif
