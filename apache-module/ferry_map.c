/*
 * ferry_map.c: does this request belong to an app, and which one? (Passenger's
 * prepareRequest + DirectoryMapper, reference/passenger.md §1.2.)
 *
 * decide() runs in the fixups phase (before mod_rewrite's per-directory
 * rules), or with PassengerHighPerformance in map_to_storage, before core's
 * directory walk (ferry_map_to_storage; the file is stat()ed there):
 *   1. PassengerEnabled (default on) must be on; subrequests and requests
 *      another module already gave a handler (SetHandler ...) are not ours.
 *   2. The mapped file is an existing regular file: Apache serves it.
 *   3. Base URI: the first PassengerBaseURI equal to the URI or a prefix of
 *      it followed by "/" ("/" is ignored); public dir = DocumentRoot + base
 *      URI (or DocumentRoot).
 *   4. App root = PassengerAppRoot, else the parent of the public dir (its
 *      symlink resolved when a base URI matched).
 *   5. App type: PassengerAppStartCommand -> generic; PassengerAppType node/
 *      generic; else autodetect in the app root: Passengerfile.json's
 *      app_start_command -> generic, PassengerStartupFile or app.js -> node;
 *      config.ru / passenger_wsgi.py / .meteor apps are not ours (declined).
 *   6. Page cache (GET): <file>.html or <dir>/index.html exists -> Apache.
 *   7. Tenant binding: an app configured by a non-root user's .htaccess
 *      must have that user's app root and startup file, and runs as them.
 *   8. Claim: r->handler = "ferry", the decision in r->request_config.
 *
 * Step 5's detection, and its per-child cache (PassengerStatThrottleRate),
 * is ferry_detect.c's.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_file_io.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_user.h"

#include "ferry_config.h"
#include "ferry_detect.h"
#include "ferry_log.h"
#include "ferry_map.h"

APLOG_USE_MODULE(ferry);

struct ferry_app_t {
    const ferry_dir_conf_t *dc;
    const char *app_root;
    const char *app_type;          /* "node" | "generic" */
    const char *startup_file;      /* node: configured or app.js */
    const char *app_start_command; /* generic */
    const char *base_uri;          /* "" when none matched */
    const char *document_root;
    const char *app_env;
    const char *app_group_name;
    const char *run_as;            /* the .htaccess owner of a bound app */
    int show_version;
    apr_interval_time_t server_timeout;
    int dir_blocked;               /* mod_dir is being kept away */
    int claimed_early;             /* in map_to_storage (PassengerHighPerformance) */
};

/* ---- Paths ---------------------------------------------------------------- */

static char *strip_trailing_slashes(char *path)
{
    size_t len = strlen(path);

    while (len > 1 && path[len - 1] == '/') {
        path[--len] = '\0';
    }
    return path;
}

static const char *parent_dir(apr_pool_t *p, const char *path)
{
    char *d = strip_trailing_slashes(apr_pstrdup(p, path));
    char *slash = strrchr(d, '/');

    if (slash == NULL) {
        return ".";
    }
    if (slash == d) {
        return "/";
    }
    *slash = '\0';
    return d;
}

/* The first PassengerBaseURI that equals uri or prefixes it before a "/". */
static const char *match_base_uri(const ferry_dir_conf_t *dc, const char *uri)
{
    int i;

    for (i = 0; i < dc->base_uris->nelts; i++) {
        const char *b = APR_ARRAY_IDX(dc->base_uris, i, const char *);
        size_t len = strlen(b);
        if (len <= 1) {
            continue; /* "/" is ignored, as in Passenger */
        }
        if (strncmp(uri, b, len) == 0 && (uri[len] == '\0' || uri[len] == '/')) {
            return b;
        }
    }
    return NULL;
}

/* Page cache (Passenger): on GET, an existing <file>.html or <dir>/index.html
 * is served by Apache. Returns 1 when r is for Apache; with apply, r then
 * maps to <file>.html (without, r is left as it is). */
static int page_cache(request_rec *r, int apply)
{
    apr_finfo_t fi;
    const char *full, *cand;
    int has_path_info = r->path_info && *r->path_info;

    if (r->method_number != M_GET || r->filename == NULL) {
        return 0;
    }
    if (r->finfo.filetype == APR_DIR && !has_path_info) {
        cand = apr_pstrcat(r->pool, strip_trailing_slashes(apr_pstrdup(r->pool,
                           r->filename)), "/index.html", NULL);
        /* mod_dir serves DirectoryIndex (or adds the slash first). */
        return apr_stat(&fi, cand, APR_FINFO_TYPE, r->pool) == APR_SUCCESS
               && fi.filetype == APR_REG;
    }
    full = has_path_info ? apr_pstrcat(r->pool, r->filename, r->path_info, NULL)
                         : r->filename;
    if (*full == '\0' || full[strlen(full) - 1] == '/') {
        return 0;
    }
    cand = apr_pstrcat(r->pool, full, ".html", NULL);
    if (apr_stat(&fi, cand, APR_FINFO_MIN, r->pool) != APR_SUCCESS
        || fi.filetype != APR_REG) {
        return 0;
    }
    if (!apply) {
        return 1;
    }
    r->filename = (char *)cand;
    r->canonical_filename = r->filename;
    r->path_info = "";
    r->finfo = fi;
    ap_run_type_checker(r);
    return 1;
}

/* ---- The fixups decision -------------------------------------------------- */

static int unsupported_type(request_rec *r, const char *app_root, const char *type)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0006)
                  "Cannot serve %s app %s: Ferry runs Node.js and generic "
                  "(PassengerAppStartCommand) apps only", type, app_root);
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- Tenant binding (docs/security.md, ".htaccess") ----------------------- */

/* The user name of uid, or NULL when it has none. */
static const char *uid_name(apr_pool_t *p, apr_uid_t uid)
{
    char *name = NULL;

    if (apr_uid_name_get(&name, uid, p) != APR_SUCCESS) {
        return NULL;
    }
    return name;
}

/* 1 when path is owned by uid, 0 when by another (*owner), -1 on error. */
static int owned_by(apr_pool_t *p, const char *path, apr_uid_t uid,
                    apr_uid_t *owner, apr_status_t *rvp)
{
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, path, APR_FINFO_USER, p);

    if (rv != APR_SUCCESS && !(rv == APR_INCOMPLETE && (fi.valid & APR_FINFO_USER))) {
        *rvp = rv;
        return -1;
    }
    *owner = fi.user;
    return fi.user == uid;
}

/* Lexically inside dir: dir + "/" prefix and no ".." component. */
static int inside_dir(const char *path, const char *dir)
{
    size_t len = strlen(dir);
    const char *c;

    if (strncmp(path, dir, len) != 0 || (path[len] != '/' && strcmp(dir, "/") != 0)) {
        return 0;
    }
    for (c = path; (c = strstr(c, "..")) != NULL; c += 2) {
        if ((c == path || c[-1] == '/') && (c[2] == '\0' || c[2] == '/')) {
            return 0;
        }
    }
    return 1;
}

/*
 * An app configured by a tenant's .htaccess (dc->htaccess_file) runs as the
 * .htaccess owner, and only from that owner's app root and startup file: a
 * tenant cannot point its .htaccess (and with it its SetEnv) at another
 * tenant's app. Sets *run_as; an HTTP error when the app must not be served.
 */
static int check_tenant(request_rec *r, const ferry_dir_conf_t *dc,
                        const char *app_root, const char *startup_file,
                        const char **run_as)
{
    apr_uid_t uid = dc->htaccess_uid, other = 0;
    const char *owner = uid_name(r->pool, uid);
    const char *what = "app root", *path = app_root;
    apr_status_t rv = APR_SUCCESS;
    int ok;

    if (dc->htaccess_conflict != NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0015)
                      "Cannot serve the app configured by %s (owner %s, uid %ld): "
                      "%s, of another owner, configures it too",
                      dc->htaccess_file, owner, (long)uid, dc->htaccess_conflict);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (owner == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0016)
                      "Cannot serve the app configured by %s: its owner uid %ld "
                      "has no user name to run the app as", dc->htaccess_file,
                      (long)uid);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ok = owned_by(r->pool, app_root, uid, &other, &rv);
    if (ok == 1 && startup_file != NULL) {
        what = "startup file";
        path = startup_file[0] == '/' ? startup_file
               : apr_pstrcat(r->pool, app_root, "/", startup_file, NULL);
        ok = owned_by(r->pool, path, uid, &other, &rv);
        if (ok < 0 && APR_STATUS_IS_ENOENT(rv)) {
            ok = 1; /* the core reports a missing startup file */
        }
    }
    if (ok < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0017)
                      "Cannot serve the app configured by %s (owner %s, uid %ld): "
                      "cannot check the owner of its %s %s", dc->htaccess_file,
                      owner, (long)uid, what, path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ok == 0) {
        const char *other_name = uid_name(r->pool, other);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0014)
                      "Cannot serve the app configured by %s (owner %s, uid %ld): "
                      "its %s %s is owned by %s (uid %ld), not by the .htaccess "
                      "owner", dc->htaccess_file, owner, (long)uid, what, path,
                      other_name ? other_name : "no user", (long)other);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (dc->app_log_file != NULL && dc->app_log_file_htaccess) {
        path = dc->app_log_file[0] == '/' ? dc->app_log_file
               : apr_pstrcat(r->pool, app_root, "/", dc->app_log_file, NULL);
        if (!inside_dir(path, app_root)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0018)
                          "Cannot serve the app configured by %s (owner %s, uid "
                          "%ld): PassengerAppLogFile %s from an .htaccess must be "
                          "inside the app root %s", dc->htaccess_file, owner,
                          (long)uid, dc->app_log_file, app_root);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    *run_as = owner;
    return OK;
}

/*
 * The decision both hooks make: claim r for an app (OK, r->handler and
 * r->request_config set) or leave it to Apache (DECLINED), or an HTTP error
 * for a broken app config. dc is the config the decision reads.
 *
 * early: called from map_to_storage (PassengerHighPerformance), before
 * core's directory and file walk: r->finfo is what ferry_map_to_storage
 * stat()ed for the whole r->filename, r->path_info is unset, and a page-cache
 * hit only declines (the fixups hook then rewrites r->filename as usual).
 */
static int decide(request_rec *r, const ferry_dir_conf_t *dc, int early)
{
    const ferry_server_conf_t *sc = ferry_server_conf(r->server);
    ferry_app_t *app;
    const char *docroot, *base_uri, *public_dir, *app_root;
    const char *type = NULL, *startup_file = NULL, *start_command = NULL;
    const char *run_as = NULL;
    ferry_detect_t d;

    /* Step One: is Ferry wanted here at all? */
    if (dc == NULL || (dc->enabled_set && !dc->enabled) || r->main != NULL) {
        return DECLINED;
    }
    if (r->handler != NULL && strcmp(r->handler, FERRY_HANDLER_NAME) != 0) {
        return DECLINED; /* SetHandler/AddHandler: another module's request */
    }
    /* Existing files are served by Apache itself. */
    if (r->finfo.filetype == APR_REG && (r->path_info == NULL || *r->path_info == '\0')) {
        return DECLINED;
    }

    /* Step Two: document root, base URI, public dir, app root. */
    docroot = ap_document_root(r);
    if (docroot == NULL || *docroot == '\0') {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "ferry: no DocumentRoot for %s; declining", r->uri);
        return DECLINED;
    }
    docroot = strip_trailing_slashes(apr_pstrdup(r->pool, docroot));
    base_uri = match_base_uri(dc, r->uri ? r->uri : "");
    if (base_uri != NULL) {
        char resolved[PATH_MAX];
        public_dir = apr_pstrcat(r->pool, strcmp(docroot, "/") ? docroot : "",
                                 base_uri, NULL);
        if (realpath(public_dir, resolved) != NULL) {
            public_dir = apr_pstrdup(r->pool, resolved);
        }
    }
    else {
        public_dir = docroot;
    }
    app_root = dc->app_root ? dc->app_root : parent_dir(r->pool, public_dir);

    /* Step Three: the app type. */
    if (dc->app_start_command != NULL) {
        type = "generic";
        start_command = dc->app_start_command;
        startup_file = dc->startup_file;
    }
    else if (dc->app_type != NULL) {
        if (strcmp(dc->app_type, "node") == 0) {
            type = "node";
            startup_file = dc->startup_file ? dc->startup_file
                                            : FERRY_DEFAULT_STARTUP_FILE;
            /* Passenger needs PassengerAppRoot with PassengerAppType; Ferry
             * also takes the derived root, but only if the app is there. */
            if (dc->app_root == NULL) {
                apr_status_t rv = APR_SUCCESS;
                if (ferry_detect_probe(r->pool, app_root, startup_file, 0, &rv) <= 0) {
                    return DECLINED;
                }
            }
        }
        else if (strcmp(dc->app_type, "generic") == 0) {
            type = "generic";
            ferry_detect(r, app_root, NULL, &d);
            if (d.kind != FERRY_DETECT_GENERIC) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0007)
                              "Cannot start generic app %s: PassengerAppType "
                              "generic needs PassengerAppStartCommand (or "
                              "app_start_command in Passengerfile.json)", app_root);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            start_command = d.start_command;
        }
        else {
            return unsupported_type(r, app_root, dc->app_type);
        }
    }
    else {
        ferry_detect(r, app_root, dc->startup_file, &d);
        switch (d.kind) {
        case FERRY_DETECT_NODE:
            type = "node";
            startup_file = dc->startup_file ? dc->startup_file
                                            : FERRY_DEFAULT_STARTUP_FILE;
            break;
        case FERRY_DETECT_GENERIC:
            type = "generic";
            start_command = d.start_command;
            break;
        case FERRY_DETECT_EACCES:
            if (dc->app_root != NULL) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, d.rv, r, FERRY_LOGNO(0008)
                              "Cannot detect the app in %s: permission denied "
                              "(Apache's user must be able to search it)", app_root);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            return DECLINED;
        case FERRY_DETECT_OTHER:
        case FERRY_DETECT_NONE:
        default:
            return DECLINED; /* not a Node.js/generic app: Apache serves */
        }
    }

    /* Step Four: Passenger's page cache. */
    if (page_cache(r, !early)) {
        return DECLINED;
    }

    /* Step Five: an app set up by a tenant's .htaccess is that tenant's. */
    if (dc->htaccess_file != NULL) {
        int rc = check_tenant(r, dc, app_root, startup_file, &run_as);
        if (rc != OK) {
            return rc;
        }
    }

    /* Step Six: claim the request. */
    app = apr_pcalloc(r->pool, sizeof(*app));
    app->run_as = run_as;
    app->dc = dc;
    app->app_root = app_root;
    app->app_type = type;
    app->startup_file = startup_file;
    app->app_start_command = start_command;
    app->base_uri = base_uri ? base_uri : "";
    app->document_root = docroot;
    app->app_env = dc->app_env ? dc->app_env : FERRY_DEFAULT_APP_ENV;
    app->app_group_name = dc->app_group_name
        ? dc->app_group_name
        : apr_pstrcat(r->pool, app_root, " (", app->app_env, ")", NULL);
    app->show_version = sc->show_version_in_header_set ? sc->show_version_in_header : 1;
    app->server_timeout = r->server->timeout;
    app->claimed_early = early;
    ap_set_module_config(r->request_config, &ferry_module, app);
    r->handler = FERRY_HANDLER_NAME;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "ferry: %s -> %s app %s (group \"%s\", base URI \"%s\")%s",
                  r->uri, type, app_root, app->app_group_name, app->base_uri,
                  early ? " in map_to_storage (PassengerHighPerformance)" : "");
    return OK;
}

static ferry_app_t *request_state(request_rec *r)
{
    return ap_get_module_config(r->request_config, &ferry_module);
}

int ferry_map_fixups(request_rec *r)
{
    const ferry_app_t *app = request_state(r);

    /* Claimed in map_to_storage: the decision stands (core's walk did not
     * run, so nothing here is newer than what it saw). */
    if (app != NULL && app->claimed_early) {
        return DECLINED;
    }
    return decide(r, ferry_dir_conf(r), 0);
}

/*
 * PassengerHighPerformance (Passenger's prepareRequestWhenInHighPerformanceMode):
 * decide before core's map_to_storage, whose directory and file walk (and
 * with them <Directory>, <Files> and .htaccess) then never run for a claimed
 * request. r->per_dir_config is the server or VirtualHost config here: the
 * directive counts there only, as in Passenger. Unlike Passenger, the
 * decision also reads <Location> sections (PassengerEnabled off, another
 * PassengerAppRoot ...): the location walk Apache reruns after this hook
 * merges the same sections (its cache makes the second walk a no-op).
 * Anything not claimed (static files, page-cache hits, other modules'
 * requests, not an app) is DECLINED with r as it was and goes the usual way.
 */
int ferry_map_to_storage(request_rec *r)
{
    const ferry_dir_conf_t *dc = ferry_dir_conf(r);
    struct ap_conf_vector_t *server_conf = r->per_dir_config;
    apr_finfo_t saved;
    apr_status_t rv;
    int rc;

    if (dc == NULL || !dc->high_performance_set || !dc->high_performance) {
        return DECLINED;
    }
    /* A proxy:/redirect: filename, OPTIONS *, and TRACE (answered by
     * http_core's map_to_storage hook, per TraceEnable) stay Apache's;
     * decide() declines subrequests too, here before the stat. */
    if (r->main != NULL || r->method_number == M_TRACE || r->filename == NULL
        || r->filename[0] != '/' || r->uri == NULL || r->uri[0] != '/') {
        return DECLINED;
    }
    if (ap_location_walk(r) != OK) {
        r->per_dir_config = server_conf;
        return DECLINED; /* Apache's own location walk reports it */
    }
    /* Core's walk has not stat()ed the file yet: do it here. */
    saved = r->finfo;
    rv = apr_stat(&r->finfo, r->filename, APR_FINFO_MIN, r->pool);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        r->finfo.filetype = APR_NOFILE;
    }
    rc = decide(r, ferry_dir_conf(r), 1);
    if (rc == DECLINED) {
        /* As without the directive: core's walk merges <Directory> onto
         * the server config and stats the file again. */
        r->per_dir_config = server_conf;
        r->finfo = saved;
    }
    return rc;
}

int ferry_map_block_mod_dir(request_rec *r)
{
    ferry_app_t *app = request_state(r);

    if (app != NULL && r->finfo.filetype == APR_DIR) {
        r->finfo.filetype = APR_NOFILE;
        app->dir_blocked = 1;
    }
    return DECLINED;
}

int ferry_map_unblock_mod_dir(request_rec *r)
{
    ferry_app_t *app = request_state(r);

    if (app != NULL && app->dir_blocked) {
        r->finfo.filetype = APR_DIR;
        app->dir_blocked = 0;
    }
    return DECLINED;
}

const ferry_app_t *ferry_request_app(request_rec *r)
{
    const ferry_app_t *app = request_state(r);

    /* mod_rewrite (redirect-handler) or a later SetHandler takes over. */
    if (app == NULL || r->handler == NULL
        || strcmp(r->handler, FERRY_HANDLER_NAME) != 0) {
        return NULL;
    }
    return app;
}

/* ---- Knobs for the data path ---------------------------------------------- */

apr_interval_time_t ferry_app_read_timeout(request_rec *r, const ferry_app_t *app)
{
    if (app->dc->read_timeout != FERRY_UNSET) {
        return app->dc->read_timeout;
    }
    return r->server->timeout;
}

int ferry_app_buffer_response(const ferry_app_t *app)
{
    return app->dc->buffer_response_set && app->dc->buffer_response;
}

apr_interval_time_t ferry_app_ws_idle_timeout(const ferry_app_t *app)
{
    if (app->dc->ws_idle_timeout != FERRY_UNSET) {
        return app->dc->ws_idle_timeout;
    }
    return app->server_timeout;
}

int ferry_app_error_override(const ferry_app_t *app)
{
    return app->dc->error_override_set && app->dc->error_override;
}

int ferry_app_show_version(const ferry_app_t *app)
{
    return app->show_version;
}

/* ---- REQUEST_HEAD "app" and "env" (docs/protocol.md) ---------------------- */

static void put_str(ferry_opt_t *kv, int *n, const char *key, const char *s)
{
    if (s != NULL) {
        kv[*n].key = key;
        kv[*n].type = FERRY_OPT_STR;
        kv[*n].s = s;
        (*n)++;
    }
}

static void put_int(ferry_opt_t *kv, int *n, const char *key, long long v, int set)
{
    if (set) {
        kv[*n].key = key;
        kv[*n].type = FERRY_OPT_INT;
        kv[*n].i = v;
        (*n)++;
    }
}

static void put_bool(ferry_opt_t *kv, int *n, const char *key, int v, int set)
{
    if (set) {
        kv[*n].key = key;
        kv[*n].type = FERRY_OPT_BOOL;
        kv[*n].i = v;
        (*n)++;
    }
}

apr_size_t ferry_app_options(request_rec *r, const ferry_app_t *app,
                             const ferry_opt_t **optsp)
{
    const ferry_dir_conf_t *dc = app->dc;
    const ferry_server_conf_t *sc = ferry_server_conf(r->server);
    ferry_opt_t *kv = apr_pcalloc(r->pool, sizeof(*kv) * FERRY_APP_OPTIONS_MAX);
    int n = 0;

    put_str(kv, &n, "app_root", app->app_root);
    put_str(kv, &n, "app_group_name", app->app_group_name);
    put_str(kv, &n, "app_type", app->app_type);
    put_str(kv, &n, "startup_file", app->startup_file);
    put_str(kv, &n, "app_start_command", app->app_start_command);
    put_str(kv, &n, "app_env", dc->app_env);
    put_str(kv, &n, "nodejs", dc->nodejs);
    put_str(kv, &n, "base_uri", app->base_uri);
    put_str(kv, &n, "document_root", app->document_root);
    put_int(kv, &n, "min_instances", dc->min_instances, dc->min_instances != FERRY_UNSET);
    put_int(kv, &n, "max_instances_per_app", dc->max_instances_per_app,
            dc->max_instances_per_app != FERRY_UNSET);
    put_int(kv, &n, "max_requests", dc->max_requests, dc->max_requests != FERRY_UNSET);
    put_int(kv, &n, "max_request_queue_size", dc->max_request_queue_size,
            dc->max_request_queue_size != FERRY_UNSET);
    put_int(kv, &n, "force_max_concurrent_requests_per_process",
            dc->force_max_concurrent, dc->force_max_concurrent_set);
    put_int(kv, &n, "start_timeout", dc->start_timeout, dc->start_timeout != FERRY_UNSET);
    put_str(kv, &n, "restart_dir", dc->restart_dir);
    put_bool(kv, &n, "sticky_sessions", dc->sticky_sessions, dc->sticky_sessions_set);
    put_str(kv, &n, "sticky_sessions_cookie_name", dc->sticky_cookie_name);
    put_str(kv, &n, "sticky_sessions_cookie_attributes", dc->sticky_cookie_attributes);
    put_bool(kv, &n, "friendly_error_pages", dc->friendly_error_pages,
             dc->friendly_error_pages_set);
    /* A bound app runs as its .htaccess owner, whatever PassengerUser says. */
    put_str(kv, &n, "user", app->run_as ? app->run_as : dc->user);
    put_str(kv, &n, "group", dc->group);
    put_bool(kv, &n, "load_shell_envvars", dc->load_shell_envvars,
             dc->load_shell_envvars_set);
    put_int(kv, &n, "memory_limit", dc->memory_limit, dc->memory_limit != FERRY_UNSET);
    put_int(kv, &n, "max_request_time", dc->max_request_time,
            dc->max_request_time != FERRY_UNSET);
    put_int(kv, &n, "max_request_queue_time", dc->max_request_queue_time,
            dc->max_request_queue_time != FERRY_UNSET);
    put_str(kv, &n, "app_log_file", dc->app_log_file);
    put_str(kv, &n, "custom_error_page", dc->custom_error_page);
    put_int(kv, &n, "app_file_descriptor_ulimit", dc->app_fd_ulimit,
            dc->app_fd_ulimit != FERRY_UNSET);
    put_bool(kv, &n, "abort_websockets_on_process_shutdown", dc->abort_websockets,
             dc->abort_websockets_set);
    put_bool(kv, &n, "show_version_in_header", sc->show_version_in_header,
             sc->show_version_in_header_set);
    *optsp = kv;
    return (apr_size_t)n;
}

const char *ferry_app_option_str(const ferry_opt_t *opts, apr_size_t n,
                                 const char *key)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (opts[i].type == FERRY_OPT_STR && strcmp(opts[i].key, key) == 0) {
            return opts[i].s;
        }
    }
    return NULL;
}

/*
 * Which r->subprocess_env entries are the app's environment: variables set
 * for the app by SetEnv, SetEnvIf/BrowserMatch, PassEnv or mod_rewrite's
 * E= flag. Not passed: names that are not portable environment names
 * ([A-Za-z_][A-Za-z0-9_]*: this drops httpd's control variables such as
 * no-gzip, nokeepalive, downgrade-1.0), CGI request variables, and the
 * per-request ones other modules add (HTTP_*, HTTPS, SSL_*, REDIRECT_*,
 * UNIQUE_ID). PassengerEnvVar entries are added last and win.
 */
static int env_passes(const char *name)
{
    static const char *const cgi[] = {
        "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "CONTEXT_DOCUMENT_ROOT",
        "CONTEXT_PREFIX", "DOCUMENT_ROOT", "GATEWAY_INTERFACE", "HTTPS",
        "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR",
        "REMOTE_HOST", "REMOTE_IDENT", "REMOTE_PORT", "REMOTE_USER",
        "REQUEST_METHOD", "REQUEST_SCHEME", "REQUEST_URI", "SCRIPT_FILENAME",
        "SCRIPT_NAME", "SCRIPT_URI", "SCRIPT_URL", "SERVER_ADDR", "SERVER_ADMIN",
        "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SIGNATURE",
        "SERVER_SOFTWARE", "UNIQUE_ID", NULL
    };
    static const char *const prefixes[] = { "HTTP_", "SSL_", "REDIRECT_", NULL };
    const char *c;
    int i;

    if (!apr_isalpha(*name) && *name != '_') {
        return 0;
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_') {
            return 0;
        }
    }
    for (i = 0; cgi[i]; i++) {
        if (strcmp(name, cgi[i]) == 0) {
            return 0;
        }
    }
    for (i = 0; prefixes[i]; i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
            return 0;
        }
    }
    return 1;
}

apr_size_t ferry_app_env(request_rec *r, const ferry_app_t *app,
                         const char *const **envp)
{
    const apr_array_header_t *sub = apr_table_elts(r->subprocess_env);
    const apr_array_header_t *own = apr_table_elts(app->dc->env_vars);
    const apr_table_entry_t *se = (const apr_table_entry_t *)sub->elts;
    const apr_table_entry_t *oe = (const apr_table_entry_t *)own->elts;
    const char **env = apr_palloc(r->pool, sizeof(char *) * 2
                                  * ((apr_size_t)sub->nelts + own->nelts + 1));
    int i, n = 0;

    for (i = 0; i < sub->nelts; i++) {
        if (se[i].key && se[i].val && env_passes(se[i].key)
            && apr_table_get(app->dc->env_vars, se[i].key) == NULL) {
            env[2 * n] = se[i].key;
            env[2 * n + 1] = se[i].val;
            n++;
        }
    }
    for (i = 0; i < own->nelts; i++) {
        env[2 * n] = oe[i].key;
        env[2 * n + 1] = oe[i].val ? oe[i].val : "";
        n++;
    }
    *envp = env;
    return (apr_size_t)n;
}

/* r->notes keys: the URI and query before any translate_name rewrite. */
#define FERRY_NOTE_URI  "ferry-uri-before-rewrite"
#define FERRY_NOTE_ARGS "ferry-args-before-rewrite"

int ferry_map_translate_name(request_rec *r)
{
    apr_table_set(r->notes, FERRY_NOTE_URI, r->uri != NULL ? r->uri : "");
    apr_table_set(r->notes, FERRY_NOTE_ARGS, r->args != NULL ? r->args : "");
    return DECLINED;
}

/*
 * The request target the app sees: the client's own bytes (r->unparsed_uri,
 * so encoded characters arrive unchanged), unless a server-config
 * RewriteRule rewrote the path or the query in translate_name: then the
 * rewritten path, re-escaped, plus the rewritten query, as Passenger sends
 * (REQUEST_URI = escaped r->uri + "?" + r->args). An .htaccess rewrite is an
 * internal redirect, whose unparsed_uri is already the new URI.
 */
const char *ferry_map_app_uri(request_rec *r)
{
    const char *uri = apr_table_get(r->notes, FERRY_NOTE_URI);
    const char *args = apr_table_get(r->notes, FERRY_NOTE_ARGS);
    const char *path;

    if (uri == NULL || args == NULL || r->uri == NULL || r->uri[0] != '/') {
        return r->unparsed_uri;
    }
    if (strcmp(uri, r->uri) == 0
        && strcmp(args, r->args != NULL ? r->args : "") == 0) {
        return r->unparsed_uri;
    }
    path = ap_os_escape_path(r->pool, r->uri, 1);
    if (r->args == NULL || r->args[0] == '\0') {
        return path;
    }
    return apr_pstrcat(r->pool, path, "?", r->args, NULL);
}
