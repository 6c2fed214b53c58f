/*
 * ferry_daemon.h: the core daemon owned by the Apache parent (mod_cgid shape).
 * Implemented in ferry_daemon.c. (Contract between the daemon part and the
 * data path / mod_ferry.c.)
 */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include "httpd.h"
#include "http_config.h"

/* post_config hook (registered in mod_ferry.c): on the real pass, start the
 * core or, if one survives from before a graceful/restart, hand it the new
 * config (rewrite config.json, SIGHUP). */
int ferry_daemon_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s);

/* child_init hook: per-child setup (nothing may kill the core from a child). */
void ferry_daemon_child_init(apr_pool_t *p, server_rec *s);

/* Absolute path of the core's module socket (valid in children after post_config). */
const char *ferry_core_socket_path(void);

/* The configuration generation, bumped on every (re)start of Apache. */
apr_int64_t ferry_config_generation(void);

/* The core's pid as last started (0 if unknown), for liveness checks while connecting. */
pid_t ferry_core_pid(void);

#endif
