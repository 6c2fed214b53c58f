/*
 * ferry_config.c: every Passenger 6 directive (open source, Enterprise
 * placeholders, aliases and obsolete ones) plus Ferry's own, in Passenger's
 * contexts. docs/directives.md documents each one; test/unit/docs/
 * directives.test.ts checks that the two lists are the same.
 *
 * Contexts (Passenger's, docs/directives.md):
 *   G  RSRC_CONF: one process-wide value; inside <VirtualHost> a warning,
 *      and the value still applies to the whole server (as Passenger does).
 *   A  RSRC_CONF|ACCESS_CONF, not in <Files>, not in .htaccess.
 *   L  RSRC_CONF|ACCESS_CONF|OR_ALL: also .htaccess (AllowOverride All).
 *   AHT RSRC_CONF|ACCESS_CONF|OR_FILEINFO: an A directive hosting panels
 *      write into .htaccess (AllowOverride FileInfo or All); there it binds
 *      the app to the .htaccess owner (bind_htaccess, ferry_map.c).
 *
 * Directives that do not apply to Node.js/generic apps are accepted and
 * validated like Passenger does, then logged once per start with a one-line
 * notice (FERRY0001-0005); they never make the configuration fail.
 */

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_file_info.h"

#include "ferry_config.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* ---- Startup notices ------------------------------------------------------ */

enum {
    FERRY_NOTE_INERT = 1,     /* accepted, no effect for Node/generic apps */
    FERRY_NOTE_OBSOLETE,      /* obsolete in Passenger too */
    FERRY_NOTE_ALWAYS_ON,     /* an Enterprise feature Ferry always has */
    FERRY_NOTE_VHOST,         /* G directive inside <VirtualHost> */
    FERRY_NOTE_APP_TYPE       /* PassengerAppType of a language Ferry does not run */
};

typedef struct {
    const char *directive;
    const char *file;
    unsigned int line;
    int kind;
    const char *reason;
} ferry_notice_t;

/* Notices collected while the startup configuration is parsed; reset by
 * pre_config on every pass (the array lives in pconf). */
static apr_array_header_t *ferry_notices;

static apr_status_t notices_cleanup(void *unused)
{
    (void)unused;
    ferry_notices = NULL;
    return APR_SUCCESS;
}

static void add_notice(cmd_parms *cmd, int kind, const char *reason)
{
    ferry_notice_t *n;
    int i;

    /* .htaccess files are parsed per request in the children: no notices. */
    if (ferry_notices == NULL
        || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_RUN_MPM) {
        return;
    }
    for (i = 0; i < ferry_notices->nelts; i++) {
        n = &APR_ARRAY_IDX(ferry_notices, i, ferry_notice_t);
        if (n->kind == kind && strcasecmp(n->directive, cmd->cmd->name) == 0) {
            return; /* once per directive */
        }
    }
    n = apr_array_push(ferry_notices);
    n->directive = cmd->cmd->name;
    n->file = cmd->directive ? cmd->directive->filename : "-";
    n->line = cmd->directive ? cmd->directive->line_num : 0;
    n->kind = kind;
    n->reason = reason;
}

static void log_notices(server_rec *s)
{
    int i;

    if (ferry_notices == NULL) {
        return;
    }
    for (i = 0; i < ferry_notices->nelts; i++) {
        const ferry_notice_t *n = &APR_ARRAY_IDX(ferry_notices, i, ferry_notice_t);
        switch (n->kind) {
        case FERRY_NOTE_INERT:
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0001)
                         "%s (%s:%u) is accepted for compatibility and has no "
                         "effect: %s", n->directive, n->file, n->line, n->reason);
            break;
        case FERRY_NOTE_OBSOLETE:
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FERRY_LOGNO(0002)
                         "%s (%s:%u) is obsolete and ignored: %s; please remove "
                         "it", n->directive, n->file, n->line, n->reason);
            break;
        case FERRY_NOTE_ALWAYS_ON:
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0003)
                         "%s (%s:%u) is accepted: %s", n->directive, n->file,
                         n->line, n->reason);
            break;
        case FERRY_NOTE_VHOST:
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FERRY_LOGNO(0004)
                         "%s (%s:%u) is a server-wide directive: inside "
                         "<VirtualHost> it still applies to the whole server",
                         n->directive, n->file, n->line);
            break;
        case FERRY_NOTE_APP_TYPE:
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0005)
                         "%s %s (%s:%u): Ferry runs Node.js and generic "
                         "(PassengerAppStartCommand) apps only; requests for "
                         "this app are answered with 500", n->directive,
                         n->reason, n->file, n->line);
            break;
        }
    }
}

int ferry_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    ferry_notices = apr_array_make(pconf, 8, sizeof(ferry_notice_t));
    apr_pool_cleanup_register(pconf, NULL, notices_cleanup, apr_pool_cleanup_null);
    return OK;
}

int ferry_config_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    /* `apachectl configtest` never reaches post_config: report here. */
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        log_notices(s);
    }
    /* Peers authenticate forwarded requests with the shared secret. */
    if (ferry_server_conf(s)->affinity_redis != NULL
        && ferry_server_conf(s)->affinity_secret_file == NULL) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, FERRY_LOGNO(0013)
                     "PassengerAffinitySecretFile is required when "
                     "PassengerAffinityRedis is set");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

int ferry_config_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    /* Once per start: skip the preflight pass, log on the real one. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        log_notices(s);
    }
    return OK;
}

/* ---- Create / merge ------------------------------------------------------- */

void *ferry_create_server_conf(apr_pool_t *p, server_rec *s)
{
    ferry_server_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->log_level = FERRY_UNSET;
    c->socket_backlog = FERRY_UNSET;
    c->response_watermark = FERRY_UNSET;
    c->max_pool_size = FERRY_UNSET;
    c->pool_idle_time = FERRY_UNSET;
    c->max_instances_per_app = FERRY_UNSET;
    c->stat_throttle_rate = FERRY_UNSET;
    c->redeploy_on_graceful = FERRY_REDEPLOY_UNSET;
    c->prestart = apr_array_make(p, 2, sizeof(const char *));
    c->affinity_ttl = FERRY_UNSET;
    c->health_check_interval = FERRY_UNSET;
    c->health_check_timeout = FERRY_UNSET;
    c->health_check_failures = FERRY_UNSET;
    c->health_check_event_loop_timeout = FERRY_UNSET;
    c->affinity_redis_timeout = FERRY_UNSET;
    return c;
}

/* Server-wide values are process-wide (Passenger): a virtual host gets a copy
 * of the main server's struct, which every G setter writes. */
void *ferry_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    ferry_server_conf_t *c = apr_palloc(p, sizeof(*c));

    (void)addv;
    memcpy(c, basev, sizeof(*c));
    return c;
}

void *ferry_create_dir_conf(apr_pool_t *p, char *dir)
{
    ferry_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void)dir;
    c->max_request_time = FERRY_UNSET;
    c->max_request_queue_time = FERRY_UNSET;
    c->read_timeout = FERRY_UNSET;
    c->ws_idle_timeout = FERRY_UNSET;
    c->base_uris = apr_array_make(p, 1, sizeof(const char *));
    c->env_vars = apr_table_make(p, 2);
    c->min_instances = FERRY_UNSET;
    c->max_instances_per_app = FERRY_UNSET;
    c->max_requests = FERRY_UNSET;
    c->max_request_queue_size = FERRY_UNSET;
    c->start_timeout = FERRY_UNSET;
    c->memory_limit = FERRY_UNSET;
    c->app_fd_ulimit = FERRY_UNSET;
    return c;
}

#define MERGE_PTR(f)  new->f = (add->f != NULL) ? add->f : base->f
#define MERGE_INT(f)  new->f = (add->f != FERRY_UNSET) ? add->f : base->f
#define MERGE_FLAG(f) do { \
        new->f = add->f##_set ? add->f : base->f; \
        new->f##_set = add->f##_set || base->f##_set; \
    } while (0)

static int env_overlay(void *rec, const char *key, const char *value)
{
    apr_table_set((apr_table_t *)rec, key, value);
    return 1;
}

void *ferry_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ferry_dir_conf_t *base = basev;
    const ferry_dir_conf_t *add = addv;
    ferry_dir_conf_t *new = apr_pcalloc(p, sizeof(*new));

    MERGE_FLAG(enabled);
    MERGE_FLAG(error_override);
    MERGE_FLAG(buffer_response);
    MERGE_FLAG(sticky_sessions);
    MERGE_FLAG(abort_websockets);
    MERGE_FLAG(high_performance);
    MERGE_PTR(sticky_cookie_name);
    MERGE_PTR(sticky_cookie_attributes);
    MERGE_INT(max_request_time);
    MERGE_INT(max_request_queue_time);
    MERGE_INT(read_timeout);
    MERGE_INT(ws_idle_timeout);

    MERGE_PTR(app_root);
    MERGE_PTR(app_type);
    MERGE_PTR(app_start_command);
    MERGE_PTR(startup_file);
    MERGE_PTR(app_env);
    MERGE_PTR(nodejs);
    MERGE_PTR(app_group_name);
    MERGE_PTR(user);
    MERGE_PTR(group);
    MERGE_PTR(restart_dir);
    MERGE_PTR(app_log_file);
    MERGE_PTR(custom_error_page);
    MERGE_INT(min_instances);
    MERGE_INT(max_instances_per_app);
    MERGE_INT(max_requests);
    MERGE_INT(max_request_queue_size);
    MERGE_FLAG(force_max_concurrent);
    MERGE_INT(start_timeout);
    MERGE_INT(memory_limit);
    MERGE_INT(app_fd_ulimit);
    MERGE_FLAG(friendly_error_pages);
    MERGE_FLAG(load_shell_envvars);

    /* Tenant binding: the innermost binding .htaccess; two of them with
     * different owners is a conflict the mapping refuses. */
    if (add->htaccess_file != NULL) {
        new->htaccess_file = add->htaccess_file;
        new->htaccess_uid = add->htaccess_uid;
        new->htaccess_conflict = add->htaccess_conflict ? add->htaccess_conflict
                                                        : base->htaccess_conflict;
        if (new->htaccess_conflict == NULL && base->htaccess_file != NULL
            && base->htaccess_uid != add->htaccess_uid) {
            new->htaccess_conflict = base->htaccess_file;
        }
    }
    else {
        new->htaccess_file = base->htaccess_file;
        new->htaccess_uid = base->htaccess_uid;
        new->htaccess_conflict = base->htaccess_conflict;
    }
    new->app_log_file_htaccess = add->app_log_file ? add->app_log_file_htaccess
                                                   : base->app_log_file_htaccess;

    /* Sets, as Passenger merges them: the union, outer ones first. */
    new->base_uris = apr_array_append(p, base->base_uris, add->base_uris);
    new->env_vars = apr_table_copy(p, base->env_vars);
    apr_table_do(env_overlay, new->env_vars, add->env_vars, NULL);
    return new;
}

/* ---- Value parsing -------------------------------------------------------- */

/* Describes the field a generic setter writes (passed as cmd->info). */
typedef struct {
    apr_size_t off;       /* offsetof the value */
    apr_size_t set_off;   /* offsetof the _set bit (flags), or 0 = none */
    int min;
    int max;              /* INT_MAX: no upper bound */
    int app_only;         /* A context: refuse inside <Files> */
} ferry_field_t;

#define FIELD(type, f, min, max, app) \
    { offsetof(type, f), 0, (min), (max), (app) }
#define FLAG_FIELD(type, f, app) \
    { offsetof(type, f), offsetof(type, f##_set), 0, 1, (app) }

static const char *int_error(cmd_parms *cmd, const ferry_field_t *fd)
{
    if (fd->max == INT_MAX) {
        return apr_psprintf(cmd->pool, "%s must be an integer >= %d",
                            cmd->cmd->name, fd->min);
    }
    return apr_psprintf(cmd->pool, "%s must be an integer %d-%d",
                        cmd->cmd->name, fd->min, fd->max);
}

static const char *parse_int(cmd_parms *cmd, const ferry_field_t *fd,
                             const char *arg, int *out)
{
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || errno != 0 || v < fd->min || v > fd->max) {
        return int_error(cmd, fd);
    }
    *out = (int)v;
    return NULL;
}

/* A duration: seconds, or a number with a unit (ms, s, min, h) as httpd's
 * own timeouts take (ap_timeout_parameter_parse). */
static const char *parse_interval(cmd_parms *cmd, const ferry_field_t *fd,
                                  const char *arg, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (*arg == '-' || ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < apr_time_from_sec(fd->min)
        || (fd->max != INT_MAX && t > apr_time_from_sec(fd->max))) {
        if (fd->max == INT_MAX) {
            return apr_psprintf(cmd->pool, "%s must be a duration >= %d s "
                                "(seconds, or with a unit: 500ms, 90s, 5min, 1h)",
                                cmd->cmd->name, fd->min);
        }
        return apr_psprintf(cmd->pool, "%s must be a duration %d-%d s "
                            "(seconds, or with a unit: 500ms, 90s, 5min, 1h)",
                            cmd->cmd->name, fd->min, fd->max);
    }
    *out = t;
    return NULL;
}

/* Whole seconds for the core (rounded up, so "500ms" is not 0 = "never"). */
static const char *parse_seconds(cmd_parms *cmd, const ferry_field_t *fd,
                                 const char *arg, int *out)
{
    apr_interval_time_t t;
    const char *err = parse_interval(cmd, fd, arg, &t);

    if (err == NULL) {
        *out = (int)((t + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    }
    return err;
}

/* ---- Context checks ------------------------------------------------------- */

/* G: one value per process. In a <VirtualHost>, warn (once) and apply it
 * to the whole server like Passenger. */
static ferry_server_conf_t *global_conf(cmd_parms *cmd)
{
    server_rec *main_server = ap_server_conf ? ap_server_conf : cmd->server;

    if (ap_check_cmd_context(cmd, GLOBAL_ONLY) != NULL) {
        add_notice(cmd, FERRY_NOTE_VHOST, NULL);
    }
    return ap_get_module_config(main_server->module_config, &ferry_module);
}

static const char *check_app_context(cmd_parms *cmd, int app_only)
{
    return app_only ? ap_check_cmd_context(cmd, NOT_IN_FILES) : NULL;
}

/* The directive is read from an .htaccess: the main config always parses
 * with RSRC_CONF or ACCESS_CONF in cmd->override, an .htaccess only with its
 * AllowOverride bits. */
static int from_htaccess(const cmd_parms *cmd)
{
    return (cmd->override & (RSRC_CONF | ACCESS_CONF)) == 0;
}

/*
 * A per-app directive read from an .htaccess binds the app to the file's
 * owner unless that is root:
 * ferry_map.c then requires the app root and startup file to be the owner's
 * and runs the app as the owner (docs/security.md, ".htaccess").
 */
static const char *bind_htaccess(cmd_parms *cmd, ferry_dir_conf_t *dc)
{
    const char *file;
    apr_finfo_t fi;
    apr_status_t rv;

    if (!from_htaccess(cmd)) {
        return NULL;
    }
    file = cmd->config_file != NULL ? cmd->config_file->name : NULL;
    if (file == NULL) {
        return apr_psprintf(cmd->pool, "Cannot check the owner of the .htaccess "
                            "that sets %s: its file name is unknown", cmd->cmd->name);
    }
    rv = apr_stat(&fi, file, APR_FINFO_USER, cmd->temp_pool);
    if (rv != APR_SUCCESS && !(rv == APR_INCOMPLETE && (fi.valid & APR_FINFO_USER))) {
        return apr_psprintf(cmd->pool, "Cannot check the owner of %s, which "
                            "sets %s: %pm", file, cmd->cmd->name, &rv);
    }
    if (fi.user != 0) {
        dc->htaccess_file = apr_pstrdup(cmd->pool, file);
        dc->htaccess_uid = fi.user;
    }
    return NULL;
}

/* ---- Generic setters ------------------------------------------------------ */

static const char *set_dir_str(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    const char *err = check_app_context(cmd, fd->app_only);

    if (err != NULL) {
        return err;
    }
    if (*arg == '\0') {
        return apr_psprintf(cmd->pool, "%s must not be empty", cmd->cmd->name);
    }
    if (fd->app_only && (err = bind_htaccess(cmd, cfg)) != NULL) {
        return err;
    }
    *(const char **)((char *)cfg + fd->off) = arg;
    return NULL;
}

/* PassengerAppLogFile: from an .htaccess it must stay inside the app root
 * (checked when the request is mapped, ferry_map.c). */
static const char *set_app_log_file(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_dir_conf_t *dc = cfg;
    const char *err = set_dir_str(cmd, cfg, arg);

    if (err == NULL) {
        dc->app_log_file_htaccess = from_htaccess(cmd);
    }
    return err;
}

/* PassengerCustomErrorPage: an HTML file (relative to ServerRoot) served
 * instead of Ferry's own error page when friendly error pages are off. Not
 * allowed in .htaccess (scope A): the core reads it. */
static const char *set_custom_error_page(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (path == NULL || *arg == '\0') {
        return apr_psprintf(cmd->pool, "%s: invalid path \"%s\"", cmd->cmd->name, arg);
    }
    return set_dir_str(cmd, cfg, path);
}

static const char *set_dir_int(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    const char *err = check_app_context(cmd, fd->app_only);

    if (err != NULL) {
        return err;
    }
    err = parse_int(cmd, fd, arg, (int *)((char *)cfg + fd->off));
    if (err == NULL && fd->set_off != 0) {
        *(int *)((char *)cfg + fd->set_off) = 1;
    }
    return err;
}

static const char *set_dir_seconds(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    const char *err = check_app_context(cmd, fd->app_only);

    if (err != NULL) {
        return err;
    }
    return parse_seconds(cmd, fd, arg, (int *)((char *)cfg + fd->off));
}

static const char *set_dir_interval(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    const char *err = check_app_context(cmd, fd->app_only);

    if (err != NULL) {
        return err;
    }
    return parse_interval(cmd, fd, arg,
                          (apr_interval_time_t *)((char *)cfg + fd->off));
}

static const char *set_dir_flag(cmd_parms *cmd, void *cfg, int on)
{
    const ferry_field_t *fd = cmd->info;
    const char *err = check_app_context(cmd, fd->app_only);

    if (err != NULL) {
        return err;
    }
    *(int *)((char *)cfg + fd->off) = on ? 1 : 0;
    *(int *)((char *)cfg + fd->set_off) = 1;
    return NULL;
}

/* A directory path, relative to ServerRoot unless absolute. */
static const char *set_srv_dir(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    ferry_server_conf_t *sc = global_conf(cmd);
    const char *path;

    (void)cfg;
    path = *arg ? ap_server_root_relative(cmd->pool, arg) : NULL;
    if (path == NULL) {
        return apr_psprintf(cmd->pool, "%s must be a directory path",
                            cmd->cmd->name);
    }
    *(const char **)((char *)sc + fd->off) = path;
    return NULL;
}

static const char *set_srv_str(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    if (*arg == '\0') {
        return apr_psprintf(cmd->pool, "%s must not be empty", cmd->cmd->name);
    }
    *(const char **)((char *)sc + fd->off) = arg;
    return NULL;
}

static const char *set_srv_int(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    return parse_int(cmd, fd, arg, (int *)((char *)sc + fd->off));
}

static const char *set_srv_seconds(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_field_t *fd = cmd->info;
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    return parse_seconds(cmd, fd, arg, (int *)((char *)sc + fd->off));
}

static const char *set_srv_flag(cmd_parms *cmd, void *cfg, int on)
{
    const ferry_field_t *fd = cmd->info;
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    *(int *)((char *)sc + fd->off) = on ? 1 : 0;
    *(int *)((char *)sc + fd->set_off) = 1;
    return NULL;
}

/* ---- Accepted, inert directives ------------------------------------------- */

/* Describes a directive Ferry accepts without acting on it. */
typedef struct {
    int kind;                   /* FERRY_NOTE_* */
    const char *reason;         /* the rest of the notice line */
    int global;                 /* G context */
    int app_only;               /* A context: refuse inside <Files> */
    int is_int;                 /* validate as an integer >= min */
    int min;
    const char *const *values;  /* accepted values (TAKE1), NULL = any */
} ferry_inert_t;

static const char *inert_common(cmd_parms *cmd, const ferry_inert_t *in)
{
    const char *err;

    if (in->global) {
        (void)global_conf(cmd);
    }
    else if ((err = check_app_context(cmd, in->app_only)) != NULL) {
        return err;
    }
    add_notice(cmd, in->kind, in->reason);
    return NULL;
}

static const char *set_inert_take1(cmd_parms *cmd, void *cfg, const char *arg)
{
    const ferry_inert_t *in = cmd->info;

    (void)cfg;
    if (in->is_int) {
        ferry_field_t fd = { 0, 0, in->min, INT_MAX, 0 };
        int v;
        const char *err = parse_int(cmd, &fd, arg, &v);
        if (err != NULL) {
            return err;
        }
    }
    if (in->values != NULL) {
        const char *const *v;
        const char *list = NULL;
        for (v = in->values; *v != NULL; v++) {
            if (strcasecmp(arg, *v) == 0) {
                break;
            }
            list = list ? apr_pstrcat(cmd->pool, list, ", ", *v, NULL) : *v;
        }
        if (*v == NULL) {
            return apr_psprintf(cmd->pool, "%s must be one of: %s",
                                cmd->cmd->name, list);
        }
    }
    return inert_common(cmd, in);
}

static const char *set_inert_take2(cmd_parms *cmd, void *cfg, const char *a1,
                                   const char *a2)
{
    (void)cfg;
    (void)a1;
    (void)a2;
    return inert_common(cmd, cmd->info);
}

static const char *set_inert_flag(cmd_parms *cmd, void *cfg, int on)
{
    (void)cfg;
    (void)on;
    return inert_common(cmd, cmd->info);
}

/* ---- Special setters ------------------------------------------------------ */

/*
 * PassengerHighPerformance: read in the map_to_storage hook
 * (ferry_map_to_storage), where r->per_dir_config is still the server or
 * VirtualHost config, as in Passenger. Inside <Directory>, <Location> or
 * <Files> it is accepted and has no effect: say so once at start (an
 * .htaccess is parsed per request, where add_notice stays quiet).
 */
static const char *set_high_performance(cmd_parms *cmd, void *cfg, int on)
{
    const char *err = set_dir_flag(cmd, cfg, on);

    if (err == NULL && cmd->path != NULL) {
        add_notice(cmd, FERRY_NOTE_INERT,
                   "inside <Directory>, <Location>, <Files> or .htaccess; it "
                   "takes effect in the server config and <VirtualHost>");
    }
    return err;
}

/* PassengerBaseURI (RailsBaseURI, RackBaseURI): repeatable. */
static const char *set_base_uri(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_dir_conf_t *dc = cfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_FILES);
    size_t len = strlen(arg);

    if (err != NULL) {
        return err;
    }
    if (len == 0) {
        return apr_psprintf(cmd->pool, "%s must not be empty (a URL path "
                            "such as /app)", cmd->cmd->name);
    }
    if (arg[0] != '/') {
        return apr_psprintf(cmd->pool, "%s must start with a slash (/), "
                            "e.g. /app", cmd->cmd->name);
    }
    if (len > 1 && arg[len - 1] == '/') {
        return apr_psprintf(cmd->pool, "%s must not end with a slash (/), "
                            "e.g. /app", cmd->cmd->name);
    }
    if ((err = bind_htaccess(cmd, dc)) != NULL) {
        return err;
    }
    APR_ARRAY_PUSH(dc->base_uris, const char *) = arg;
    return NULL;
}

/* PassengerAppRoot: an absolute path (relative ones are taken from
 * ServerRoot, like httpd's own paths), without a trailing slash. */
static const char *set_app_root(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_dir_conf_t *dc = cfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_FILES);
    char *root;
    size_t len;

    if (err != NULL) {
        return err;
    }
    root = ap_server_root_relative(cmd->pool, arg);
    if (*arg == '\0' || root == NULL) {
        return apr_psprintf(cmd->pool, "%s must be a directory path", cmd->cmd->name);
    }
    if ((err = bind_htaccess(cmd, dc)) != NULL) {
        return err;
    }
    len = strlen(root);
    while (len > 1 && root[len - 1] == '/') {
        root[--len] = '\0';
    }
    dc->app_root = root;
    return NULL;
}

/* PassengerAppType: node|nodejs|generic run; Passenger's other languages
 * are accepted (so existing configs load) and answered with 500. */
static const char *set_app_type(cmd_parms *cmd, void *cfg, const char *arg)
{
    static const struct { const char *name; const char *type; } types[] = {
        { "node", "node" }, { "nodejs", "node" }, { "generic", "generic" },
        { "rack", "ruby" }, { "ruby", "ruby" }, { "wsgi", "python" },
        { "python", "python" }, { "meteor", "meteor" }
    };
    ferry_dir_conf_t *dc = cfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_FILES);
    size_t i;

    if (err != NULL) {
        return err;
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcasecmp(arg, types[i].name) == 0) {
            if ((err = bind_htaccess(cmd, dc)) != NULL) {
                return err;
            }
            dc->app_type = types[i].type;
            if (strcmp(types[i].type, "node") != 0
                && strcmp(types[i].type, "generic") != 0) {
                add_notice(cmd, FERRY_NOTE_APP_TYPE,
                           apr_pstrdup(cmd->pool, arg));
            }
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "%s must be node, nodejs or generic "
                        "(Passenger's rack, ruby, wsgi, python and meteor are "
                        "accepted but not run by Ferry)", cmd->cmd->name);
}

/* PassengerEnvVar NAME VALUE (nginx's passenger_env_var). */
static const char *set_env_var(cmd_parms *cmd, void *cfg, const char *name,
                               const char *value)
{
    ferry_dir_conf_t *dc = cfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_FILES);
    const char *c;

    if (err != NULL) {
        return err;
    }
    if (!apr_isalpha(*name) && *name != '_') {
        return apr_psprintf(cmd->pool, "%s: variable name '%s' must start "
                            "with a letter or _", cmd->cmd->name, name);
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_') {
            return apr_psprintf(cmd->pool, "%s: variable name '%s' may only "
                                "contain letters, digits and _",
                                cmd->cmd->name, name);
        }
    }
    apr_table_set(dc->env_vars, name, value);
    return NULL;
}

/* PassengerStickySessionsCookieName: a cookie name token. */
static const char *set_cookie_name(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_dir_conf_t *dc = cfg;
    const char *c;

    if (*arg == '\0') {
        return apr_psprintf(cmd->pool, "%s must not be empty", cmd->cmd->name);
    }
    for (c = arg; *c; c++) {
        if (!apr_isgraph(*c) || strchr("()<>@,;:\\\"/[]?={}", *c) != NULL) {
            return apr_psprintf(cmd->pool, "%s must be a cookie name (letters, "
                                "digits and !#$%%&'*+-.^_`|~)", cmd->cmd->name);
        }
    }
    dc->sticky_cookie_name = arg;
    return NULL;
}

/* PassengerMaxInstancesPerApp (RailsMaxInstancesPerApp) and the Enterprise
 * PassengerMaxInstances: per app; in the main server also the server-wide
 * default the core applies (Passenger 6 made it global). */
static const char *set_max_instances(cmd_parms *cmd, void *cfg, const char *arg)
{
    static const ferry_field_t fd = FIELD(ferry_dir_conf_t, max_instances_per_app,
                                          0, 10000, 1);
    ferry_dir_conf_t *dc = cfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_FILES);

    if (err != NULL) {
        return err;
    }
    err = parse_int(cmd, &fd, arg, &dc->max_instances_per_app);
    if (err == NULL && cmd->path == NULL && !cmd->server->is_virtual) {
        ferry_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                       &ferry_module);
        sc->max_instances_per_app = dc->max_instances_per_app;
    }
    return err;
}

/* PassengerPreStart URL: repeatable. */
static const char *set_prestart(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);
    size_t skip = strncasecmp(arg, "http://", 7) == 0 ? 7
                  : strncasecmp(arg, "https://", 8) == 0 ? 8 : 0;

    (void)cfg;
    if (skip == 0 || arg[skip] == '\0' || arg[skip] == '/' || strpbrk(arg, " \t") != NULL) {
        return apr_psprintf(cmd->pool, "%s must be an http:// or https:// URL",
                            cmd->cmd->name);
    }
    APR_ARRAY_PUSH(sc->prestart, const char *) = arg;
    return NULL;
}

/* PassengerAffinityRedis redis://host:port/db | rediss://… | unix:/path. */
static const char *set_affinity_redis(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);
    size_t skip = strncasecmp(arg, "redis://", 8) == 0 ? 8
                  : strncasecmp(arg, "rediss://", 9) == 0 ? 9 : 0;

    (void)cfg;
    if (strncasecmp(arg, "unix:/", 6) == 0) {
        skip = 5;
    }
    if (skip == 0 || arg[skip] == '\0' || strpbrk(arg, " \t") != NULL) {
        return apr_psprintf(cmd->pool, "%s must be redis://host:port/db, "
                            "rediss://host:port/db or unix:/path", cmd->cmd->name);
    }
    sc->affinity_redis = arg;
    return NULL;
}

/* ADDR:PORT (IPv6 as [ADDR]:PORT); a bare PORT too when bare_port is set. */
static const char *check_listen(cmd_parms *cmd, const char *arg, int bare_port)
{
    const char *colon = strrchr(arg, ':');
    const char *digits = colon ? colon + 1 : arg;
    char *end = NULL;
    long port;

    if ((colon == NULL && !bare_port) || colon == arg || strpbrk(arg, " \t") != NULL) {
        return apr_psprintf(cmd->pool, "%s must be ADDR:PORT", cmd->cmd->name);
    }
    port = strtol(digits, &end, 10);
    if (digits[0] == '\0' || end == NULL || *end != '\0' || port < 0 || port > 65535) {
        return apr_psprintf(cmd->pool, "%s must be ADDR:PORT with a port 0-65535",
                            cmd->cmd->name);
    }
    return NULL;
}

/* PassengerAffinityListen ADDR:PORT. */
static const char *set_affinity_listen(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);
    const char *err = check_listen(cmd, arg, 0);

    (void)cfg;
    if (err == NULL) {
        sc->affinity_listen = arg;
    }
    return err;
}

/* PassengerLogFormat text|json: how the core writes its log lines. */
static const char *set_log_format(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    if (ap_cstr_casecmp(arg, "text") != 0 && ap_cstr_casecmp(arg, "json") != 0) {
        return apr_psprintf(cmd->pool, "%s must be text or json", cmd->cmd->name);
    }
    sc->log_format = ap_cstr_casecmp(arg, "json") == 0 ? "json" : "text";
    return NULL;
}

/* PassengerHealthCheckPath /path: the HTTP health check of every app process. */
static const char *set_health_check_path(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    if (arg[0] != '/' || strpbrk(arg, " \t\r\n") != NULL) {
        return apr_psprintf(cmd->pool, "%s must be a path starting with /", cmd->cmd->name);
    }
    sc->health_check_path = arg;
    return NULL;
}

/* PassengerMetricsListen ADDR:PORT (or PORT = 127.0.0.1:PORT): Prometheus /metrics. */
static const char *set_metrics_listen(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);
    const char *err = check_listen(cmd, arg, 1);

    (void)cfg;
    if (err == NULL) {
        sc->metrics_listen = arg;
    }
    return err;
}

/* PassengerRedeployOnGraceful all|changed|off. */
static const char *set_redeploy(cmd_parms *cmd, void *cfg, const char *arg)
{
    ferry_server_conf_t *sc = global_conf(cmd);

    (void)cfg;
    if (strcasecmp(arg, "all") == 0) {
        sc->redeploy_on_graceful = FERRY_REDEPLOY_ALL;
    }
    else if (strcasecmp(arg, "changed") == 0) {
        sc->redeploy_on_graceful = FERRY_REDEPLOY_CHANGED;
    }
    else if (strcasecmp(arg, "off") == 0) {
        sc->redeploy_on_graceful = FERRY_REDEPLOY_OFF;
    }
    else {
        return apr_psprintf(cmd->pool, "%s must be all, changed or off",
                            cmd->cmd->name);
    }
    return NULL;
}

/* ---- Field and notice descriptors ----------------------------------------- */

#define SF(f, min, max) static const ferry_field_t sf_##f = FIELD(ferry_server_conf_t, f, min, max, 0)
#define SB(f) static const ferry_field_t sf_##f = FLAG_FIELD(ferry_server_conf_t, f, 0)
#define DF(f, min, max, app) static const ferry_field_t df_##f = FIELD(ferry_dir_conf_t, f, min, max, app)
#define DB(f, app) static const ferry_field_t df_##f = FLAG_FIELD(ferry_dir_conf_t, f, app)

#define FERRY_MAX_SECONDS 31536000 /* one year */
/* Per-request and start deadlines: the longest a Node timer waits (2^31-1 ms);
 * the core checks the same (MAX_TIMER_SECONDS in core/src/config/schema.ts). */
#define FERRY_MAX_TIMER_SECONDS 2147483
/* PassengerMemoryLimit, MB: 1 TiB (MAX_MEMORY_LIMIT_MB in the core). */
#define FERRY_MAX_MEMORY_MB 1048576

SF(root, 0, 0);
SF(instance_registry_dir, 0, 0);
SF(log_file, 0, 0);
SF(default_user, 0, 0);
SF(default_group, 0, 0);
SF(admin_group, 0, 0);
SF(log_level, 0, 7);
SF(socket_backlog, 1, 65535);
SF(response_watermark, 0, 1073741824);
SF(data_buffer_dir, 0, 0);
SF(max_pool_size, 1, 10000);
SF(pool_idle_time, 0, FERRY_MAX_SECONDS);
SF(stat_throttle_rate, 0, 86400);
SB(user_switching);
SB(show_version_in_header);
SF(affinity_node_name, 0, 0);
SF(affinity_secret_file, 0, 0);
SF(affinity_ttl, 1, FERRY_MAX_SECONDS);
SF(health_check_interval, 1, 86400);
SF(health_check_timeout, 1, 3600);
SF(health_check_failures, 1, 1000);
SF(health_check_event_loop_timeout, 0, 86400);
SF(affinity_redis_timeout, 1, 60000);
SF(affinity_tls_cert_file, 0, 0);
SF(affinity_tls_key_file, 0, 0);
SF(affinity_tls_ca_file, 0, 0);

DB(enabled, 0);
DB(error_override, 0);
DB(buffer_response, 0);
DB(sticky_sessions, 0);
DB(abort_websockets, 0);
DB(high_performance, 0);
DF(sticky_cookie_attributes, 0, 0, 0);
DF(max_request_time, 0, FERRY_MAX_TIMER_SECONDS, 0);
DF(max_request_queue_time, 0, FERRY_MAX_TIMER_SECONDS, 0);
DF(read_timeout, 1, FERRY_MAX_SECONDS, 0);
DF(ws_idle_timeout, 1, FERRY_MAX_SECONDS, 0);

DF(app_start_command, 0, 0, 1);
DF(startup_file, 0, 0, 1);
DF(app_env, 0, 0, 1);
DF(nodejs, 0, 0, 1);
DF(app_group_name, 0, 0, 1);
DF(user, 0, 0, 1);
DF(group, 0, 0, 1);
DF(restart_dir, 0, 0, 1);
DF(app_log_file, 0, 0, 1);
DF(custom_error_page, 0, 0, 0);
DF(min_instances, 0, 10000, 1);
DF(max_requests, 0, INT_MAX, 1);
DF(max_request_queue_size, 0, INT_MAX, 1);
static const ferry_field_t df_force_max_concurrent = {
    offsetof(ferry_dir_conf_t, force_max_concurrent),
    offsetof(ferry_dir_conf_t, force_max_concurrent_set), -1, INT_MAX, 1
};
DF(start_timeout, 1, FERRY_MAX_TIMER_SECONDS, 1);
DF(memory_limit, 0, FERRY_MAX_MEMORY_MB, 1);
DF(app_fd_ulimit, 0, INT_MAX, 1);
DB(friendly_error_pages, 1);
DB(load_shell_envvars, 1);

/* Inert directives: kind, reason, global, app_only, is_int, min, values. */
#define NOT_NODE "it configures Ruby, Python or Meteor apps, which Ferry does not run"
static const char *const spawn_methods[] = { "smart", "smart-lv2", "direct", "conservative", NULL };
static const char *const concurrency_models[] = { "process", "thread", NULL };

static const ferry_inert_t in_g_ruby = { FERRY_NOTE_INERT, NOT_NODE, 1, 0, 0, 0, NULL };
static const ferry_inert_t in_a_lang = { FERRY_NOTE_INERT, NOT_NODE, 0, 1, 0, 0, NULL };
static const ferry_inert_t in_ctl = { FERRY_NOTE_INERT,
    "Passenger agent options do not apply to Ferry's core", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_manifest = { FERRY_NOTE_INERT,
    "Ferry has no config manifest; see `ferry status --json`", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_log_prefix = { FERRY_NOTE_INERT,
    "the core logs structured lines", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_fd_log = { FERRY_NOTE_INERT,
    "Ferry has no file descriptor log", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_spawn_dir = { FERRY_NOTE_INERT,
    "Ferry needs no spawn work directory", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_phone_home = { FERRY_NOTE_INERT,
    "Ferry never contacts remote servers", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_turbocache = { FERRY_NOTE_INERT,
    "Ferry has no turbocache; use mod_cache", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_old_routing = { FERRY_NOTE_INERT,
    "Ferry routes to the least busy process (sticky first)", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_admin_panel = { FERRY_NOTE_INERT,
    "Ferry has no Fuse panel connector; use `ferry status` or the admin API", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_fly_with = { FERRY_NOTE_INERT,
    "Flying Passenger does not exist in Ferry", 1, 0, 0, 0, NULL };
static const ferry_inert_t in_preloader = { FERRY_NOTE_INERT,
    "Node.js and generic apps are spawned directly, without a preloader", 0, 1, 1, 0, NULL };
static const ferry_inert_t in_spawn_method = { FERRY_NOTE_INERT,
    "Node.js and generic apps are spawned directly", 0, 1, 0, 0, spawn_methods };
static const ferry_inert_t in_direct_addr = { FERRY_NOTE_INERT,
    "app processes listen on private Unix sockets", 0, 1, 0, 0, NULL };
static const ferry_inert_t in_monitor_log = { FERRY_NOTE_INERT,
    "Ferry has no Fuse panel log monitor", 0, 1, 0, 0, NULL };
static const ferry_inert_t in_lve = { FERRY_NOTE_INERT,
    "CloudLinux LVE/CageFS is not supported", 0, 1, 1, 0, NULL };
static const ferry_inert_t in_connect_timeout = { FERRY_NOTE_INERT,
    "the core connects to app processes over local Unix sockets", 0, 1, 1, 1, NULL };
static const ferry_inert_t in_buffer_upload = { FERRY_NOTE_INERT,
    "Ferry streams request bodies to the app with backpressure", 0, 0, 0, 0, NULL };
static const ferry_inert_t in_encoded_slashes = { FERRY_NOTE_INERT,
    "Ferry always forwards the URI exactly as the client sent it", 0, 0, 0, 0, NULL };
static const ferry_inert_t in_debugger = { FERRY_NOTE_INERT,
    "use node --inspect through PassengerNodejs", 0, 1, 0, 0, NULL };
static const ferry_inert_t in_concurrency = { FERRY_NOTE_INERT,
    "Node.js apps are single-threaded; Ferry scales by processes", 0, 0, 0, 0, concurrency_models };
static const ferry_inert_t in_thread_count = { FERRY_NOTE_INERT,
    "Node.js apps are single-threaded; Ferry scales by processes", 0, 0, 1, 0, NULL };
static const ferry_inert_t in_rolling = { FERRY_NOTE_ALWAYS_ON,
    "rolling restarts are always on in Ferry", 0, 1, 0, 0, NULL };
static const ferry_inert_t in_resist = { FERRY_NOTE_ALWAYS_ON,
    "a failed deploy always keeps the old processes serving in Ferry", 0, 1, 0, 0, NULL };
static const ferry_inert_t ob_g = { FERRY_NOTE_OBSOLETE,
    "obsolete in Passenger as well", 1, 0, 0, 0, NULL };
static const ferry_inert_t ob_g_int = { FERRY_NOTE_OBSOLETE,
    "obsolete in Passenger as well", 1, 0, 1, 0, NULL };
static const ferry_inert_t ob_a = { FERRY_NOTE_OBSOLETE,
    "obsolete in Passenger as well", 0, 1, 0, 0, NULL };
static const ferry_inert_t ob_l = { FERRY_NOTE_OBSOLETE,
    "obsolete in Passenger as well", 0, 0, 0, 0, NULL };
static const ferry_inert_t ob_queue = { FERRY_NOTE_OBSOLETE,
    "requests are always queued per app", 0, 1, 0, 0, NULL };
static const ferry_inert_t ob_rewrite = { FERRY_NOTE_OBSOLETE,
    "mod_rewrite is always supported", 1, 0, 0, 0, NULL };

/* ---- Command table -------------------------------------------------------- */

#define G    RSRC_CONF
#define A    (RSRC_CONF | ACCESS_CONF)
#define L    (RSRC_CONF | ACCESS_CONF | OR_ALL)
#define AHT  (RSRC_CONF | ACCESS_CONF | OR_FILEINFO)
#define LIM  (RSRC_CONF | ACCESS_CONF | OR_LIMIT)
#define OPT  (RSRC_CONF | ACCESS_CONF | OR_OPTIONS)
#define I(x) ((void *)&(x))

const command_rec ferry_cmds[] = {
    /* -- G: global ---------------------------------------------------------- */
    AP_INIT_TAKE1("PassengerRoot", set_srv_str, I(sf_root), G,
                  "The Ferry install directory (holds build/core/src/main.js)"),
    AP_INIT_TAKE2("PassengerCtl", set_inert_take2, I(in_ctl), G,
                  "Passenger agent option (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerDumpConfigManifest", set_inert_take1, I(in_manifest), G,
                  "Passenger config manifest dump (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerDefaultRuby", set_inert_take1, I(in_g_ruby), G,
                  "Default Ruby interpreter (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerLogLevel", set_srv_int, I(sf_log_level), G,
                  "Core log verbosity 0-7 (Passenger numbering; 3 = notice)"),
    AP_INIT_TAKE1("PassengerLogFile", set_srv_str, I(sf_log_file), G,
                  "Core log file (default: Apache's ErrorLog)"),
    AP_INIT_TAKE1("PassengerDebugLogFile", set_srv_str, I(sf_log_file), G,
                  "Alias of PassengerLogFile"),
    AP_INIT_FLAG("PassengerDisableLogPrefix", set_inert_flag, I(in_log_prefix), G,
                 "Drop Passenger's log prefix (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerSocketBacklog", set_srv_int, I(sf_socket_backlog), G,
                  "Listen backlog of the core's socket"),
    AP_INIT_TAKE1("PassengerFileDescriptorLogFile", set_inert_take1, I(in_fd_log), G,
                  "File descriptor log (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerMaxPoolSize", set_srv_int, I(sf_max_pool_size), G,
                  "Maximum number of live app processes, all apps together"),
    AP_INIT_TAKE1("RailsMaxPoolSize", set_srv_int, I(sf_max_pool_size), G,
                  "Alias of PassengerMaxPoolSize"),
    AP_INIT_TAKE1("PassengerPoolIdleTime", set_srv_seconds, I(sf_pool_idle_time), G,
                  "Seconds an idle app process lives; 0 = forever"),
    AP_INIT_TAKE1("RailsPoolIdleTime", set_srv_seconds, I(sf_pool_idle_time), G,
                  "Alias of PassengerPoolIdleTime"),
    AP_INIT_TAKE1("PassengerResponseBufferHighWatermark", set_srv_int, I(sf_response_watermark), G,
                  "Response bytes held in memory for a slow client before spooling to PassengerDataBufferDir"),
    AP_INIT_FLAG("PassengerUserSwitching", set_srv_flag, I(sf_user_switching), G,
                 "Run apps as the owner of their startup file"),
    AP_INIT_FLAG("RailsUserSwitching", set_srv_flag, I(sf_user_switching), G,
                 "Alias of PassengerUserSwitching"),
    AP_INIT_TAKE1("PassengerDefaultUser", set_srv_str, I(sf_default_user), G,
                  "User for apps when user switching is off or fails"),
    AP_INIT_TAKE1("RailsDefaultUser", set_srv_str, I(sf_default_user), G,
                  "Alias of PassengerDefaultUser"),
    AP_INIT_TAKE1("PassengerAdminGroup", set_srv_str, I(sf_admin_group), G,
                  "group whose members may use the core's admin socket (ferry status)"),
    AP_INIT_TAKE1("PassengerDefaultGroup", set_srv_str, I(sf_default_group), G,
                  "Group for apps when user switching is off or fails"),
    AP_INIT_TAKE1("PassengerDataBufferDir", set_srv_dir, I(sf_data_buffer_dir), G,
                  "Directory for response bytes spooled past PassengerResponseBufferHighWatermark"),
    AP_INIT_TAKE1("PassengerInstanceRegistryDir", set_srv_str, I(sf_instance_registry_dir), G,
                  "Directory holding the core's instance directory"),
    AP_INIT_TAKE1("PassengerSpawnDir", set_inert_take1, I(in_spawn_dir), G,
                  "Spawn work directory (accepted, no effect)"),
    AP_INIT_FLAG("PassengerDisableSecurityUpdateCheck", set_inert_flag, I(in_phone_home), G,
                 "Security update check (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerSecurityUpdateCheckProxy", set_inert_take1, I(in_phone_home), G,
                  "Security update check proxy (accepted, no effect)"),
    AP_INIT_FLAG("PassengerDisableAnonymousTelemetry", set_inert_flag, I(in_phone_home), G,
                 "Anonymous telemetry (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerAnonymousTelemetryProxy", set_inert_take1, I(in_phone_home), G,
                  "Telemetry proxy (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerStatThrottleRate", set_srv_seconds, I(sf_stat_throttle_rate), G,
                  "Seconds between checks of restart.txt and app detection"),
    AP_INIT_TAKE1("PassengerPreStart", set_prestart, NULL, G,
                  "URL of an app to start when Apache starts (repeatable)"),
    AP_INIT_TAKE1("PassengerAffinityRedis", set_affinity_redis, NULL, G,
                  "Redis URL for session affinity shared across hosts (unset = off)"),
    AP_INIT_TAKE1("PassengerAffinityNodeName", set_srv_str, I(sf_affinity_node_name), G,
                  "This host's name in the affinity cluster (default: the host name)"),
    AP_INIT_TAKE1("PassengerAffinityListen", set_affinity_listen, NULL, G,
                  "ADDR:PORT where the core accepts requests forwarded by its peers"),
    AP_INIT_TAKE1("PassengerLogFormat", set_log_format, NULL, G,
                  "text (Apache's error-log shape, the default) or json (one JSON object a line)"),
    AP_INIT_TAKE1("PassengerHealthCheckPath", set_health_check_path, NULL, G,
                  "GET this path on every app process; failing processes are replaced (unset = off)"),
    AP_INIT_TAKE1("PassengerHealthCheckInterval", set_srv_seconds, I(sf_health_check_interval), G,
                  "Seconds between health checks of a process (default 10)"),
    AP_INIT_TAKE1("PassengerHealthCheckTimeout", set_srv_seconds, I(sf_health_check_timeout), G,
                  "Seconds a health check may take (default 5)"),
    AP_INIT_TAKE1("PassengerHealthCheckFailures", set_srv_int, I(sf_health_check_failures), G,
                  "Failed health checks in a row before the process is replaced (default 3)"),
    AP_INIT_TAKE1("PassengerHealthCheckEventLoopTimeout", set_srv_seconds,
                  I(sf_health_check_event_loop_timeout), G,
                  "Seconds without an event-loop report before a Node process is replaced (default 30, 0 = off)"),
    AP_INIT_TAKE1("PassengerMetricsListen", set_metrics_listen, NULL, G,
                  "ADDR:PORT where the core serves Prometheus metrics at /metrics (unset = off)"),
    AP_INIT_TAKE1("PassengerAffinitySecretFile", set_srv_str, I(sf_affinity_secret_file), G,
                  "File with the secret shared by the affinity cluster's hosts"),
    AP_INIT_TAKE1("PassengerAffinityTTL", set_srv_seconds, I(sf_affinity_ttl), G,
                  "Seconds a session stays pinned to its process after its last request"),
    AP_INIT_TAKE1("PassengerAffinityRedisTimeout", set_srv_int, I(sf_affinity_redis_timeout), G,
                  "Milliseconds a request may wait for Redis before affinity falls back to local"),
    AP_INIT_TAKE1("PassengerAffinityTLSCertFile", set_srv_str, I(sf_affinity_tls_cert_file), G,
                  "PEM certificate: the core serves its peers over TLS"),
    AP_INIT_TAKE1("PassengerAffinityTLSKeyFile", set_srv_str, I(sf_affinity_tls_key_file), G,
                  "PEM private key of PassengerAffinityTLSCertFile"),
    AP_INIT_TAKE1("PassengerAffinityTLSCAFile", set_srv_str, I(sf_affinity_tls_ca_file), G,
                  "PEM CA that signed the peers' certificates (default: the system CAs)"),
    AP_INIT_FLAG("PassengerTurbocaching", set_inert_flag, I(in_turbocache), G,
                 "Turbocaching (accepted, no effect)"),
    AP_INIT_FLAG("PassengerOldRouting", set_inert_flag, I(in_old_routing), G,
                 "Passenger's old routing (accepted, no effect)"),
    AP_INIT_FLAG("PassengerShowVersionInHeader", set_srv_flag, I(sf_show_version_in_header), G,
                 "Put the Ferry version in X-Powered-By"),
    AP_INIT_TAKE1("PassengerAdminPanelUrl", set_inert_take1, I(in_admin_panel), G,
                  "Fuse panel URL (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerAdminPanelAuthType", set_inert_take1, I(in_admin_panel), G,
                  "Fuse panel auth type (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerAdminPanelUsername", set_inert_take1, I(in_admin_panel), G,
                  "Fuse panel user (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerAdminPanelPassword", set_inert_take1, I(in_admin_panel), G,
                  "Fuse panel password (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerFlyWith", set_inert_take1, I(in_fly_with), G,
                  "Flying Passenger (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerRedeployOnGraceful", set_redeploy, NULL, G,
                  "What `apachectl graceful` redeploys: all, changed or off"),

    /* -- A: per application ------------------------------------------------- */
    AP_INIT_TAKE1("PassengerRuby", set_inert_take1, I(in_a_lang), A,
                  "Ruby interpreter (accepted, no effect)"),
    AP_INIT_TAKE1("RailsRuby", set_inert_take1, I(in_a_lang), A,
                  "Alias of PassengerRuby (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerPython", set_inert_take1, I(in_a_lang), A,
                  "Python interpreter (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerMeteorAppSettings", set_inert_take1, I(in_a_lang), A,
                  "Meteor settings file (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerNodejs", set_dir_str, I(df_nodejs), AHT,
                  "The node command apps run with"),
    AP_INIT_TAKE1("PassengerBaseURI", set_base_uri, NULL, AHT,
                  "A sub-URI that serves an app (repeatable)"),
    AP_INIT_TAKE1("RailsBaseURI", set_base_uri, NULL, AHT,
                  "Alias of PassengerBaseURI"),
    AP_INIT_TAKE1("RackBaseURI", set_base_uri, NULL, AHT,
                  "Alias of PassengerBaseURI"),
    AP_INIT_TAKE1("PassengerAppEnv", set_dir_str, I(df_app_env), AHT,
                  "App environment: NODE_ENV and friends (default production)"),
    AP_INIT_TAKE1("RailsEnv", set_dir_str, I(df_app_env), AHT,
                  "Alias of PassengerAppEnv"),
    AP_INIT_TAKE1("RackEnv", set_dir_str, I(df_app_env), AHT,
                  "Alias of PassengerAppEnv"),
    AP_INIT_TAKE1("PassengerAppType", set_app_type, NULL, AHT,
                  "App type: node (nodejs) or generic"),
    AP_INIT_TAKE1("PassengerAppStartCommand", set_dir_str, I(df_app_start_command), A,
                  "Command that starts a generic app listening on $PORT"),
    AP_INIT_TAKE1("PassengerStartupFile", set_dir_str, I(df_startup_file), AHT,
                  "Startup file relative to the app root (default app.js)"),
    AP_INIT_TAKE1("PassengerMinInstances", set_dir_int, I(df_min_instances), A,
                  "Processes kept alive when idle (default 1)"),
    AP_INIT_TAKE1("PassengerMaxInstancesPerApp", set_max_instances, NULL, A,
                  "Maximum processes of one app; 0 = only the pool limit"),
    AP_INIT_TAKE1("RailsMaxInstancesPerApp", set_max_instances, NULL, A,
                  "Alias of PassengerMaxInstancesPerApp"),
    AP_INIT_TAKE1("PassengerUser", set_dir_str, I(df_user), A,
                  "User the app runs as"),
    AP_INIT_TAKE1("PassengerGroup", set_dir_str, I(df_group), A,
                  "Group the app runs as (!STARTUP_FILE! = the startup file's group)"),
    AP_INIT_TAKE1("PassengerMaxRequests", set_dir_int, I(df_max_requests), A,
                  "Recycle a process after this many requests; 0 = never"),
    AP_INIT_TAKE1("PassengerStartTimeout", set_dir_seconds, I(df_start_timeout), A,
                  "Seconds an app may take to start listening (default 90)"),
    AP_INIT_TAKE1("PassengerAppConnectTimeout", set_inert_take1, I(in_connect_timeout), A,
                  "App connect timeout (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerMaxRequestQueueSize", set_dir_int, I(df_max_request_queue_size), A,
                  "Requests queued per app before 503; 0 = unbounded (default 100)"),
    AP_INIT_TAKE1("PassengerMaxPreloaderIdleTime", set_inert_take1, I(in_preloader), A,
                  "Preloader idle time (accepted, no effect)"),
    AP_INIT_TAKE1("RailsAppSpawnerIdleTime", set_inert_take1, I(in_preloader), A,
                  "Alias of PassengerMaxPreloaderIdleTime (accepted, no effect)"),
    AP_INIT_FLAG("PassengerLoadShellEnvvars", set_dir_flag, I(df_load_shell_envvars), A,
                 "Start the app through the user's login shell"),
    AP_INIT_FLAG("PassengerPreloadBundler", set_inert_flag, I(in_a_lang), A,
                 "Ruby bundler preloading (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerSpawnMethod", set_inert_take1, I(in_spawn_method), A,
                  "Spawn method smart|direct (accepted, no effect)"),
    AP_INIT_TAKE1("RailsSpawnMethod", set_inert_take1, I(in_spawn_method), A,
                  "Alias of PassengerSpawnMethod (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerDirectInstanceRequestAddress", set_inert_take1, I(in_direct_addr), A,
                  "Per-process request address (accepted, no effect)"),
    AP_INIT_FLAG("PassengerFriendlyErrorPages", set_dir_flag, I(df_friendly_error_pages), A,
                 "Detailed error pages (default: on in development)"),
    AP_INIT_TAKE1("PassengerCustomErrorPage", set_custom_error_page, I(df_custom_error_page), A,
                  "Custom spawn error page (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerRestartDir", set_dir_str, I(df_restart_dir), A,
                  "Directory of restart.txt, relative to the app root (default tmp)"),
    AP_INIT_TAKE1("PassengerAppGroupName", set_dir_str, I(df_app_group_name), A,
                  "Apps with the same group name share one process pool"),
    AP_INIT_TAKE1("PassengerMonitorLogFile", set_inert_take1, I(in_monitor_log), A,
                  "Log file to monitor (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerForceMaxConcurrentRequestsPerProcess", set_dir_int,
                  I(df_force_max_concurrent), A,
                  "Concurrent requests one process takes; -1 = not forced, 0 = unlimited"),
    AP_INIT_TAKE1("PassengerAppRoot", set_app_root, NULL, AHT,
                  "The app's root directory (default: parent of DocumentRoot)"),
    AP_INIT_TAKE1("PassengerLveMinUid", set_inert_take1, I(in_lve), A,
                  "CloudLinux LVE minimum uid (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerMemoryLimit", set_dir_int, I(df_memory_limit), LIM,
                  "Restart a process above this many MB of memory; 0 = no limit"),
    AP_INIT_TAKE1("PassengerMaxInstances", set_max_instances, NULL, LIM,
                  "Maximum processes of this app (as PassengerMaxInstancesPerApp)"),
    AP_INIT_FLAG("PassengerRollingRestarts", set_inert_flag, I(in_rolling), A,
                 "Rolling restarts (always on in Ferry)"),
    AP_INIT_FLAG("PassengerResistDeploymentErrors", set_inert_flag, I(in_resist), A,
                 "Deployment error resistance (always on in Ferry)"),
    AP_INIT_FLAG("PassengerDebugger", set_inert_flag, I(in_debugger), A,
                 "Ruby debugger (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerAppLogFile", set_app_log_file, I(df_app_log_file), AHT,
                  "File that receives the app's stdout and stderr"),
    AP_INIT_TAKE1("PassengerAppFileDescriptorUlimit", set_dir_int, I(df_app_fd_ulimit), A,
                  "File descriptor limit of app processes; 0 = inherit"),
    AP_INIT_TAKE2("PassengerEnvVar", set_env_var, NULL, A,
                  "NAME VALUE: an environment variable for the app"),

    /* -- L: per location, also .htaccess ------------------------------------ */
    AP_INIT_FLAG("PassengerEnabled", set_dir_flag, I(df_enabled), L,
                 "Serve apps here (default on where an app is found)"),
    AP_INIT_FLAG("PassengerErrorOverride", set_dir_flag, I(df_error_override), L,
                 "Let Apache's ErrorDocument handle the app's 4xx/5xx"),
    AP_INIT_FLAG("PassengerHighPerformance", set_high_performance, I(df_high_performance), L,
                 "Claim app requests before Apache's directory walk (server config "
                 "and VirtualHost only)"),
    AP_INIT_FLAG("PassengerBufferUpload", set_inert_flag, I(in_buffer_upload), L,
                 "Upload buffering (accepted, no effect)"),
    AP_INIT_FLAG("PassengerBufferResponse", set_dir_flag, I(df_buffer_response), L,
                 "Buffer the whole response in Apache before sending it"),
    AP_INIT_FLAG("PassengerStickySessions", set_dir_flag, I(df_sticky_sessions), L,
                 "Route a client back to the same process (cookie)"),
    AP_INIT_TAKE1("PassengerStickySessionsCookieName", set_cookie_name, NULL, L,
                  "Sticky session cookie name (default _passenger_route)"),
    AP_INIT_TAKE1("PassengerStickySessionsCookieAttributes", set_dir_str,
                  I(df_sticky_cookie_attributes), L,
                  "Sticky session cookie attributes after Path="),
    AP_INIT_FLAG("PassengerAllowEncodedSlashes", set_inert_flag, I(in_encoded_slashes), OPT,
                 "Encoded slashes support (always on: accepted, no effect)"),
    AP_INIT_TAKE1("PassengerMaxRequestTime", set_dir_seconds, I(df_max_request_time), L,
                  "Seconds a request may run before 504 and a recycle; 0 = no limit"),
    AP_INIT_TAKE1("PassengerMaxRequestQueueTime", set_dir_seconds, I(df_max_request_queue_time), L,
                  "Seconds a request may wait in the queue before 504; 0 = no limit"),
    AP_INIT_TAKE1("PassengerConcurrencyModel", set_inert_take1, I(in_concurrency), L,
                  "process|thread (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerThreadCount", set_inert_take1, I(in_thread_count), L,
                  "Threads per process (accepted, no effect)"),
    AP_INIT_TAKE1("PassengerReadTimeout", set_dir_interval, I(df_read_timeout), L,
                  "Wait this long for the app's response head (default: Timeout)"),
    AP_INIT_TAKE1("PassengerWebSocketIdleTimeout", set_dir_interval, I(df_ws_idle_timeout), L,
                  "Close an upgraded connection idle this long (default: Timeout)"),
    AP_INIT_FLAG("PassengerAbortWebsocketsOnProcessShutdown", set_dir_flag,
                 I(df_abort_websockets), L,
                 "Close an app's WebSockets when its process stops (default on)"),

    /* -- Obsolete ----------------------------------------------------------- */
    AP_INIT_TAKE1("RailsSpawnServer", set_inert_take1, I(ob_g), G,
                  "Obsolete: use PassengerRoot"),
    AP_INIT_FLAG("RailsAllowModRewrite", set_inert_flag, I(ob_rewrite), G,
                 "Obsolete"),
    AP_INIT_TAKE1("RailsFrameworkSpawnerIdleTime", set_inert_take1, I(ob_g_int), G,
                  "Obsolete"),
    AP_INIT_FLAG("PassengerUseGlobalQueue", set_inert_flag, I(ob_queue), A,
                 "Obsolete: queueing is always on"),
    AP_INIT_TAKE1("UnionStationGatewayAddress", set_inert_take1, I(ob_g), G, "Obsolete"),
    AP_INIT_TAKE1("UnionStationGatewayPort", set_inert_take1, I(ob_g_int), G, "Obsolete"),
    AP_INIT_TAKE1("UnionStationGatewayCert", set_inert_take1, I(ob_g), G, "Obsolete"),
    AP_INIT_TAKE1("UnionStationProxyAddress", set_inert_take1, I(ob_g), G, "Obsolete"),
    AP_INIT_TAKE1("PassengerAnalyticsLogUser", set_inert_take1, I(ob_g), G, "Obsolete"),
    AP_INIT_TAKE1("PassengerAnalyticsLogGroup", set_inert_take1, I(ob_g), G, "Obsolete"),
    AP_INIT_TAKE1("UnionStationKey", set_inert_take1, I(ob_a), A, "Obsolete"),
    AP_INIT_TAKE1("UnionStationFilter", set_inert_take1, I(ob_l), OPT, "Obsolete"),
    AP_INIT_FLAG("UnionStationSupport", set_inert_flag, I(ob_a), A, "Obsolete"),
    { NULL }
};

/* ---- Accessors ------------------------------------------------------------ */

const ferry_server_conf_t *ferry_server_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &ferry_module);
}

const ferry_dir_conf_t *ferry_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &ferry_module);
}

const char *ferry_conf_root(server_rec *s)
{
    return ferry_server_conf(s)->root;
}

const char *ferry_conf_instance_registry_dir(server_rec *s)
{
    return ferry_server_conf(s)->instance_registry_dir;
}

const char *ferry_conf_log_file(server_rec *s)
{
    return ferry_server_conf(s)->log_file;
}

const char *ferry_conf_nodejs(server_rec *s)
{
    const ferry_dir_conf_t *dc = ap_get_module_config(s->lookup_defaults,
                                                      &ferry_module);
    return dc ? dc->nodejs : NULL;
}

const char *ferry_conf_default_user(server_rec *s)
{
    const char *u = ferry_server_conf(s)->default_user;
    return u ? u : FERRY_DEFAULT_USER;
}

apr_size_t ferry_conf_response_watermark(server_rec *s)
{
    int v = ferry_server_conf(s)->response_watermark;

    return v == FERRY_UNSET ? 128 * 1024 : (apr_size_t)v;
}

const char *ferry_conf_data_buffer_dir(server_rec *s)
{
    return ferry_server_conf(s)->data_buffer_dir;
}

const char *ferry_conf_default_group(server_rec *s)
{
    return ferry_server_conf(s)->default_group;
}

int ferry_conf_user_switching(server_rec *s)
{
    const ferry_server_conf_t *sc = ferry_server_conf(s);
    return sc->user_switching_set ? sc->user_switching : 1;
}

int ferry_conf_log_level(server_rec *s)
{
    const ferry_server_conf_t *sc = ferry_server_conf(s);
    return sc->log_level != FERRY_UNSET ? sc->log_level : FERRY_DEFAULT_LOG_LEVEL;
}

ferry_redeploy_t ferry_conf_redeploy_on_graceful(server_rec *s)
{
    ferry_redeploy_t v = ferry_server_conf(s)->redeploy_on_graceful;
    return v != FERRY_REDEPLOY_UNSET ? v : FERRY_REDEPLOY_ALL;
}

const char *ferry_conf_redeploy_name(ferry_redeploy_t v)
{
    switch (v) {
    case FERRY_REDEPLOY_CHANGED:
        return "changed";
    case FERRY_REDEPLOY_OFF:
        return "off";
    default:
        return "all";
    }
}

/* ---- Server options as JSON (docs/core-config.md) ------------------------- */

/* A JSON string literal for s (NULL → ""): the one writer of JSON strings
 * for the core config file (here and ferry_daemon.c). */
const char *ferry_json_str(apr_pool_t *p, const char *s)
{
    apr_size_t len = s ? strlen(s) : 0, i;
    char *out = apr_palloc(p, len * 6 + 3), *o = out;

    *o++ = '"';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':  *o++ = '\\'; *o++ = '"';  break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n';  break;
        case '\r': *o++ = '\\'; *o++ = 'r';  break;
        case '\t': *o++ = '\\'; *o++ = 't';  break;
        default:
            if (c < 0x20) {
                apr_snprintf(o, 7, "\\u%04x", c);
                o += 6;
            }
            else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void json_add(apr_array_header_t *kv, apr_pool_t *p, const char *key,
                     const char *value)
{
    APR_ARRAY_PUSH(kv, const char *) = apr_pstrcat(p, ferry_json_str(p, key), ":",
                                                   value, NULL);
}

const char *ferry_server_options_json(apr_pool_t *p, server_rec *s)
{
    const ferry_server_conf_t *sc = ferry_server_conf(s);
    apr_array_header_t *kv = apr_array_make(p, 12, sizeof(const char *));
    int i;

#define JSON_INT(key, f) \
    if (sc->f != FERRY_UNSET) json_add(kv, p, key, apr_itoa(p, sc->f))
    JSON_INT("max_pool_size", max_pool_size);
    JSON_INT("pool_idle_time", pool_idle_time);
    JSON_INT("max_instances_per_app", max_instances_per_app);
    JSON_INT("stat_throttle_rate", stat_throttle_rate);
    JSON_INT("log_level", log_level);
    JSON_INT("socket_backlog", socket_backlog);
    JSON_INT("affinity_ttl", affinity_ttl);
    JSON_INT("health_check_interval", health_check_interval);
    JSON_INT("health_check_timeout", health_check_timeout);
    JSON_INT("health_check_failures", health_check_failures);
    JSON_INT("health_check_event_loop_timeout", health_check_event_loop_timeout);
    JSON_INT("affinity_redis_timeout", affinity_redis_timeout);
#undef JSON_INT
    if (sc->user_switching_set) {
        json_add(kv, p, "user_switching", sc->user_switching ? "true" : "false");
    }
    if (sc->default_user) {
        json_add(kv, p, "default_user", ferry_json_str(p, sc->default_user));
    }
    if (sc->default_group) {
        json_add(kv, p, "default_group", ferry_json_str(p, sc->default_group));
    }
    if (sc->log_file) {
        json_add(kv, p, "log_file", ferry_json_str(p, sc->log_file));
    }
    if (sc->affinity_redis) {
        json_add(kv, p, "affinity_redis", ferry_json_str(p, sc->affinity_redis));
    }
    if (sc->admin_group) {
        json_add(kv, p, "admin_group", ferry_json_str(p, sc->admin_group));
    }
    if (sc->affinity_node_name) {
        json_add(kv, p, "affinity_node_name", ferry_json_str(p, sc->affinity_node_name));
    }
    if (sc->affinity_listen) {
        json_add(kv, p, "affinity_listen", ferry_json_str(p, sc->affinity_listen));
    }
    if (sc->health_check_path) {
        json_add(kv, p, "health_check_path", ferry_json_str(p, sc->health_check_path));
    }
    if (sc->log_format) {
        json_add(kv, p, "log_format", ferry_json_str(p, sc->log_format));
    }
    /* The main ErrorLog when it is a file: the core opens it itself (not the
     * fd it inherited), so it follows a rotation on the next graceful. */
    if (!sc->log_file && s->error_fname && s->error_fname[0] != '|'
        && strncmp(s->error_fname, "syslog", 6) != 0) {
        json_add(kv, p, "error_log",
                 ferry_json_str(p, ap_server_root_relative(p, s->error_fname)));
    }
    if (sc->metrics_listen) {
        json_add(kv, p, "metrics_listen", ferry_json_str(p, sc->metrics_listen));
    }
    if (sc->affinity_secret_file) {
        json_add(kv, p, "affinity_secret_file", ferry_json_str(p, sc->affinity_secret_file));
    }
    if (sc->affinity_tls_cert_file) {
        json_add(kv, p, "affinity_tls_cert_file", ferry_json_str(p, sc->affinity_tls_cert_file));
    }
    if (sc->affinity_tls_key_file) {
        json_add(kv, p, "affinity_tls_key_file", ferry_json_str(p, sc->affinity_tls_key_file));
    }
    if (sc->affinity_tls_ca_file) {
        json_add(kv, p, "affinity_tls_ca_file", ferry_json_str(p, sc->affinity_tls_ca_file));
    }
    if (sc->prestart->nelts > 0) {
        apr_array_header_t *urls = apr_array_make(p, sc->prestart->nelts,
                                                  sizeof(const char *));
        for (i = 0; i < sc->prestart->nelts; i++) {
            APR_ARRAY_PUSH(urls, const char *) =
                ferry_json_str(p, APR_ARRAY_IDX(sc->prestart, i, const char *));
        }
        json_add(kv, p, "prestart",
                 apr_pstrcat(p, "[", apr_array_pstrcat(p, urls, ','), "]", NULL));
    }
    return apr_pstrcat(p, "{", apr_array_pstrcat(p, kv, ','), "}", NULL);
}
