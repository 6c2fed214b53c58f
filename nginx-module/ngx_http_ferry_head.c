/*
 * ngx_http_ferry_head.c: the REQUEST_HEAD of a request (docs/protocol.md):
 * its method, URI, headers (hop-by-hop ones left out), client and server
 * addresses, and the app options and environment of its location; the
 * passenger_base_uri that matched; whether it asks for an upgrade.
 */
#include "ngx_http_ferry.h"
#include <limits.h>
#include <stdlib.h>

/* A NUL-terminated copy of s. */
static const char *
cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p = ngx_pnalloc(pool, s->len + 1);

    if (p == NULL) {
        return "";
    }
    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';
    return (const char *) p;
}

/* A server block's first server_name that names one host (nginx lowers it
 * and drops a leading "."): not empty, not "_" or another catch-all, not a
 * wildcard or a regex. */
static int
plain_server_name(ngx_str_t *name)
{
    size_t  i;
    u_char  ch;

    if (name->len == 0) {
        return 0;
    }
    for (i = 0; i < name->len; i++) {
        ch = name->data[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
              || ch == '-' || ch == '.'))
        {
            return 0;
        }
    }
    return 1;
}

/* The first passenger_base_uri equal to the URI or a prefix of it followed
 * by "/" ("/" itself is ignored), as PassengerBaseURI: NULL when none. */
static ngx_str_t *
match_base_uri(ngx_http_request_t *r, ngx_http_ferry_loc_conf_t *lcf)
{
    ngx_str_t   *b;
    ngx_uint_t   i;

    if (lcf->base_uris == NULL) {
        return NULL;
    }
    b = lcf->base_uris->elts;
    for (i = 0; i < lcf->base_uris->nelts; i++) {
        if (b[i].len <= 1 || b[i].len > r->uri.len
            || ngx_strncmp(r->uri.data, b[i].data, b[i].len) != 0)
        {
            continue;
        }
        if (r->uri.len == b[i].len || r->uri.data[b[i].len] == '/') {
            return &b[i];
        }
    }
    return NULL;
}

/* The parent directory of path (no trailing "/"), "/" for a top-level one. */
static void
parent_dir(ngx_str_t *path)
{
    while (path->len > 1 && path->data[path->len - 1] == '/') {
        path->len--;
    }
    while (path->len > 1 && path->data[path->len - 1] != '/') {
        path->len--;
    }
    if (path->len > 1) {
        path->len--;
    }
}

/* The app options: every value set for this location, plus what the
 * module derives: app_root (when unset) from the location's root (its
 * parent, as Passenger does with an app's public/ dir) or, when a
 * passenger_base_uri matched, from root + base URI with its symlink
 * resolved; base_uri. */
static size_t
app_options(ngx_http_request_t *r, ngx_http_ferry_loc_conf_t *lcf,
    ngx_str_t *base, ferry_opt_t **out)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_ferry_value_t    *v;
    ferry_opt_t               *o;
    ngx_uint_t                 i, n = lcf->app ? lcf->app->nelts : 0, k = 0;
    ngx_str_t                  root;
    u_char                    *p;
    char                       resolved[PATH_MAX];

    o = ngx_pcalloc(r->pool, sizeof(ferry_opt_t) * (n + 3));
    if (o == NULL) {
        return 0;
    }
    v = lcf->app ? lcf->app->elts : NULL;
    for (i = 0; i < n; i++) {
        o[k].key = v[i].opt->key;
        switch (v[i].opt->type) {
        case NGX_HTTP_FERRY_STR:
            o[k].type = FERRY_OPT_STR;
            o[k].s = cstr(r->pool, &v[i].str);
            break;
        case NGX_HTTP_FERRY_FLAG:
            o[k].type = FERRY_OPT_BOOL;
            o[k].i = v[i].num;
            break;
        default:
            o[k].type = FERRY_OPT_INT;
            o[k].i = v[i].num;
        }
        k++;
    }
    if (ngx_http_ferry_value(lcf->app, "app_root") == NULL) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        root = clcf->root;
        while (root.len > 1 && root.data[root.len - 1] == '/') {
            root.len--;
        }
        if (base != NULL) {
            /* the public dir is root + base URI (a symlink to the app's
             * public/ dir, as Passenger's docs set it up) */
            p = ngx_pnalloc(r->pool, root.len + base->len + 1);
            if (p == NULL) {
                return 0;
            }
            ngx_memcpy(p, root.data, root.len);
            ngx_memcpy(p + root.len, base->data, base->len);
            p[root.len + base->len] = '\0';
            root.data = p;
            root.len += base->len;
            if (realpath((char *) p, resolved) != NULL) {
                root.len = ngx_strlen(resolved);
                root.data = ngx_pnalloc(r->pool, root.len);
                if (root.data == NULL) {
                    return 0;
                }
                ngx_memcpy(root.data, resolved, root.len);
            }
        }
        parent_dir(&root);
        o[k].key = "app_root";
        o[k].type = FERRY_OPT_STR;
        o[k].s = cstr(r->pool, &root);
        k++;
    }
    if (base != NULL) {
        o[k].key = "base_uri";
        o[k].type = FERRY_OPT_STR;
        o[k].s = cstr(r->pool, base);
        k++;
    }
    *out = o;
    return k;
}

/* Does the request ask for an upgrade (HTTP/1.1, no body, an Upgrade
 * header and "upgrade" among the Connection tokens)? */
static int
wants_upgrade(ngx_http_request_t *r)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;
    u_char           *p, *end, *t;

    if (r->headers_in.upgrade == NULL
        || r->http_version != NGX_HTTP_VERSION_11
        || r->headers_in.content_length_n > 0 || r->headers_in.chunked)
    {
        return 0;
    }
    /* nginx 1.22 keeps no pointer to Connection: every such header */
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len != 10
                || ngx_strncasecmp(h[i].key.data, (u_char *) "Connection", 10) != 0)
            {
                continue;
            }
            p = h[i].value.data;
            end = p + h[i].value.len;
            while (p < end) {
                while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
                    p++;
                }
                t = p;
                while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
                    p++;
                }
                if (p - t == 7 && ngx_strncasecmp(t, (u_char *) "upgrade", 7) == 0) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* The app's cache key: (app_root, app_env, app_group_name) as sent. */
static ngx_int_t
app_key(ngx_http_request_t *r, ngx_http_ferry_ctx_t *ctx)
{
    const char  *parts[3] = { "app_root", "app_env", "app_group_name" };
    const char  *val[3] = { "", "", "" };
    size_t       i, j, len = 0;
    u_char      *p;

    for (i = 0; i < ctx->head.napp; i++) {
        for (j = 0; j < 3; j++) {
            if (ctx->head.app[i].type == FERRY_OPT_STR
                && ngx_strcmp(ctx->head.app[i].key, parts[j]) == 0)
            {
                val[j] = ctx->head.app[i].s;
            }
        }
    }
    for (j = 0; j < 3; j++) {
        len += ngx_strlen(val[j]) + 1;
    }
    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    ctx->app_key.data = p;
    for (j = 0; j < 3; j++) {
        p = ngx_cpymem(p, val[j], ngx_strlen(val[j]));
        *p++ = '\n';
    }
    *p = '\0';                       /* a C string too (the pass table's) */
    ctx->app_key.len = len;
    return NGX_OK;
}

ngx_int_t
ngx_http_ferry_head_init(ngx_http_request_t *r, ngx_http_ferry_ctx_t *ctx)
{
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_core_srv_conf_t   *cscf;
    ferry_request_head_t       *h = &ctx->head;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *hdr;
    ngx_keyval_t               *kv;
    const char                **headers, **env = NULL;
    ferry_opt_t                *app = NULL;
    ngx_uint_t                  i, n = 0, total = 0;
    u_char                      addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                   local;
    int                         upgrade = wants_upgrade(r);

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        total += part->nelts;
    }
    headers = ngx_palloc(r->pool, sizeof(char *) * 2 * (total + 1));
    if (headers == NULL) {
        return NGX_ERROR;
    }
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        hdr = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (hdr[i].hash == 0
                || (hdr[i].key.len == 10 && !upgrade
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Connection", 10) == 0)
                || (hdr[i].key.len == 7 && !upgrade
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Upgrade", 7) == 0)
                || (hdr[i].key.len == 10
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Keep-Alive", 10) == 0)
                || (hdr[i].key.len == 2
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "TE", 2) == 0)
                || (hdr[i].key.len == 16
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Proxy-Connection", 16) == 0)
                || (hdr[i].key.len == 6
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Expect", 6) == 0)
                || (hdr[i].key.len == 17
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Transfer-Encoding", 17) == 0))
            {
                continue;
            }
            headers[2 * n] = cstr(r->pool, &hdr[i].key);
            headers[2 * n + 1] = cstr(r->pool, &hdr[i].value);
            n++;
        }
    }
    if (lcf->env != NULL && lcf->env->nelts > 0) {
        env = ngx_palloc(r->pool, sizeof(char *) * 2 * lcf->env->nelts);
        if (env == NULL) {
            return NGX_ERROR;
        }
        kv = lcf->env->elts;
        for (i = 0; i < lcf->env->nelts; i++) {
            env[2 * i] = (const char *) kv[i].key.data;
            env[2 * i + 1] = (const char *) kv[i].value.data;
        }
    }
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    local.data = addr;
    local.len = NGX_SOCKADDR_STRLEN;
    if (ngx_connection_local_sockaddr(r->connection, &local, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(h, sizeof(*h));
    h->version = FERRY_PROTO_RELAY_VERSION;
    h->method = cstr(r->pool, &r->method_name);
    h->uri = cstr(r->pool, &r->unparsed_uri);
    h->proto = r->http_version == NGX_HTTP_VERSION_10 ? "HTTP/1.0" : "HTTP/1.1";
    h->headers = headers;
    h->nheaders = n;
    h->remote_addr = cstr(r->pool, &r->connection->addr_text);
    h->remote_port = ngx_inet_get_port(r->connection->sockaddr);
    /* The server block's name, as mod_ferry sends the VirtualHost's
     * ServerName (shared affinity keys a site by it: docs/affinity.md);
     * the request's host when the block has no plain first name. */
    h->server_name = plain_server_name(&cscf->server_name)
                     ? cstr(r->pool, &cscf->server_name)
                     : r->headers_in.server.len
                     ? cstr(r->pool, &r->headers_in.server)
                     : cstr(r->pool, &cscf->server_name);
    h->server_port = ngx_inet_get_port(r->connection->local_sockaddr);
#if (NGX_HTTP_SSL)
    h->https = r->connection->ssl != NULL;
#endif
    h->has_body = r->headers_in.content_length_n > 0 || r->headers_in.chunked;
    h->upgrade = upgrade;
    h->gen = ngx_http_ferry_generation();
    h->napp = app_options(r, lcf, match_base_uri(r, lcf), &app);
    if (app == NULL) {
        return NGX_ERROR;
    }
    h->app = app;
    h->env = env;
    h->nenv = env ? lcf->env->nelts : 0;
    ctx->has_body = h->has_body;
    ctx->upgrade = upgrade;
    return app_key(r, ctx);
}
