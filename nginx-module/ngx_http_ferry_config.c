/*
 * ngx_http_ferry_config.c: the nginx module's configuration: Passenger's
 * nginx directives with their names and contexts (docs/nginx.md is the
 * reference; test/unit/docs/nginx-directives.test.ts checks the two agree),
 * create/merge of the conf structs, and the setters.
 *
 * Options of the core are data: each FERRY_SRV / FERRY_APP entry of the
 * command table carries its key, type and range, and one setter per level
 * stores a value under that key. Server options become the `server` object
 * of the core's config file (docs/core-config.md), app options the `app`
 * map of the REQUEST_HEAD (docs/protocol.md). Only options that are set are
 * kept, so the core's defaults (core/src/config/schema.ts) apply to the rest.
 */
#include "ngx_http_ferry.h"

/* Contexts, as docs/nginx.md names them. */
#define H       NGX_HTTP_MAIN_CONF
#define HSLI    (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF \
                 |NGX_HTTP_LIF_CONF)

#define STR     NGX_HTTP_FERRY_STR
#define INT     NGX_HTTP_FERRY_INT
#define SEC     NGX_HTTP_FERRY_SEC
#define FLAG    NGX_HTTP_FERRY_FLAG

/* The largest timer a Node core accepts (2^31-1 ms), in seconds. */
#define TIMER_MAX   2147483
#define YEAR        31536000

static char *ngx_http_ferry_set_enabled(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_ignore_headers(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ferry_set_server(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_app(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_inert(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_env_var(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_base_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_pre_start(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ferry_set_redeploy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static const char *check_app_type(ngx_str_t *v);
static const char *check_log_format(ngx_str_t *v);
static const char *check_abs_path(ngx_str_t *v);
static const char *check_token(ngx_str_t *v);
static const char *check_affinity_redis(ngx_str_t *v);

#define OPT(key, type, min, max, check) \
    (&(ngx_http_ferry_opt_t) { key, type, min, max, check })

/* A server-wide option (http{} only): the `server` key of the core config. */
#define FERRY_SRV(name, ctx, nargs, key, type, min, max, check)              \
    { ngx_string(name), (ctx)|(nargs), ngx_http_ferry_set_server,            \
      NGX_HTTP_MAIN_CONF_OFFSET, 0, OPT(key, type, min, max, check) }

/* A per-application option: the `app` key of the REQUEST_HEAD. */
#define FERRY_APP(name, ctx, nargs, key, type, min, max, check)              \
    { ngx_string(name), (ctx)|(nargs), ngx_http_ferry_set_app,               \
      NGX_HTTP_LOC_CONF_OFFSET, 0, OPT(key, type, min, max, check) }

/* Accepted for compatibility, no effect: a notice (FERRY0401) says why. */
#define FERRY_INERT(name, ctx, nargs, why)                                   \
    { ngx_string(name), (ctx)|(nargs), ngx_http_ferry_set_inert,             \
      0, 0, (void *) why }

/* A directive with its own setter. */
#define FERRY_CMD(name, ctx, nargs, set, conf, offset)                       \
    { ngx_string(name), (ctx)|(nargs), set, conf, offset, NULL }

#define T1      NGX_CONF_TAKE1
#define T2      NGX_CONF_TAKE2
#define FL      NGX_CONF_FLAG
#define ANY     NGX_CONF_ANY
#define MORE    NGX_CONF_1MORE

#define NA_NODE  "applies to Ruby, Python or Meteor apps only, not to Node.js or generic apps"
#define OBSOLETE "obsolete in Passenger"
#define ENGINE   "Ferry's core has no such setting"
#define NGX_OWN  "nginx's own directive of the same job applies"

ngx_command_t ngx_http_ferry_commands[] = {

    /* -- http{}: the core and the pool ----------------------------------- */
    FERRY_CMD("passenger_root", H, T1, ngx_conf_set_str_slot,
              NGX_HTTP_MAIN_CONF_OFFSET,
              offsetof(ngx_http_ferry_main_conf_t, root)),
    FERRY_CMD("passenger_instance_registry_dir", H, T1, ngx_conf_set_str_slot,
              NGX_HTTP_MAIN_CONF_OFFSET,
              offsetof(ngx_http_ferry_main_conf_t, instance_registry_dir)),
    FERRY_SRV("passenger_max_pool_size", H, T1, "max_pool_size", INT, 1, 10000, NULL),
    FERRY_SRV("passenger_pool_idle_time", H, T1, "pool_idle_time", SEC, 0, YEAR, NULL),
    FERRY_SRV("passenger_max_instances_per_app", H, T1, "max_instances_per_app", INT, 0, 10000, NULL),
    FERRY_SRV("passenger_stat_throttle_rate", H, T1, "stat_throttle_rate", SEC, 0, 86400, NULL),
    FERRY_SRV("passenger_log_level", H, T1, "log_level", INT, 0, 7, NULL),
    FERRY_SRV("passenger_log_file", H, T1, "log_file", STR, 0, 0, NULL),
    FERRY_SRV("passenger_debug_log_file", H, T1, "log_file", STR, 0, 0, NULL),
    FERRY_SRV("passenger_socket_backlog", H, T1, "socket_backlog", INT, 1, 65535, NULL),
    FERRY_SRV("passenger_user_switching", H, FL, "user_switching", FLAG, 0, 1, NULL),
    FERRY_SRV("passenger_default_user", H, T1, "default_user", STR, 0, 0, NULL),
    FERRY_SRV("passenger_default_group", H, T1, "default_group", STR, 0, 0, NULL),
    FERRY_CMD("passenger_pre_start", H, T1, ngx_http_ferry_set_pre_start,
              NGX_HTTP_MAIN_CONF_OFFSET, 0),

    /* -- http{}: Ferry's own (named like the Apache ones) ---------------- */
    FERRY_SRV("passenger_admin_group", H, T1, "admin_group", STR, 0, 0, NULL),
    FERRY_SRV("passenger_log_format", H, T1, "log_format", STR, 0, 0, check_log_format),
    FERRY_SRV("passenger_metrics_listen", H, T1, "metrics_listen", STR, 0, 0, NULL),
    FERRY_SRV("passenger_health_check_path", H, T1, "health_check_path", STR, 0, 0, check_abs_path),
    FERRY_SRV("passenger_health_check_interval", H, T1, "health_check_interval", SEC, 1, 86400, NULL),
    FERRY_SRV("passenger_health_check_timeout", H, T1, "health_check_timeout", SEC, 1, 3600, NULL),
    FERRY_SRV("passenger_health_check_failures", H, T1, "health_check_failures", INT, 1, 1000, NULL),
    FERRY_SRV("passenger_health_check_event_loop_timeout", H, T1, "health_check_event_loop_timeout", SEC, 0, 86400, NULL),
    FERRY_SRV("passenger_affinity_redis", H, T1, "affinity_redis", STR, 0, 0, check_affinity_redis),
    FERRY_SRV("passenger_affinity_node_name", H, T1, "affinity_node_name", STR, 0, 0, NULL),
    FERRY_SRV("passenger_affinity_listen", H, T1, "affinity_listen", STR, 0, 0, NULL),
    FERRY_SRV("passenger_affinity_secret_file", H, T1, "affinity_secret_file", STR, 0, 0, NULL),
    FERRY_SRV("passenger_affinity_ttl", H, T1, "affinity_ttl", SEC, 1, YEAR, NULL),
    FERRY_SRV("passenger_affinity_redis_timeout", H, T1, "affinity_redis_timeout", INT, 1, 60000, NULL),
    FERRY_SRV("passenger_affinity_tls_cert_file", H, T1, "affinity_tls_cert_file", STR, 0, 0, NULL),
    FERRY_SRV("passenger_affinity_tls_key_file", H, T1, "affinity_tls_key_file", STR, 0, 0, NULL),
    FERRY_SRV("passenger_affinity_tls_ca_file", H, T1, "affinity_tls_ca_file", STR, 0, 0, NULL),
    FERRY_CMD("passenger_redeploy_on_graceful", H, T1, ngx_http_ferry_set_redeploy,
              NGX_HTTP_MAIN_CONF_OFFSET, 0),

    /* -- per application (http{}, server{}, location{}, if) --------------- */
    FERRY_CMD("passenger_enabled", HSLI, FL, ngx_http_ferry_set_enabled,
              NGX_HTTP_LOC_CONF_OFFSET,
              offsetof(ngx_http_ferry_loc_conf_t, enabled)),
    FERRY_APP("passenger_app_root", HSLI, T1, "app_root", STR, 0, 0, NULL),
    FERRY_APP("passenger_app_group_name", HSLI, T1, "app_group_name", STR, 0, 0, NULL),
    FERRY_APP("passenger_app_type", HSLI, T1, "app_type", STR, 0, 0, check_app_type),
    FERRY_APP("passenger_startup_file", HSLI, T1, "startup_file", STR, 0, 0, NULL),
    FERRY_APP("passenger_app_start_command", HSLI, T1, "app_start_command", STR, 0, 0, NULL),
    FERRY_APP("passenger_app_env", HSLI, T1, "app_env", STR, 0, 0, NULL),
    FERRY_APP("rails_env", HSLI, T1, "app_env", STR, 0, 0, NULL),
    FERRY_APP("rack_env", HSLI, T1, "app_env", STR, 0, 0, NULL),
    FERRY_APP("passenger_nodejs", HSLI, T1, "nodejs", STR, 0, 0, NULL),
    FERRY_CMD("passenger_env_var", HSLI, T2, ngx_http_ferry_set_env_var,
              NGX_HTTP_LOC_CONF_OFFSET, 0),
    FERRY_CMD("passenger_base_uri", HSLI, T1, ngx_http_ferry_set_base_uri,
              NGX_HTTP_LOC_CONF_OFFSET, 0),
    FERRY_CMD("passenger_set_header", HSLI, T2, ngx_http_ferry_set_header,
              NGX_HTTP_LOC_CONF_OFFSET, 0),
    FERRY_CMD("passenger_read_timeout", HSLI, T1, ngx_conf_set_msec_slot,
              NGX_HTTP_LOC_CONF_OFFSET,
              offsetof(ngx_http_ferry_loc_conf_t, read_timeout)),
    FERRY_CMD("passenger_intercept_errors", HSLI, FL, ngx_conf_set_flag_slot,
              NGX_HTTP_LOC_CONF_OFFSET,
              offsetof(ngx_http_ferry_loc_conf_t, intercept_errors)),
    FERRY_CMD("passenger_ignore_headers", HSLI, MORE,
              ngx_http_ferry_set_ignore_headers, NGX_HTTP_LOC_CONF_OFFSET,
              offsetof(ngx_http_ferry_loc_conf_t, ignore_headers)),
    FERRY_APP("passenger_document_root", HSLI, T1, "document_root", STR, 0, 0, check_abs_path),
    FERRY_APP("passenger_min_instances", HSLI, T1, "min_instances", INT, 0, 10000, NULL),
    FERRY_APP("passenger_max_requests", HSLI, T1, "max_requests", INT, 0, NGX_MAX_INT32_VALUE, NULL),
    FERRY_APP("passenger_max_request_queue_size", HSLI, T1, "max_request_queue_size", INT, 0, NGX_MAX_INT32_VALUE, NULL),
    FERRY_APP("passenger_force_max_concurrent_requests_per_process", HSLI, T1,
              "force_max_concurrent_requests_per_process", INT, -1, NGX_MAX_INT32_VALUE, NULL),
    FERRY_APP("passenger_start_timeout", HSLI, T1, "start_timeout", SEC, 1, TIMER_MAX, NULL),
    FERRY_APP("passenger_restart_dir", HSLI, T1, "restart_dir", STR, 0, 0, NULL),
    FERRY_APP("passenger_sticky_sessions", HSLI, FL, "sticky_sessions", FLAG, 0, 1, NULL),
    FERRY_APP("passenger_sticky_sessions_cookie_name", HSLI, T1, "sticky_sessions_cookie_name", STR, 0, 0, check_token),
    FERRY_APP("passenger_sticky_sessions_cookie_attributes", HSLI, T1, "sticky_sessions_cookie_attributes", STR, 0, 0, NULL),
    FERRY_APP("passenger_friendly_error_pages", HSLI, FL, "friendly_error_pages", FLAG, 0, 1, NULL),
    FERRY_APP("passenger_user", HSLI, T1, "user", STR, 0, 0, NULL),
    FERRY_APP("passenger_group", HSLI, T1, "group", STR, 0, 0, NULL),
    FERRY_APP("passenger_load_shell_envvars", HSLI, FL, "load_shell_envvars", FLAG, 0, 1, NULL),
    FERRY_APP("passenger_memory_limit", HSLI, T1, "memory_limit", INT, 0, 1048576, NULL),
    FERRY_APP("passenger_max_request_time", HSLI, T1, "max_request_time", SEC, 0, TIMER_MAX, NULL),
    FERRY_APP("passenger_max_request_queue_time", HSLI, T1, "max_request_queue_time", SEC, 0, TIMER_MAX, NULL),
    FERRY_APP("passenger_request_queue_overflow_status_code", HSLI, T1, "request_queue_overflow_status_code", INT, 400, 599, NULL),
    FERRY_APP("passenger_spawn_exception_status_code", HSLI, T1, "spawn_exception_status_code", INT, 400, 599, NULL),
    FERRY_APP("passenger_app_log_file", HSLI, T1, "app_log_file", STR, 0, 0, NULL),
    FERRY_APP("passenger_custom_error_page", HSLI, T1, "custom_error_page", STR, 0, 0, NULL),
    FERRY_APP("passenger_app_file_descriptor_ulimit", HSLI, T1, "app_file_descriptor_ulimit", INT, 0, NGX_MAX_INT32_VALUE, NULL),
    FERRY_APP("passenger_abort_websockets_on_process_shutdown", HSLI, FL,
              "abort_websockets_on_process_shutdown", FLAG, 0, 1, NULL),
    FERRY_APP("passenger_show_version_in_header", H, FL, "show_version_in_header", FLAG, 0, 1, NULL),

    /* -- accepted, no effect: http{} -------------------------------------- */
    FERRY_INERT("passenger_ctl", H, T2, "Passenger agent options do not apply to Ferry's core"),
    FERRY_INERT("passenger_abort_on_startup_error", H, FL, "nginx refuses to start when the core cannot start"),
    FERRY_INERT("passenger_core_file_descriptor_ulimit", H, T1, ENGINE),
    FERRY_INERT("passenger_dump_config_manifest", H, T1, "use ferry status --json"),
    FERRY_INERT("passenger_file_descriptor_log_file", H, T1, ENGINE),
    FERRY_INERT("passenger_disable_log_prefix", H, FL, "the core writes its own line shape (passenger_log_format)"),
    FERRY_INERT("passenger_data_buffer_dir", H, T1, NGX_OWN " (client_body_temp_path, proxy buffering)"),
    FERRY_INERT("passenger_response_buffer_high_watermark", H, T1, NGX_OWN " (nginx buffers responses)"),
    FERRY_INERT("passenger_spawn_dir", H, T1, "no spawn work dir in Ferry"),
    FERRY_INERT("passenger_turbocaching", H, FL, "no turbocache; use nginx's proxy cache"),
    FERRY_INERT("passenger_disable_security_update_check", H, FL, "Ferry never phones home"),
    FERRY_INERT("passenger_security_update_check_proxy", H, T1, "Ferry never phones home"),
    FERRY_INERT("passenger_disable_anonymous_telemetry", H, FL, "Ferry has no telemetry"),
    FERRY_INERT("passenger_anonymous_telemetry_proxy", H, T1, "Ferry has no telemetry"),
    FERRY_INERT("passenger_admin_panel_url", H, T1, "no Fuse panel connector; use ferry status"),
    FERRY_INERT("passenger_admin_panel_auth_type", H, T1, "no Fuse panel connector"),
    FERRY_INERT("passenger_admin_panel_username", H, T1, "no Fuse panel connector"),
    FERRY_INERT("passenger_admin_panel_password", H, T1, "no Fuse panel connector"),
    FERRY_INERT("passenger_default_ruby", H, T1, NA_NODE),
    FERRY_INERT("passenger_fly_with", H, T1, "no Flying Passenger in Ferry"),
    FERRY_INERT("passenger_use_global_queue", HSLI, FL, OBSOLETE " (the global queue is always on)"),
    FERRY_INERT("passenger_analytics_log_user", H, T1, OBSOLETE),
    FERRY_INERT("passenger_analytics_log_group", H, T1, OBSOLETE),
    FERRY_INERT("union_station_gateway_address", H, T1, OBSOLETE),
    FERRY_INERT("union_station_gateway_port", H, T1, OBSOLETE),
    FERRY_INERT("union_station_gateway_cert", H, T1, OBSOLETE),
    FERRY_INERT("union_station_proxy_address", H, T1, OBSOLETE),
    FERRY_INERT("union_station_key", HSLI, T1, OBSOLETE),
    FERRY_INERT("union_station_filter", HSLI, T1, OBSOLETE),
    FERRY_INERT("union_station_support", HSLI, FL, OBSOLETE),

    /* -- accepted, no effect: per application ------------------------------ */
    FERRY_INERT("passenger_ruby", HSLI, T1, NA_NODE),
    FERRY_INERT("passenger_python", HSLI, T1, NA_NODE),
    FERRY_INERT("passenger_meteor_app_settings", HSLI, T1, NA_NODE),
    FERRY_INERT("passenger_spawn_method", HSLI, T1, "Node.js apps always spawn directly"),
    FERRY_INERT("passenger_preload_bundler", HSLI, FL, NA_NODE),
    FERRY_INERT("passenger_max_preloader_idle_time", HSLI, T1, "no preloader for Node.js or generic apps"),
    FERRY_INERT("passenger_app_rights", HSLI, T1, "apps run as passenger_user / the startup file's owner"),
    FERRY_INERT("passenger_buffer_response", HSLI, FL, NGX_OWN),
    FERRY_INERT("passenger_buffer_size", HSLI, T1, NGX_OWN),
    FERRY_INERT("passenger_buffers", HSLI, T2, NGX_OWN),
    FERRY_INERT("passenger_busy_buffers_size", HSLI, T1, NGX_OWN),
    FERRY_INERT("passenger_request_buffering", HSLI, FL, "request bodies stream to the app as they arrive"),
    FERRY_INERT("passenger_ignore_client_abort", HSLI, FL, ENGINE),
    FERRY_INERT("passenger_pass_header", HSLI, T1, NGX_OWN),
    FERRY_INERT("passenger_headers_hash_bucket_size", HSLI, T1, NGX_OWN),
    FERRY_INERT("passenger_headers_hash_max_size", HSLI, T1, NGX_OWN),
    FERRY_INERT("passenger_vary_turbocache_by_cookie", HSLI, T1, "no turbocache"),
    FERRY_INERT("passenger_debugger", HSLI, FL, "Passenger Enterprise's debugger"),
    FERRY_INERT("passenger_concurrency_model", HSLI, T1, "Node.js apps are single-threaded processes"),
    FERRY_INERT("passenger_thread_count", HSLI, T1, "Node.js apps are single-threaded processes"),
    FERRY_INERT("passenger_rolling_restarts", HSLI, FL, "restarts are always rolling in Ferry"),
    FERRY_INERT("passenger_resist_deployment_errors", HSLI, FL, ENGINE),
    FERRY_INERT("passenger_max_instances", HSLI, T1, "use passenger_max_instances_per_app"),
    FERRY_INERT("passenger_buffer_upload", HSLI, FL, "request bodies stream to the app as they arrive"),
    FERRY_INERT("passenger_temp_path", HSLI, T1, NGX_OWN " (client_body_temp_path)"),
    FERRY_INERT("passenger_direct_instance_request_address", HSLI, T1, "app processes listen on private Unix sockets only"),
    FERRY_INERT("passenger_monitor_log_file", HSLI, T1, "no Fuse panel connector"),
    FERRY_INERT("rails_spawn_method", HSLI, T1, "Node.js apps always spawn directly"),
    FERRY_INERT("rails_app_spawner_idle_time", HSLI, T1, "no preloader for Node.js or generic apps"),
    FERRY_INERT("rails_framework_spawner_idle_time", HSLI, T1, OBSOLETE),

    ngx_null_command
};

/* ------------------------------------------------------------------------ */
/* Values                                                                  */

ngx_http_ferry_value_t *
ngx_http_ferry_value(ngx_array_t *values, const char *key)
{
    ngx_http_ferry_value_t  *v;
    ngx_uint_t               i;

    if (values == NULL) {
        return NULL;
    }
    v = values->elts;
    for (i = 0; i < values->nelts; i++) {
        if (ngx_strcmp(v[i].opt->key, key) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

/* "must be ..." error text for cmd, allocated from cf->pool. */
static char *
ngx_http_ferry_range_error(ngx_conf_t *cf, const ngx_http_ferry_opt_t *opt,
    ngx_str_t *value)
{
    u_char  *p, *end;
    size_t   len = 128 + value->len;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }
    end = ngx_snprintf(p, len - 1, "must be %s %i-%i%s, got \"%V\"",
                       opt->type == SEC ? "a duration" : "an integer",
                       opt->min, opt->max, opt->type == SEC ? " s" : "", value);
    *end = '\0';
    return (char *) p;
}

/* Parse the directive's argument into a value of values (created on
 * first use). NGX_CONF_OK or an error text. */
static char *
ngx_http_ferry_parse(ngx_conf_t *cf, ngx_command_t *cmd, ngx_array_t **values)
{
    const ngx_http_ferry_opt_t  *opt = cmd->post;
    ngx_http_ferry_value_t      *v;
    ngx_str_t                   *value = cf->args->elts;
    ngx_str_t                   *arg = &value[1];
    ngx_int_t                    n;
    const char                  *err;
    int                          neg;

    if (*values == NULL) {
        *values = ngx_array_create(cf->pool, 8, sizeof(ngx_http_ferry_value_t));
        if (*values == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    /* An alias sets the same key: once per level. */
    if (ngx_http_ferry_value(*values, opt->key) != NULL) {
        return "is duplicate";
    }

    switch (opt->type) {
    case NGX_HTTP_FERRY_INT:
        neg = arg->len > 1 && arg->data[0] == '-';
        n = ngx_atoi(arg->data + neg, arg->len - neg);
        if (n == NGX_ERROR) {
            return ngx_http_ferry_range_error(cf, opt, arg);
        }
        if (neg) {
            n = -n;
        }
        if (n < opt->min || n > opt->max) {
            return ngx_http_ferry_range_error(cf, opt, arg);
        }
        break;
    case NGX_HTTP_FERRY_SEC:
        n = ngx_parse_time(arg, 1);
        if (n == NGX_ERROR || n < opt->min || n > opt->max) {
            return ngx_http_ferry_range_error(cf, opt, arg);
        }
        break;
    case NGX_HTTP_FERRY_FLAG:
        if (ngx_strcasecmp(arg->data, (u_char *) "on") == 0) {
            n = 1;
        } else if (ngx_strcasecmp(arg->data, (u_char *) "off") == 0) {
            n = 0;
        } else {
            return "must be \"on\" or \"off\"";
        }
        break;
    default:
        n = 0;
        if (arg->len == 0) {
            return "must not be empty";
        }
        if (opt->check != NULL && (err = opt->check(arg)) != NULL) {
            return (char *) err;
        }
        if (ngx_strcmp(opt->key, "app_root") == 0) {
            /* relative to nginx's prefix, as `root` is (mod_ferry: to
             * ServerRoot); no trailing "/" */
            if (ngx_conf_full_name(cf->cycle, arg, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
            while (arg->len > 1 && arg->data[arg->len - 1] == '/') {
                arg->len--;
            }
            arg->data[arg->len] = '\0';
        }
        break;
    }

    v = ngx_array_push(*values);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }
    v->opt = opt;
    v->str = *arg;
    v->num = n;
    return NGX_CONF_OK;
}

/* ------------------------------------------------------------------------ */
/* Setters                                                                 */

/* passenger_enabled: on/off; on in a location whose name ends in "/"
 * redirects the name without it there (nginx's auto_redirect, as
 * Passenger sets it: `location /app/` answers "/app" with a 301). */
static char *
ngx_http_ferry_set_enabled(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_loc_conf_t  *lcf = conf;
    ngx_http_core_loc_conf_t   *clcf;
    char                       *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK || !lcf->enabled) {
        return rv;
    }
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->name.len > 0 && clcf->name.data[clcf->name.len - 1] == '/') {
        clcf->auto_redirect = 1;
    }
    return NGX_CONF_OK;
}

/* passenger_ignore_headers: proxy_ignore_headers' values and setter. */
static char *
ngx_http_ferry_set_ignore_headers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_command_t  c = *cmd;

    c.post = ngx_http_upstream_ignore_headers_masks;
    return ngx_conf_set_bitmask_slot(cf, &c, conf);
}

static char *
ngx_http_ferry_set_server(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_main_conf_t  *mcf = conf;

    return ngx_http_ferry_parse(cf, cmd, &mcf->server);
}

static char *
ngx_http_ferry_set_app(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_loc_conf_t  *lcf = conf;

    return ngx_http_ferry_parse(cf, cmd, &lcf->app);
}

static char *
ngx_http_ferry_set_inert(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value = cf->args->elts;

    if ((cmd->type & NGX_CONF_FLAG)
        && ngx_strcasecmp(value[1].data, (u_char *) "on") != 0
        && ngx_strcasecmp(value[1].data, (u_char *) "off") != 0)
    {
        return "must be \"on\" or \"off\"";
    }
    ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                       "FERRY0401: \"%V\" is accepted and has no effect in "
                       "Ferry: %s", &cmd->name, (const char *) cmd->post);
    return NGX_CONF_OK;
}

static char *
ngx_http_ferry_set_env_var(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_loc_conf_t  *lcf = conf;
    ngx_str_t                  *value = cf->args->elts;
    ngx_keyval_t               *kv;

    if (value[1].len == 0 || ngx_strlchr(value[1].data,
                                         value[1].data + value[1].len, '=')
                             != NULL)
    {
        return "needs a variable name without \"=\"";
    }
    if (lcf->env == NULL) {
        lcf->env = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (lcf->env == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    kv = ngx_array_push(lcf->env);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }
    kv->key = value[1];
    kv->value = value[2];
    return NGX_CONF_OK;
}

/* passenger_set_header NAME VALUE, as proxy_set_header: the value may hold
 * variables; a level with its own replaces the outer levels' list. */
static char *
ngx_http_ferry_set_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_loc_conf_t         *lcf = conf;
    ngx_str_t                         *value = cf->args->elts;
    ngx_http_ferry_set_header_t       *h;
    ngx_http_compile_complex_value_t   ccv;
    size_t                             i;

    if (value[1].len == 0) {
        return "needs a header name";
    }
    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= ' ' || value[1].data[i] == ':'
            || value[1].data[i] >= 0x7f)
        {
            return "needs a header name without spaces or \":\"";
        }
    }
    if (lcf->set_headers == NULL) {
        lcf->set_headers = ngx_array_create(cf->pool, 4,
                                            sizeof(ngx_http_ferry_set_header_t));
        if (lcf->set_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    h = ngx_array_push(lcf->set_headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }
    h->name = value[1];
    ngx_memzero(&ccv, sizeof(ccv));
    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &h->value;
    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

static char *
ngx_http_ferry_set_base_uri(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_loc_conf_t  *lcf = conf;
    ngx_str_t                  *value = cf->args->elts, *uri;

    if (value[1].len == 0 || value[1].data[0] != '/') {
        return "must be a URI path starting with \"/\"";
    }
    if (lcf->base_uris == NULL) {
        lcf->base_uris = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (lcf->base_uris == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    uri = ngx_array_push(lcf->base_uris);
    if (uri == NULL) {
        return NGX_CONF_ERROR;
    }
    /* "/app/" and "/app" name the same mount point. */
    *uri = value[1];
    while (uri->len > 1 && uri->data[uri->len - 1] == '/') {
        uri->len--;
    }
    return NGX_CONF_OK;
}

static char *
ngx_http_ferry_set_pre_start(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_main_conf_t  *mcf = conf;
    ngx_str_t                   *value = cf->args->elts, *url;

    if (ngx_strncmp(value[1].data, "http://", 7) != 0
        && ngx_strncmp(value[1].data, "https://", 8) != 0)
    {
        return "must be an http:// or https:// URL";
    }
    if (mcf->prestart == NULL) {
        mcf->prestart = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (mcf->prestart == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    url = ngx_array_push(mcf->prestart);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }
    *url = value[1];
    return NGX_CONF_OK;
}

static char *
ngx_http_ferry_set_redeploy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ferry_main_conf_t  *mcf = conf;
    ngx_str_t                   *value = cf->args->elts;

    if (mcf->redeploy.data != NULL) {
        return "is duplicate";
    }
    if (ngx_strcmp(value[1].data, "all") != 0
        && ngx_strcmp(value[1].data, "changed") != 0
        && ngx_strcmp(value[1].data, "off") != 0)
    {
        return "must be \"all\", \"changed\" or \"off\"";
    }
    mcf->redeploy = value[1];
    return NGX_CONF_OK;
}

/* ------------------------------------------------------------------------ */
/* Checks of string values                                                 */

static const char *
check_app_type(ngx_str_t *v)
{
    static const char *known[] = {
        "node", "nodejs", "generic", "rack", "ruby", "wsgi", "python",
        "meteor", NULL
    };
    ngx_uint_t  i;

    for (i = 0; known[i] != NULL; i++) {
        if (ngx_strcmp(v->data, known[i]) == 0) {
            return NULL;
        }
    }
    return "must be node, nodejs or generic (or Passenger's rack, ruby, "
           "wsgi, python, meteor)";
}

static const char *
check_log_format(ngx_str_t *v)
{
    if (ngx_strcmp(v->data, "text") == 0 || ngx_strcmp(v->data, "json") == 0) {
        return NULL;
    }
    return "must be \"text\" or \"json\"";
}

static const char *
check_abs_path(ngx_str_t *v)
{
    return v->data[0] == '/' ? NULL : "must start with \"/\"";
}

/* A cookie name: an HTTP token (the core refuses anything else). */
static const char *
check_token(ngx_str_t *v)
{
    static const char  *extra = "!#$%&'*+-.^_`|~";
    size_t              i;
    u_char              ch;

    for (i = 0; i < v->len; i++) {
        ch = v->data[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
              || (ch >= 'A' && ch <= 'Z') || ngx_strchr(extra, ch) != NULL))
        {
            return "must be a cookie name (letters, digits and "
                   "!#$%&'*+-.^_`|~)";
        }
    }
    return NULL;
}

static const char *
check_affinity_redis(ngx_str_t *v)
{
    if (ngx_strncmp(v->data, "redis://", 8) == 0
        || ngx_strncmp(v->data, "rediss://", 9) == 0
        || ngx_strncmp(v->data, "unix:", 5) == 0)
    {
        return NULL;
    }
    return "must be a redis://, rediss:// or unix: URL";
}

/* ------------------------------------------------------------------------ */
/* Create and merge                                                        */

void *
ngx_http_ferry_create_main_conf(ngx_conf_t *cf)
{
    /* ngx_pcalloc: every string { 0, NULL } and every array NULL = unset */
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_ferry_main_conf_t));
}

/* Checks across http{} directives, once http{} is read (so `nginx -t`
 * refuses what the core would refuse at start). */
char *
ngx_http_ferry_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ferry_main_conf_t  *mcf = conf;

    /* Peers authenticate forwarded requests with the shared secret. */
    if (ngx_http_ferry_value(mcf->server, "affinity_redis") != NULL
        && ngx_http_ferry_value(mcf->server, "affinity_secret_file") == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "FERRY0456: passenger_affinity_secret_file is "
                           "required when passenger_affinity_redis is set");
        return NGX_CONF_ERROR;
    }
    return NGX_CONF_OK;
}

void *
ngx_http_ferry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ferry_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ferry_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }
    lcf->enabled = NGX_CONF_UNSET;
    lcf->intercept_errors = NGX_CONF_UNSET;
    lcf->ignore_headers = 0;        /* ngx_conf_set_bitmask_slot: 0 = unset */
    lcf->read_timeout = NGX_CONF_UNSET_MSEC;
    lcf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    lcf->upstream.pass_headers = NGX_CONF_UNSET_PTR;
    return lcf;
}

/* The parent's app values that the child does not set, then the child's:
 * a new array (never written into parent or child). */
static ngx_array_t *
ngx_http_ferry_merge_values(ngx_conf_t *cf, ngx_array_t *parent,
    ngx_array_t *child)
{
    ngx_http_ferry_value_t  *pv, *v;
    ngx_array_t             *out;
    ngx_uint_t               i;

    if (parent == NULL || parent->nelts == 0) {
        return child;
    }
    if (child == NULL || child->nelts == 0) {
        return parent;
    }
    out = ngx_array_create(cf->pool, parent->nelts + child->nelts,
                           sizeof(ngx_http_ferry_value_t));
    if (out == NULL) {
        return NULL;
    }
    /* Preallocated for both: no push below can fail. */
    pv = parent->elts;
    for (i = 0; i < parent->nelts; i++) {
        if (ngx_http_ferry_value(child, pv[i].opt->key) == NULL) {
            v = ngx_array_push(out);
            *v = pv[i];
        }
    }
    pv = child->elts;
    for (i = 0; i < child->nelts; i++) {
        v = ngx_array_push(out);
        *v = pv[i];
    }
    return out;
}

char *
ngx_http_ferry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ferry_loc_conf_t  *prev = parent;
    ngx_http_ferry_loc_conf_t  *conf = child;
    ngx_keyval_t               *kv;
    ngx_array_t                *env, *uris;
    ngx_str_t                  *uri;
    ngx_uint_t                  i;

    ngx_conf_merge_value(conf->enabled, prev->enabled, 0);
    ngx_conf_merge_value(conf->intercept_errors, prev->intercept_errors, 0);
    /* passenger_ignore_headers: the X-Accel-* headers of the app's response
     * nginx does not act on (none by default, as Passenger) */
    ngx_conf_merge_bitmask_value(conf->ignore_headers, prev->ignore_headers,
                                 NGX_CONF_BITMASK_SET);

    conf->app = ngx_http_ferry_merge_values(cf, prev->app, conf->app);
    if (prev->app != NULL && prev->app->nelts > 0 && conf->app == NULL) {
        return NGX_CONF_ERROR;
    }

    /* passenger_env_var: the outer ones, then this level's (a later
     * assignment of the same name wins in the app's environment). */
    if (conf->env == NULL) {
        conf->env = prev->env;
    } else if (prev->env != NULL && prev->env->nelts > 0) {
        env = ngx_array_create(cf->pool, prev->env->nelts + conf->env->nelts,
                               sizeof(ngx_keyval_t));
        if (env == NULL) {
            return NGX_CONF_ERROR;
        }
        /* Both fit in the preallocated elements: no push can fail. */
        kv = prev->env->elts;
        for (i = 0; i < prev->env->nelts; i++) {
            *(ngx_keyval_t *) ngx_array_push(env) = kv[i];
        }
        kv = conf->env->elts;
        for (i = 0; i < conf->env->nelts; i++) {
            *(ngx_keyval_t *) ngx_array_push(env) = kv[i];
        }
        conf->env = env;
    }

    /* passenger_set_header: as proxy_set_header (and Passenger), a level
     * with its own does not inherit the outer ones */
    if (conf->set_headers == NULL) {
        conf->set_headers = prev->set_headers;
    }

    /* passenger_base_uri: this level's, then the outer ones (as Passenger
     * merges them: a location's base URI adds to its server's). */
    if (conf->base_uris == NULL) {
        conf->base_uris = prev->base_uris;
    } else if (prev->base_uris != NULL && prev->base_uris->nelts > 0) {
        uris = ngx_array_create(cf->pool,
                                conf->base_uris->nelts + prev->base_uris->nelts,
                                sizeof(ngx_str_t));
        if (uris == NULL) {
            return NGX_CONF_ERROR;
        }
        /* Both fit in the preallocated elements: no push can fail. */
        uri = conf->base_uris->elts;
        for (i = 0; i < conf->base_uris->nelts; i++) {
            *(ngx_str_t *) ngx_array_push(uris) = uri[i];
        }
        uri = prev->base_uris->elts;
        for (i = 0; i < prev->base_uris->nelts; i++) {
            *(ngx_str_t *) ngx_array_push(uris) = uri[i];
        }
        conf->base_uris = uris;
    }
    return NGX_CONF_OK;
}
