/*
 * ferry_config.h: mod_ferry's configuration: the server-wide (G) and
 * per-directory (A/L) config structs, their create/merge functions, the
 * directive table and the accessors other parts read. Implemented in
 * ferry_config.c; every directive is documented in docs/directives.md.
 *
 * Config is built at startup (and for .htaccess per request) and is
 * read-only afterwards: it is shared by all threads of a child.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"
#include "apr_time.h"
#include "apr_user.h"

/* Explicit "not set in this context" sentinel for ints and durations. */
#define FERRY_UNSET (-1)

/* PassengerRedeployOnGraceful (docs/core-config.md). */
typedef enum {
    FERRY_REDEPLOY_UNSET = 0,
    FERRY_REDEPLOY_ALL,
    FERRY_REDEPLOY_CHANGED,
    FERRY_REDEPLOY_OFF
} ferry_redeploy_t;

/*
 * Server-wide (G) options. Passenger keeps one process-wide value for each:
 * a G directive inside a <VirtualHost> logs a warning and still sets the
 * process-wide value, so the setters always write the main server's struct
 * and merge copies it into every virtual host.
 */
typedef struct {
    const char *root;                  /* PassengerRoot */
    const char *instance_registry_dir; /* PassengerInstanceRegistryDir */
    const char *log_file;              /* PassengerLogFile */
    const char *default_user;          /* PassengerDefaultUser */
    const char *default_group;         /* PassengerDefaultGroup */
    const char *admin_group;           /* PassengerAdminGroup */
    int log_level;                     /* PassengerLogLevel 0-7 */
    int socket_backlog;                /* PassengerSocketBacklog */
    int response_watermark;            /* PassengerResponseBufferHighWatermark, bytes */
    const char *data_buffer_dir;       /* PassengerDataBufferDir */
    int max_pool_size;                 /* PassengerMaxPoolSize */
    int pool_idle_time;                /* PassengerPoolIdleTime, s */
    int max_instances_per_app;         /* PassengerMaxInstancesPerApp at server level */
    int stat_throttle_rate;            /* PassengerStatThrottleRate, s */
    int user_switching;                /* PassengerUserSwitching */
    int user_switching_set;
    int show_version_in_header;        /* PassengerShowVersionInHeader */
    int show_version_in_header_set;
    ferry_redeploy_t redeploy_on_graceful; /* PassengerRedeployOnGraceful */
    apr_array_header_t *prestart;      /* PassengerPreStart URLs (const char *) */
    const char *affinity_redis;        /* PassengerAffinityRedis URL */
    const char *affinity_node_name;    /* PassengerAffinityNodeName */
    const char *affinity_listen;       /* PassengerAffinityListen ADDR:PORT */
    const char *metrics_listen;        /* PassengerMetricsListen ADDR:PORT */
    const char *log_format;            /* PassengerLogFormat text|json */
    const char *health_check_path;     /* PassengerHealthCheckPath */
    int health_check_interval;         /* PassengerHealthCheckInterval, s */
    int health_check_timeout;          /* PassengerHealthCheckTimeout, s */
    int health_check_failures;         /* PassengerHealthCheckFailures */
    int health_check_event_loop_timeout; /* PassengerHealthCheckEventLoopTimeout, s */
    const char *affinity_secret_file;  /* PassengerAffinitySecretFile */
    int affinity_ttl;                  /* PassengerAffinityTTL, s */
    int affinity_redis_timeout;        /* PassengerAffinityRedisTimeout, ms */
    const char *affinity_tls_cert_file; /* PassengerAffinityTLSCertFile */
    const char *affinity_tls_key_file;  /* PassengerAffinityTLSKeyFile */
    const char *affinity_tls_ca_file;   /* PassengerAffinityTLSCAFile */
} ferry_server_conf_t;

/* Per-application (A) and per-location (L) options. */
typedef struct {
    /* L: per location, also .htaccess */
    int enabled;                       /* PassengerEnabled */
    int enabled_set;
    int error_override;                /* PassengerErrorOverride */
    int error_override_set;
    int buffer_response;               /* PassengerBufferResponse */
    int buffer_response_set;
    int sticky_sessions;               /* PassengerStickySessions */
    int sticky_sessions_set;
    int abort_websockets;              /* PassengerAbortWebsocketsOnProcessShutdown */
    int abort_websockets_set;
    int high_performance;              /* PassengerHighPerformance: read from the
                                        * server/VirtualHost config only */
    int high_performance_set;
    const char *sticky_cookie_name;    /* PassengerStickySessionsCookieName */
    const char *sticky_cookie_attributes; /* PassengerStickySessionsCookieAttributes */
    int max_request_time;              /* PassengerMaxRequestTime, s */
    int max_request_queue_time;        /* PassengerMaxRequestQueueTime, s */
    apr_interval_time_t read_timeout;  /* PassengerReadTimeout */
    apr_interval_time_t ws_idle_timeout; /* PassengerWebSocketIdleTimeout */

    /* A: per application */
    const char *app_root;              /* PassengerAppRoot */
    const char *app_type;              /* PassengerAppType, normalised: node|generic|ruby|python|meteor */
    const char *app_start_command;     /* PassengerAppStartCommand */
    const char *startup_file;          /* PassengerStartupFile */
    const char *app_env;               /* PassengerAppEnv */
    const char *nodejs;                /* PassengerNodejs */
    const char *app_group_name;        /* PassengerAppGroupName */
    const char *user;                  /* PassengerUser */
    const char *group;                 /* PassengerGroup */
    const char *restart_dir;           /* PassengerRestartDir */
    const char *app_log_file;          /* PassengerAppLogFile */
    const char *custom_error_page;     /* PassengerCustomErrorPage (absolute) */
    apr_array_header_t *base_uris;     /* PassengerBaseURI (const char *) */
    apr_table_t *env_vars;             /* PassengerEnvVar NAME VALUE */
    int min_instances;                 /* PassengerMinInstances */
    int max_instances_per_app;         /* PassengerMaxInstancesPerApp / PassengerMaxInstances */
    int max_requests;                  /* PassengerMaxRequests */
    int max_request_queue_size;        /* PassengerMaxRequestQueueSize */
    int force_max_concurrent;          /* PassengerForceMaxConcurrentRequestsPerProcess (-1 is a value) */
    int force_max_concurrent_set;
    int start_timeout;                 /* PassengerStartTimeout, s */
    int memory_limit;                  /* PassengerMemoryLimit, MB */
    int app_fd_ulimit;                 /* PassengerAppFileDescriptorUlimit */
    int friendly_error_pages;          /* PassengerFriendlyErrorPages */
    int friendly_error_pages_set;
    int load_shell_envvars;            /* PassengerLoadShellEnvvars */
    int load_shell_envvars_set;

    /*
     * Tenant binding (docs/security.md): a per-app directive set in an
     * .htaccess owned by a non-root user binds the app to that user. The
     * mapping then requires the app root (and startup file) to be the
     * user's and runs the app as that user.
     */
    const char *htaccess_file;         /* that .htaccess; NULL = not bound */
    apr_uid_t htaccess_uid;            /* its owner */
    const char *htaccess_conflict;     /* another such .htaccess, other owner */
    int app_log_file_htaccess;         /* PassengerAppLogFile came from it */
} ferry_dir_conf_t;

/* Module struct slots (used by mod_ferry.c). */
extern const command_rec ferry_cmds[];
void *ferry_create_dir_conf(apr_pool_t *p, char *dir);
void *ferry_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *ferry_create_server_conf(apr_pool_t *p, server_rec *s);
void *ferry_merge_server_conf(apr_pool_t *p, void *basev, void *addv);

/* Hooks (registered in mod_ferry.c): reset per-pass state; log the
 * one-line notices for accepted-but-inert directives once per start
 * (post_config on the real pass, check_config under `apache2 -t`). */
int ferry_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int ferry_config_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);
int ferry_config_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s);

/* The server-wide config (any server_rec: every vhost shares the values). */
const ferry_server_conf_t *ferry_server_conf(server_rec *s);
/* The merged per-directory config of r. */
const ferry_dir_conf_t *ferry_dir_conf(request_rec *r);

/*
 * The JSON object text for the "server" key of the core's config file
 * (docs/core-config.md): every server-wide option that was set, snake_case
 * keys (directive name without "Passenger"), in the directive's units.
 * "{}" when nothing was set.
 */
const char *ferry_server_options_json(apr_pool_t *p, server_rec *s);

/* A JSON string literal (quoted, escaped) for s; NULL gives "". */
const char *ferry_json_str(apr_pool_t *p, const char *s);

/* Accessors for the daemon part. Strings are NULL when not configured. */
const char *ferry_conf_root(server_rec *s);                  /* PassengerRoot */
const char *ferry_conf_instance_registry_dir(server_rec *s); /* PassengerInstanceRegistryDir */
const char *ferry_conf_log_file(server_rec *s);              /* PassengerLogFile */
const char *ferry_conf_nodejs(server_rec *s);                /* PassengerNodejs at server level */
const char *ferry_conf_default_user(server_rec *s);          /* default "nobody" (never NULL) */
apr_size_t ferry_conf_response_watermark(server_rec *s);      /* bytes held in memory before spooling (128 KiB) */
const char *ferry_conf_data_buffer_dir(server_rec *s);       /* spool dir; NULL: the system's temp dir */
const char *ferry_conf_default_group(server_rec *s);         /* NULL: primary group of the default user */
int ferry_conf_user_switching(server_rec *s);                /* default 1 */
int ferry_conf_log_level(server_rec *s);                     /* default 3 */
ferry_redeploy_t ferry_conf_redeploy_on_graceful(server_rec *s); /* default FERRY_REDEPLOY_ALL */
const char *ferry_conf_redeploy_name(ferry_redeploy_t v);    /* "all" | "changed" | "off" */

/* Ferry's defaults where Passenger's differ or the core needs them here. */
#define FERRY_DEFAULT_USER               "nobody"
#define FERRY_DEFAULT_LOG_LEVEL          3
#define FERRY_DEFAULT_STAT_THROTTLE_RATE 1   /* s; Passenger: 10 */
#define FERRY_DEFAULT_APP_ENV            "production"
#define FERRY_DEFAULT_STARTUP_FILE       "app.js"

#endif
