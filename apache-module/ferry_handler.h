/*
 * ferry_handler.h: the handler hook (implemented in ferry_handler.c),
 * registered by mod_ferry.c.
 */
#ifndef FERRY_HANDLER_H
#define FERRY_HANDLER_H

#include "httpd.h"

/* Serve r through the core when ferry_request_app(r) says it belongs to an
 * app; DECLINED otherwise. */
int ferry_handler(request_rec *r);

/* child_init: the data path switch (protocol v3, the direct path, unless
 * Apache's environment has FERRY_DATA_PATH=relay) and the child's app
 * connection cache. */
void ferry_handler_child_init(apr_pool_t *pchild, server_rec *s);

/* post_config (the parent, each generation): the in-flight counts all of
 * this generation's children share (ferry_pass_shared_create). */
int ferry_handler_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);

#endif
