/*
 * ferry_detect.h: which kind of app lives in an app root, as Passenger's
 * autodetection finds it (reference/passenger.md §1.2): Passengerfile.json's
 * app_start_command (generic), a startup file (Node), or a Ruby/Python/
 * Meteor app that is not ours; cached per app root and startup file for
 * PassengerStatThrottleRate seconds in a small mutex-protected per-child
 * cache. ferry_map.c asks it in step 5 of its decision.
 */
#ifndef FERRY_DETECT_H
#define FERRY_DETECT_H

#include "httpd.h"
#include "apr_pools.h"

typedef enum {
    FERRY_DETECT_NONE = 0,   /* nothing we know */
    FERRY_DETECT_NODE,       /* startup file present */
    FERRY_DETECT_GENERIC,    /* Passengerfile.json app_start_command */
    FERRY_DETECT_OTHER,      /* a Ruby/Python/Meteor app: not ours */
    FERRY_DETECT_EACCES      /* the app root cannot be searched */
} ferry_detect_kind_e;

typedef struct {
    ferry_detect_kind_e kind;
    const char *start_command;     /* FERRY_DETECT_GENERIC */
    apr_status_t rv;               /* FERRY_DETECT_EACCES */
} ferry_detect_t;

/* child_init hook: the per-child detection cache. */
void ferry_detect_child_init(apr_pool_t *p, server_rec *s);

/* What app_root holds (with startup_file, a configured startup file, probed
 * first; NULL for none). Allocates from r->pool. */
void ferry_detect(request_rec *r, const char *app_root, const char *startup_file,
                  ferry_detect_t *out);

/* Whether dir/name exists: 1 = a regular file (or a directory with
 * want_dir), 0 = no, -1 = it cannot be searched (EACCES, then in *rvp). */
int ferry_detect_probe(apr_pool_t *p, const char *dir, const char *name, int want_dir,
                       apr_status_t *rvp);

#endif /* FERRY_DETECT_H */
