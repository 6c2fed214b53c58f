/*
 * ngx_http_ferry_head.c: which app a request belongs to (the map:
 * passenger_base_uri, the app root, the app type, no app detected →
 * declined, as Passenger's content handler), and the REQUEST_HEAD of a
 * request (docs/protocol.md): its method, URI (nginx's rewritten one when
 * it changed), headers (hop-by-hop ones left out), client and server
 * addresses, and the app options and environment of its location;
 * whether it asks for an upgrade.
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

/* The location's root for r, evaluated (nginx's `root` or `alias`, its
 * variables and captures included, as nginx's static module maps a URI),
 * without a trailing "/". */
static ngx_int_t
location_root(ngx_http_request_t *r, ngx_str_t *root)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_str_t                  path;
    size_t                     len;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (clcf->root_lengths == NULL) {
        *root = clcf->root;
    } else {
        if (ngx_http_map_uri_to_path(r, &path, &len, 0) == NULL) {
            return NGX_ERROR;
        }
        root->data = path.data;
        root->len = len;
    }
    while (root->len > 1 && root->data[root->len - 1] == '/') {
        root->len--;
    }
    return NGX_OK;
}

/* Is there an app in root: its startup file (passenger_startup_file, else
 * app.js) a regular file? Passenger's detector, for the apps Ferry runs
 * (a file the worker may not look at counts as there).
 * The worker remembers the last answer of each location for
 * passenger_stat_throttle_rate (default 1 s), so a busy app costs no
 * stat() per request. */
static ngx_int_t
app_detected(ngx_http_request_t *r, ngx_http_ferry_loc_conf_t *lcf,
    ngx_str_t *root)
{
    ngx_http_ferry_main_conf_t  *mcf;
    ngx_http_ferry_value_t      *v;
    ngx_file_info_t              fi;
    ngx_str_t                    file, path;
    ngx_msec_t                   throttle = 1000;
    u_char                      *p;

    v = ngx_http_ferry_value(lcf->app, "startup_file");
    if (v != NULL) {
        file = v->str;
    } else {
        ngx_str_set(&file, "app.js");
    }
    if (file.data[0] == '/') {
        path.len = file.len;
    } else {
        path.len = root->len + 1 + file.len;
    }
    path.data = ngx_pnalloc(r->pool, path.len + 1);
    if (path.data == NULL) {
        return NGX_ERROR;
    }
    p = path.data;
    if (file.data[0] != '/') {
        p = ngx_cpymem(p, root->data, root->len);
        *p++ = '/';
    }
    p = ngx_cpymem(p, file.data, file.len);
    *p = '\0';

    mcf = ngx_http_get_module_main_conf(r, ngx_http_ferry_module);
    v = ngx_http_ferry_value(mcf->server, "stat_throttle_rate");
    if (v != NULL) {
        throttle = (ngx_msec_t) v->num * 1000;
    }
    if (throttle > 0 && lcf->detect_root.data != NULL
        && lcf->detect_root.len == path.len
        && ngx_memcmp(lcf->detect_root.data, path.data, path.len) == 0
        && ngx_current_msec - lcf->detect_at < throttle)
    {
        return lcf->detect_found ? NGX_OK : NGX_DECLINED;
    }
    /* Only a startup file that is not there means no app: one the worker
     * may not see (EACCES: a tenant's app, the core spawns as root) is
     * the core's to judge. */
    if (ngx_file_info(path.data, &fi) == NGX_FILE_ERROR) {
        lcf->detect_found = ngx_errno != NGX_ENOENT && ngx_errno != NGX_ENOTDIR;
    } else {
        lcf->detect_found = ngx_is_file(&fi) != 0;
    }
    lcf->detect_at = ngx_current_msec;
    if (lcf->detect_root.len != path.len || lcf->detect_root.data == NULL
        || ngx_memcmp(lcf->detect_root.data, path.data, path.len) != 0)
    {
        if (lcf->detect_root.data != NULL) {
            ngx_free(lcf->detect_root.data);
        }
        lcf->detect_root.data = ngx_alloc(path.len, r->connection->log);
        lcf->detect_root.len = lcf->detect_root.data ? path.len : 0;
        if (lcf->detect_root.data != NULL) {
            ngx_memcpy(lcf->detect_root.data, path.data, path.len);
        }
    }
    return lcf->detect_found ? NGX_OK : NGX_DECLINED;
}

/* Passenger's content handler, for the apps Ferry runs: the base URI that
 * matched; the public dir (the location's root, or with a base URI
 * passenger_document_root, else root + base URI with its symlink
 * resolved, as Passenger's docs set sub-URI apps up:
 * `ln -s /srv/sub/public /srv/main/public/sub`); the app root
 * (passenger_app_root, else the public dir's parent); the app type
 * (passenger_app_start_command: generic; passenger_app_type: node,
 * nodejs, generic, Passenger's other languages refused; else an app only
 * where its startup file is, as Passenger's detector: else declined). */
ngx_int_t
ngx_http_ferry_map(ngx_http_request_t *r, ngx_http_ferry_map_t *m)
{
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_ferry_value_t     *v, *type;
    ngx_str_t                   root;
    u_char                     *p;
    ngx_int_t                   rc;
    char                        resolved[PATH_MAX];

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    ngx_memzero(m, sizeof(*m));
    m->base = match_base_uri(r, lcf);

    v = ngx_http_ferry_value(lcf->app, "app_root");
    if (v != NULL) {
        root = v->str;
    } else {
        v = ngx_http_ferry_value(lcf->app, "document_root");
        if (m->base != NULL && v != NULL) {
            root = v->str;
        } else if (location_root(r, &root) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        if (m->base != NULL) {
            p = ngx_pnalloc(r->pool, root.len + m->base->len + 1);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            if (v != NULL) {
                ngx_memcpy(p, root.data, root.len);
                p[root.len] = '\0';
            } else {
                ngx_memcpy(p, root.data, root.len);
                ngx_memcpy(p + root.len, m->base->data, m->base->len);
                p[root.len + m->base->len] = '\0';
                root.len += m->base->len;
            }
            root.data = p;
            if (realpath((char *) p, resolved) != NULL) {
                root.len = ngx_strlen(resolved);
                root.data = ngx_pnalloc(r->pool, root.len);
                if (root.data == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
                ngx_memcpy(root.data, resolved, root.len);
            }
        }
        parent_dir(&root);
        m->app_root.data = (u_char *) cstr(r->pool, &root);
        m->app_root.len = root.len;
    }

    type = ngx_http_ferry_value(lcf->app, "app_type");
    if (ngx_http_ferry_value(lcf->app, "app_start_command") != NULL) {
        m->app_type = "generic";
    } else if (type != NULL) {
        if (ngx_strcmp(type->str.data, "node") == 0
            || ngx_strcmp(type->str.data, "nodejs") == 0)
        {
            m->app_type = "node";
        } else if (ngx_strcmp(type->str.data, "generic") == 0) {
            m->app_type = "generic";
        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "FERRY0457: Cannot serve %V app %V: Ferry runs "
                          "Node.js and generic (passenger_app_start_command) "
                          "apps only", &type->str, &root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    } else {
        rc = app_detected(r, lcf, &root);
        if (rc != NGX_OK) {
            return rc == NGX_DECLINED ? NGX_DECLINED
                                      : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    v = ngx_http_ferry_value(lcf->app, "custom_error_page");
    if (v != NULL) {
        if (v->str.data[0] == '/') {
            m->error_page = (const char *) v->str.data;
        } else {
            p = ngx_pnalloc(r->pool, root.len + 1 + v->str.len + 1);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            m->error_page = (const char *) p;
            p = ngx_cpymem(p, root.data, root.len);
            *p++ = '/';
            p = ngx_cpymem(p, v->str.data, v->str.len);
            *p = '\0';
        }
    }
    return NGX_OK;
}

/* The app options: every value set for this location (app_type and
 * custom_error_page as ngx_http_ferry_map() made them), plus what the
 * map derived: app_root (when unset), base_uri. */
static size_t
app_options(ngx_http_request_t *r, ngx_http_ferry_loc_conf_t *lcf,
    ngx_http_ferry_map_t *m, ferry_opt_t **out)
{
    ngx_http_ferry_value_t    *v;
    ferry_opt_t               *o;
    ngx_uint_t                 i, n = lcf->app ? lcf->app->nelts : 0, k = 0;

    o = ngx_pcalloc(r->pool, sizeof(ferry_opt_t) * (n + 4));
    if (o == NULL) {
        return 0;
    }
    v = lcf->app ? lcf->app->elts : NULL;
    for (i = 0; i < n; i++) {
        if (ngx_strcmp(v[i].opt->key, "app_type") == 0
            || ngx_strcmp(v[i].opt->key, "custom_error_page") == 0)
        {
            continue;
        }
        o[k].key = v[i].opt->key;
        switch (v[i].opt->type) {
        case NGX_HTTP_FERRY_STR:
            o[k].type = FERRY_OPT_STR;
            /* values are NUL-terminated (nginx's config parser) */
            o[k].s = (const char *) v[i].str.data;
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
    if (m->app_type != NULL) {
        o[k].key = "app_type";
        o[k].type = FERRY_OPT_STR;
        o[k].s = m->app_type;
        k++;
    }
    if (m->error_page != NULL) {
        o[k].key = "custom_error_page";
        o[k].type = FERRY_OPT_STR;
        o[k].s = m->error_page;
        k++;
    }
    if (m->app_root.len > 0) {
        o[k].key = "app_root";
        o[k].type = FERRY_OPT_STR;
        o[k].s = (const char *) m->app_root.data;
        k++;
    }
    if (m->base != NULL) {
        o[k].key = "base_uri";
        o[k].type = FERRY_OPT_STR;
        o[k].s = cstr(r->pool, m->base);
        k++;
    }
    *out = o;
    return k;
}

/* The request's URI as the app gets it: the client's bytes unless nginx
 * changed the URI (rewrite, try_files, error_page, an internal redirect):
 * then the new one, escaped, with its arguments (as Passenger sends it). */
static const char *
request_uri(ngx_http_request_t *r)
{
    uintptr_t  n;
    size_t     len;
    u_char    *p, *last;

    if (r->valid_unparsed_uri) {
        return cstr(r->pool, &r->unparsed_uri);
    }
    n = ngx_escape_uri(NULL, r->uri.data, r->uri.len, NGX_ESCAPE_URI);
    len = r->uri.len + 2 * n + (r->args.len ? 1 + r->args.len : 0);
    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }
    last = (u_char *) ngx_escape_uri(p, r->uri.data, r->uri.len,
                                     NGX_ESCAPE_URI);
    if (r->args.len) {
        *last++ = '?';
        last = ngx_cpymem(last, r->args.data, r->args.len);
    }
    *last = '\0';
    return (const char *) p;
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

/* Does a passenger_set_header name this header? */
static int
set_by_config(ngx_http_ferry_set_header_t *set, ngx_uint_t nset,
    ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < nset; i++) {
        if (set[i].name.len == name->len
            && ngx_strncasecmp(set[i].name.data, name->data, name->len) == 0)
        {
            return 1;
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
ngx_http_ferry_head_init(ngx_http_request_t *r, ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_map_t *m)
{
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_core_srv_conf_t   *cscf;
    ferry_request_head_t       *h = &ctx->head;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *hdr;
    ngx_keyval_t               *kv;
    const char                **headers, **env = NULL;
    ferry_opt_t                *app = NULL;
    ngx_http_ferry_set_header_t *set;
    ngx_str_t                   sv;
    ngx_uint_t                  i, n = 0, total = 0, nset;
    u_char                      addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                   local;
    int                         upgrade = wants_upgrade(r);

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ferry_module);
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        total += part->nelts;
    }
    nset = lcf->set_headers ? lcf->set_headers->nelts : 0;
    set = nset ? lcf->set_headers->elts : NULL;
    headers = ngx_palloc(r->pool, sizeof(char *) * 2 * (total + nset + 1));
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
            if (set_by_config(set, nset, &hdr[i].key)) {
                continue;           /* passenger_set_header replaces it */
            }
            headers[2 * n] = cstr(r->pool, &hdr[i].key);
            headers[2 * n + 1] = cstr(r->pool, &hdr[i].value);
            n++;
        }
    }
    for (i = 0; i < nset; i++) {
        if (ngx_http_complex_value(r, &set[i].value, &sv) != NGX_OK) {
            return NGX_ERROR;
        }
        if (sv.len == 0) {
            continue;               /* an empty value: not sent */
        }
        headers[2 * n] = (const char *) set[i].name.data;
        headers[2 * n + 1] = cstr(r->pool, &sv);
        n++;
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
    h->uri = request_uri(r);
    if (h->uri == NULL) {
        return NGX_ERROR;
    }
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
    h->napp = app_options(r, lcf, m, &app);
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
