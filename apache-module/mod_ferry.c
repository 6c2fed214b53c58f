/*
 * mod_ferry.c: the module struct and its hook registrations only.
 *
 * The file is named mod_ferry.c so `<IfModule mod_ferry.c>` works.
 *   ferry_config.c  directives, config structs      (ferry_config.h)
 *   ferry_map.c     which requests belong to an app (ferry_map.h)
 *   ferry_detect.c  which kind of app an app root holds (ferry_detect.h)
 *   ferry_handler.c the data path                    (ferry_handler.h; its
 *                   steps in ferry_lease.c, ferry_app_http.c, ferry_body.c,
 *                   ferry_response.c, ferry_tunnel.c: see ferry_exchange.h;
 *                   passes, sticky ones too, in ferry_app_cache.c and
 *                   ferry_pass.c)
 *   ferry_daemon.c  the core daemon                  (ferry_daemon.h)
 */

#include "httpd.h"
#include "http_config.h"
#include "http_request.h"

#include "ferry_config.h"
#include "ferry_daemon.h"
#include "ferry_handler.h"
#include "ferry_detect.h"
#include "ferry_map.h"

static void ferry_register_hooks(apr_pool_t *p)
{
    static const char *const before_rewrite[] = { "mod_rewrite.c", NULL };
    static const char *const mod_dir[] = { "mod_dir.c", NULL };

    (void)p;

    /* Startup: reset per-pass state; log the notices of inert directives
     * once (under `apache2 -t` from check_config). */
    ap_hook_pre_config(ferry_config_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ferry_config_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ferry_config_post_config, NULL, NULL, APR_HOOK_MIDDLE);

    /* The core daemon: started/reconfigured from the parent's post_config. */
    ap_hook_post_config(ferry_daemon_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ferry_daemon_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ferry_detect_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ferry_handler_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* The in-flight counts the children share (passes pick by them). */
    ap_hook_post_config(ferry_handler_post_config, NULL, NULL, APR_HOOK_MIDDLE);

    /* Remember the URI before mod_rewrite's server-config rules run, so a
     * rewritten request reaches the app with its new URI. */
    ap_hook_translate_name(ferry_map_translate_name, NULL, NULL, APR_HOOK_REALLY_FIRST);

    /* PassengerHighPerformance: claim app requests before core's directory
     * walk (core's map_to_storage hook is REALLY_LAST; the first OK wins). */
    ap_hook_map_to_storage(ferry_map_to_storage, NULL, NULL, APR_HOOK_FIRST);

    /* Mapping: decide first, before mod_rewrite's per-directory rules (an
     * internal rewrite then sets redirect-handler and the handler declines). */
    ap_hook_fixups(ferry_map_fixups, NULL, before_rewrite, APR_HOOK_FIRST);
    /* Keep mod_dir (trailing-slash redirect, DirectoryIndex) off app URIs. */
    ap_hook_fixups(ferry_map_block_mod_dir, NULL, mod_dir, APR_HOOK_LAST);
    ap_hook_fixups(ferry_map_unblock_mod_dir, mod_dir, NULL, APR_HOOK_LAST);

    /* The data path. r->handler is "ferry" for app requests, so
     * mod_autoindex and the default handler decline them. */
    ap_hook_handler(ferry_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ferry) = {
    STANDARD20_MODULE_STUFF,
    ferry_create_dir_conf,      /* create per-directory config structure */
    ferry_merge_dir_conf,       /* merge per-directory config structures */
    ferry_create_server_conf,   /* create per-server config structure */
    ferry_merge_server_conf,    /* merge per-server config structures */
    ferry_cmds,                 /* command table (directives) */
    ferry_register_hooks,       /* register hooks */
    0                           /* flags */
};
