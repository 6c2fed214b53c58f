/*
 * map_stub.c: test double for the daemon and the data path, linked with
 * mod_ferry.c + ferry_config.c + ferry_map.c + ferry_proto.c into a module that needs no
 * core (test/helpers/mod-ferry-stub.ts builds it; test/e2e/directives.test.ts
 * and test/e2e/mapping.test.ts use it).
 *
 * - ferry_handler: for a request ferry_map_fixups claimed, answers 200 with
 *   Content-Type application/x-msgpack and the body [app, env] exactly as
 *   ferry_proto.c encodes them for REQUEST_HEAD, plus the
 *   data-path knobs in X-Ferry-* headers.
 * - ferry_daemon_post_config: on the real pass, writes ferry_server_options_json
 *   and the daemon accessors to $FERRY_STUB_SERVER_FILE (JSON) if set.
 */
#include <stdio.h>
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "ferry_config.h"
#include "ferry_daemon.h"
#include "ferry_handler.h"
#include "ferry_map.h"

static const char *json_or_null(apr_pool_t *p, const char *s)
{
    /* Test paths contain no characters that need escaping. */
    return s ? apr_pstrcat(p, "\"", s, "\"", NULL) : "null";
}

int ferry_daemon_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    const char *path = getenv("FERRY_STUB_SERVER_FILE");
    FILE *f;

    (void)pconf;
    (void)plog;
    if (path == NULL || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    f = fopen(path, "w");
    if (f == NULL) {
        return OK;
    }
    fprintf(f, "{\"server\":%s,\"root\":%s,\"instance_registry_dir\":%s,"
            "\"log_file\":%s,\"nodejs\":%s,\"default_user\":%s,"
            "\"default_group\":%s,\"user_switching\":%s,\"log_level\":%d,"
            "\"redeploy_on_graceful\":\"%s\"}\n",
            ferry_server_options_json(ptemp, s),
            json_or_null(ptemp, ferry_conf_root(s)),
            json_or_null(ptemp, ferry_conf_instance_registry_dir(s)),
            json_or_null(ptemp, ferry_conf_log_file(s)),
            json_or_null(ptemp, ferry_conf_nodejs(s)),
            json_or_null(ptemp, ferry_conf_default_user(s)),
            json_or_null(ptemp, ferry_conf_default_group(s)),
            ferry_conf_user_switching(s) ? "true" : "false",
            ferry_conf_log_level(s),
            ferry_conf_redeploy_name(ferry_conf_redeploy_on_graceful(s)));
    fclose(f);
    return OK;
}

void ferry_daemon_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
}

/* The data path's translate_name hook (ferry_handler.c, when mod_ferry.c
 * registers it): nothing to do without a core. */
int ferry_handler_translate_name(request_rec *r);
int ferry_handler_translate_name(request_rec *r)
{
    (void)r;
    return DECLINED;
}

void ferry_handler_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    (void)s;
}

int ferry_handler_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    (void)s;
    return OK;
}

int ferry_handler(request_rec *r)
{
    const ferry_app_t *app = ferry_request_app(r);
    const ferry_opt_t *opts;
    const char *const *env;
    apr_size_t nopts, nenv;
    msgpack_sbuffer sb;
    int rc;

    if (app == NULL) {
        return DECLINED;
    }
    nopts = ferry_app_options(r, app, &opts);
    nenv = ferry_app_env(r, app, &env);
    msgpack_sbuffer_init(&sb);
    rc = ferry_encode_app_env(&sb, opts, nopts, env, nenv);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_table_setn(r->headers_out, "X-Ferry-Read-Timeout",
                   apr_ltoa(r->pool, (long)apr_time_as_msec(ferry_app_read_timeout(r, app))));
    apr_table_setn(r->headers_out, "X-Ferry-Ws-Idle-Timeout",
                   apr_ltoa(r->pool, (long)apr_time_as_msec(ferry_app_ws_idle_timeout(app))));
    apr_table_setn(r->headers_out, "X-Ferry-Buffer-Response",
                   ferry_app_buffer_response(app) ? "1" : "0");
    apr_table_setn(r->headers_out, "X-Ferry-Error-Override",
                   ferry_app_error_override(app) ? "1" : "0");
    apr_table_setn(r->headers_out, "X-Ferry-Show-Version",
                   ferry_app_show_version(app) ? "1" : "0");
    ap_set_content_type(r, "application/x-msgpack");
    ap_set_content_length(r, (apr_off_t)sb.size);
    if (!r->header_only) {
        ap_rwrite(sb.data, (int)sb.size, r);
    }
    msgpack_sbuffer_destroy(&sb);
    return OK;
}
