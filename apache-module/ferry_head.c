/*
 * ferry_head.c: Step One's second half: the REQUEST_HEAD fields of a
 * request (docs/protocol.md "REQUEST_HEAD" and "What the module (C side)
 * does"): the client's headers without hop-by-hop ones, Cookie joined with
 * "; ", client and server addresses, TLS, the app options and environment
 * (ferry_map.c). ferry_proto.c encodes them.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mmn.h"
#include "apr_optional.h"
#include "apr_strings.h"

#if AP_MODULE_MAGIC_AT_LEAST(20120211, 102)
#include "http_ssl.h"            /* ap_ssl_conn_is_ssl(), httpd >= 2.4.47 */
#define FERRY_CONN_IS_SSL(c) ap_ssl_conn_is_ssl(c)
#else
APR_DECLARE_OPTIONAL_FN(int, ssl_is_https, (conn_rec *));
static int ferry_conn_is_ssl(conn_rec *c)
{
    APR_OPTIONAL_FN_TYPE(ssl_is_https) *fn = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);

    return fn != NULL && fn(c);
}
#define FERRY_CONN_IS_SSL(c) ferry_conn_is_ssl(c)
#endif

#include "ferry_daemon.h"
#include "ferry_exchange.h"
#include "ferry_map.h"

APLOG_USE_MODULE(ferry);

/* Request headers that describe this hop only (docs/protocol.md). Expect is
 * answered by Apache itself (100-continue) before the body is read. */
static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive", "Transfer-Encoding", "TE",
    "Proxy-Connection", "Upgrade", "Expect", NULL
};

static int is_hop_by_hop(const char *name, int upgrade)
{
    int i;

    if (upgrade && (!ap_cstr_casecmp(name, "Connection")
                    || !ap_cstr_casecmp(name, "Upgrade"))) {
        return 0;
    }
    for (i = 0; hop_by_hop[i] != NULL; i++) {
        if (!ap_cstr_casecmp(name, hop_by_hop[i])) {
            return 1;
        }
    }
    return 0;
}

/* httpd joins repeated request headers with ", "; for Cookie that makes
 * "a=1, b=2", which cookie parsers read as one cookie. A cookie value cannot
 * hold a comma (RFC 6265 cookie-octet), so ", " is turned into "; ". */
static const char *join_cookies(apr_pool_t *p, const char *val)
{
    char *out = apr_palloc(p, strlen(val) + 1), *o = out;
    const char *s;

    for (s = val; *s != '\0'; s++) {
        if (*s == ',') {
            *o++ = ';';
            continue;
        }
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* The client asks to switch protocols (WebSocket): HTTP/1.1, an Upgrade
 * header, "upgrade" in Connection, and no body. */
int ferry_head_wants_upgrade(request_rec *r)
{
    const char *conn = apr_table_get(r->headers_in, "Connection");
    const char *upgrade = apr_table_get(r->headers_in, "Upgrade");

    return r->proto_num == HTTP_VERSION(1, 1) && upgrade != NULL
           && *upgrade != '\0' && conn != NULL
           && ap_find_token(r->pool, conn, "upgrade")
           && !ap_request_has_body(r);
}

static int is_https(request_rec *r)
{
    const char *https = apr_table_get(r->subprocess_env, "HTTPS");

    return FERRY_CONN_IS_SSL(r->connection)
           || !ap_cstr_casecmp(ap_http_scheme(r), "https")
           || (https != NULL && !ap_cstr_casecmp(https, "on"));
}

void ferry_head_build(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    conn_rec *c = r->connection;
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    const char **headers;
    ferry_request_head_t *h = &ex->head;
    int i, n = 0;

    headers = apr_palloc(r->pool, sizeof(char *) * 2 * (arr->nelts + 1));
    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key == NULL || is_hop_by_hop(e[i].key, ex->upgrade)) {
            continue;
        }
        headers[2 * n] = e[i].key;
        headers[2 * n + 1] = e[i].val ? e[i].val : "";
        if (!ap_cstr_casecmp(e[i].key, "Cookie") && e[i].val != NULL
            && strchr(e[i].val, ',') != NULL) {
            headers[2 * n + 1] = join_cookies(r->pool, e[i].val);
        }
        n++;
    }

    memset(h, 0, sizeof(*h));
    h->version = FERRY_PROTO_RELAY_VERSION;
    h->method = r->method;
    h->uri = ferry_map_app_uri(r);
    h->proto = r->proto_num == HTTP_VERSION(1, 0) ? "HTTP/1.0" : "HTTP/1.1";
    h->headers = headers;
    h->nheaders = (size_t)n;
    h->remote_addr = r->useragent_ip ? r->useragent_ip : c->client_ip;
    h->remote_port = r->useragent_addr ? r->useragent_addr->port
                     : (c->client_addr ? c->client_addr->port : 0);
    h->server_name = r->server->server_hostname ? r->server->server_hostname
                                                : ap_get_server_name(r);
    h->server_port = c->local_addr ? c->local_addr->port
                                   : ap_get_server_port(r);
    h->https = is_https(r);
    h->has_body = ex->has_body;
    h->upgrade = ex->upgrade;
    h->gen = ferry_config_generation();
    h->napp = ferry_app_options(r, ex->app, &h->app);
    h->nenv = ferry_app_env(r, ex->app, &h->env);
}
