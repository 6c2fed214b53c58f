/*
 * ferry_map.h: which requests belong to an app, and what the data path needs
 * to know about that app. Implemented in ferry_map.c / ferry_config.c.
 * (Contract between the config/mapping part and the data path.)
 */
#ifndef FERRY_MAP_H
#define FERRY_MAP_H

#include "httpd.h"
#include "apr_time.h"

#include "ferry_proto.h"

/* The per-request decision made in the fixups hook: opaque to the data path. */
typedef struct ferry_app_t ferry_app_t;

/* fixups hook (APR_HOOK_FIRST, registered in mod_ferry.c): decides whether r
 * belongs to an app (PassengerEnabled, app root, base URI, static files served
 * by Apache) and stores the decision in r->request_config. Returns DECLINED
 * (never an error for "not ours"), or an HTTP error for a broken app config.
 * A request ferry_map_to_storage claimed is left as it is. */
int ferry_map_fixups(request_rec *r);

/* map_to_storage hook (APR_HOOK_FIRST): with PassengerHighPerformance on in
 * the server or VirtualHost config, the same decision before core's
 * directory/file walk; OK for a claimed request (the walk, <Directory>,
 * <Files> and .htaccess are skipped), else DECLINED with r untouched. */
int ferry_map_to_storage(request_rec *r);

/* translate_name, before mod_rewrite: remember r->uri and r->args, so that
 * ferry_map_app_uri() can tell whether a server-config RewriteRule changed
 * them. */
int ferry_map_translate_name(request_rec *r);

/* The request target to send to the app: r->unparsed_uri, or the rewritten
 * URI (escaped r->uri + "?" + r->args) after a server-config rewrite. */
const char *ferry_map_app_uri(request_rec *r);

/* fixups hooks around mod_dir (registered in mod_ferry.c, APR_HOOK_LAST,
 * before / after mod_dir.c): hide an app request's directory from mod_dir
 * (no trailing-slash redirect, no DirectoryIndex) and restore it after. */
int ferry_map_block_mod_dir(request_rec *r);
int ferry_map_unblock_mod_dir(request_rec *r);

/* The handler name ferry_map_fixups gives requests it claims. */
#define FERRY_HANDLER_NAME "ferry"

/* The decision made for r in fixups, or NULL when r is not for Ferry
 * (also NULL when a later module, e.g. mod_rewrite, changed r->handler). */
const ferry_app_t *ferry_request_app(request_rec *r);

/* The REQUEST_HEAD "app" options (docs/protocol.md "App options", in the
 * table's order, unset ones left out) and the "env" pairs (SetEnv
 * variables, then PassengerEnvVar), allocated from r->pool; each returns
 * its count (env: pairs). ferry_proto.c packs them. */
#define FERRY_APP_OPTIONS_MAX 40
apr_size_t ferry_app_options(request_rec *r, const ferry_app_t *app,
                             const ferry_opt_t **opts);
apr_size_t ferry_app_env(request_rec *r, const ferry_app_t *app,
                         const char *const **env);

/* The string value of option key in opts, or NULL. */
const char *ferry_app_option_str(const ferry_opt_t *opts, apr_size_t n,
                                 const char *key);

/* Knobs for the data path. */
apr_interval_time_t ferry_app_read_timeout(request_rec *r, const ferry_app_t *app); /* PassengerReadTimeout, else r->server->timeout */
int ferry_app_buffer_response(const ferry_app_t *app);                              /* PassengerBufferResponse */
apr_interval_time_t ferry_app_ws_idle_timeout(const ferry_app_t *app);              /* PassengerWebSocketIdleTimeout */
int ferry_app_error_override(const ferry_app_t *app);                               /* PassengerErrorOverride */
int ferry_app_show_version(const ferry_app_t *app);                                 /* PassengerShowVersionInHeader */

#endif
