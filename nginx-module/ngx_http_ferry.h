/*
 * ngx_http_ferry.h: the nginx integration of Ferry, shared by the module's
 * files:
 *   ngx_http_ferry_module.c   the module struct and its hooks
 *   ngx_http_ferry_config.c   configuration: the option table, create/merge,
 *                             directive setters, the command table
 *   ngx_http_ferry_daemon.c   the master starts and supervises the core
 *   ngx_http_ferry_handler.c  requests: the exchange with the core
 *   ngx_http_ferry_head.c     the REQUEST_HEAD of a request
 */
#ifndef NGX_HTTP_FERRY_H
#define NGX_HTTP_FERRY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <msgpack.h>

/* How an option's value is parsed and sent. */
typedef enum {
    NGX_HTTP_FERRY_STR,             /* a string */
    NGX_HTTP_FERRY_INT,             /* an integer in [min, max] */
    NGX_HTTP_FERRY_SEC,             /* a duration (nginx syntax: 90, 90s, 5m),
                                     * whole seconds in [min, max] */
    NGX_HTTP_FERRY_FLAG             /* on / off */
} ngx_http_ferry_type_e;

/* One option of the core (a `server` key of the core's config JSON, or an
 * `app` key of the REQUEST_HEAD): docs/core-config.md, docs/protocol.md. */
typedef struct ngx_http_ferry_opt_s  ngx_http_ferry_opt_t;

struct ngx_http_ferry_opt_s {
    const char              *key;   /* snake_case key; aliases share it */
    ngx_http_ferry_type_e    type;
    ngx_int_t                min;
    ngx_int_t                max;
    /* Extra validation of a string value: NULL or an error text. */
    const char            *(*check)(ngx_str_t *value);
};

/* A value set by a directive. */
typedef struct {
    const ngx_http_ferry_opt_t  *opt;
    ngx_str_t                    str;       /* STR */
    ngx_int_t                    num;       /* INT, SEC; FLAG: 0/1 */
} ngx_http_ferry_value_t;

/* http{} level: server-wide settings (Passenger keeps one per nginx). */
typedef struct {
    ngx_str_t      root;            /* passenger_root */
    ngx_array_t   *server;          /* ngx_http_ferry_value_t: `server` keys */
    ngx_array_t   *prestart;        /* ngx_str_t: passenger_pre_start URLs */
    ngx_str_t      instance_registry_dir;
    ngx_str_t      redeploy;        /* passenger_redeploy_on_graceful */
} ngx_http_ferry_main_conf_t;

/* http{} / server{} / location{} level: per-application settings. */
typedef struct {
    ngx_flag_t     enabled;         /* passenger_enabled */
    ngx_array_t   *app;             /* ngx_http_ferry_value_t: `app` keys,
                                     * inherited ones included after merge */
    ngx_array_t   *env;             /* ngx_keyval_t: passenger_env_var */
    ngx_array_t   *base_uris;       /* ngx_str_t: passenger_base_uri */
} ngx_http_ferry_loc_conf_t;

extern ngx_module_t ngx_http_ferry_module;
extern ngx_command_t ngx_http_ferry_commands[];

void *ngx_http_ferry_create_main_conf(ngx_conf_t *cf);
void *ngx_http_ferry_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_ferry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);

/* The value of key in values (NULL when unset). */
ngx_http_ferry_value_t *ngx_http_ferry_value(ngx_array_t *values, const char *key);

/* ngx_http_ferry_daemon.c */
ngx_int_t ngx_http_ferry_daemon_init(ngx_cycle_t *cycle);
void ngx_http_ferry_daemon_init_process(void);
void ngx_http_ferry_daemon_exit_master(void);
const char *ngx_http_ferry_core_socket(void);
int64_t ngx_http_ferry_generation(void);

/* ngx_http_ferry_head.c: the REQUEST_HEAD (protocol v2) of r into out. */
ngx_int_t ngx_http_ferry_head_encode(ngx_http_request_t *r,
    msgpack_sbuffer *out, int has_body);

/* ngx_http_ferry_handler.c: the content phase handler. */
ngx_int_t ngx_http_ferry_content(ngx_http_request_t *r);

#endif
