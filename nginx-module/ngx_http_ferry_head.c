/*
 * ngx_http_ferry_head.c: the REQUEST_HEAD of a request (docs/protocol.md):
 * its method, URI, headers (hop-by-hop ones left out), client and server
 * addresses, and the app options and environment of its location.
 */
#include "ngx_http_ferry.h"
#include "ferry_proto.h"

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

/* The app options: every value set for this location, plus what the
 * module derives (app_root from the location's root when unset). */
static size_t
app_options(ngx_http_request_t *r, ngx_http_ferry_loc_conf_t *lcf,
    ferry_opt_t **out)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_ferry_value_t    *v;
    ferry_opt_t               *o;
    ngx_uint_t                 i, n = lcf->app ? lcf->app->nelts : 0, k = 0;
    ngx_str_t                  root;

    o = ngx_pcalloc(r->pool, sizeof(ferry_opt_t) * (n + 2));
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
        /* Passenger: the app root is the parent of the location's root
         * (its public/ dir) */
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        root = clcf->root;
        while (root.len > 1 && root.data[root.len - 1] == '/') {
            root.len--;
        }
        while (root.len > 1 && root.data[root.len - 1] != '/') {
            root.len--;
        }
        if (root.len > 1) {
            root.len--;         /* the parent, without its trailing "/" */
        }
        o[k].key = "app_root";
        o[k].type = FERRY_OPT_STR;
        o[k].s = cstr(r->pool, &root);
        k++;
    }
    *out = o;
    return k;
}

ngx_int_t
ngx_http_ferry_head_encode(ngx_http_request_t *r, msgpack_sbuffer *out,
    int has_body)
{
    ngx_http_ferry_loc_conf_t  *lcf;
    ngx_http_core_srv_conf_t   *cscf;
    ferry_request_head_t        h;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *hdr;
    ngx_keyval_t               *kv;
    const char                **headers, **env = NULL;
    ferry_opt_t                *app = NULL;
    ngx_uint_t                  i, n = 0, total = 0;
    u_char                      addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                   local;

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
                || (hdr[i].key.len == 10
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Connection", 10) == 0)
                || (hdr[i].key.len == 10
                    && ngx_strncasecmp(hdr[i].key.data, (u_char *) "Keep-Alive", 10) == 0)
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

    ngx_memzero(&h, sizeof(h));
    h.version = FERRY_PROTO_RELAY_VERSION;
    h.method = cstr(r->pool, &r->method_name);
    h.uri = cstr(r->pool, &r->unparsed_uri);
    h.proto = r->http_version == NGX_HTTP_VERSION_10 ? "HTTP/1.0" : "HTTP/1.1";
    h.headers = headers;
    h.nheaders = n;
    h.remote_addr = cstr(r->pool, &r->connection->addr_text);
    h.remote_port = ngx_inet_get_port(r->connection->sockaddr);
    h.server_name = r->headers_in.server.len
                    ? cstr(r->pool, &r->headers_in.server)
                    : cstr(r->pool, &cscf->server_name);
    h.server_port = ngx_inet_get_port(r->connection->local_sockaddr);
#if (NGX_HTTP_SSL)
    h.https = r->connection->ssl != NULL;
#endif
    h.has_body = has_body;
    h.upgrade = 0;
    h.gen = ngx_http_ferry_generation();
    h.napp = app_options(r, lcf, &app);
    h.app = app;
    h.env = env;
    h.nenv = env ? lcf->env->nelts : 0;

    if (ferry_encode_request_head(out, &h) != 0) {
        return NGX_ERROR;
    }
    return NGX_OK;
}
