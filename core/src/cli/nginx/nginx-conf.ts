/**
 * The nginx configuration text `ferry nginx` writes (the nginx counterpart of
 * cli/apache/httpd-conf.ts and cli/apache/debian-snippets.ts): the nginx.conf
 * of a private development instance (`ferry nginx start`) and the three
 * snippets of Debian's nginx layout (`ferry nginx install`): the load_module
 * line for /etc/nginx/modules-enabled, the http-level settings for
 * /etc/nginx/conf.d and an example site for /etc/nginx/sites-available.
 * Pure functions: no I/O.
 */
import net from "node:net";
import path from "node:path";

/** nginx quotes a value with spaces, quotes, braces or semicolons. */
export function nginxQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The module file of an install. */
export function nginxModulePath(root: string): string {
  return path.join(root, "build", "nginx", "ngx_http_ferry_module.so");
}

export interface NginxDevConfig {
  /** The instance's prefix: conf/, logs/, run/ and tmp/ live in it. */
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  readonly appDir: string;
  readonly documentRoot: string;
  readonly environment: string;
  readonly modulePath: string;
  /** passenger_root: the install. */
  readonly root: string;
  readonly nodejs: string;
  /** The `user` line when nginx starts as root, else a comment. */
  readonly runAs: string;
  /** /etc/nginx/mime.types when it exists. */
  readonly mimeTypes?: string | undefined;
}

/** The nginx.conf of a private development instance: one server, the app. */
export function renderNginxDevConfig(c: NginxDevConfig): string {
  const listen = net.isIPv6(c.address) ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`;
  const dir = (...p: string[]): string => nginxQuote(path.join(c.dir, ...p));
  return [
    `# Private nginx for "ferry nginx start" (generated; edits are overwritten).`,
    `load_module ${nginxQuote(c.modulePath)};`,
    c.runAs,
    `worker_processes 2;`,
    `daemon off;`,
    `master_process on;`,
    `pid ${dir("run", "nginx.pid")};`,
    `error_log ${dir("logs", "error.log")} notice;`,
    ``,
    `events {`,
    `    worker_connections 1024;`,
    `}`,
    ``,
    `http {`,
    c.mimeTypes !== undefined ? `    include ${nginxQuote(c.mimeTypes)};` : `    # no mime.types found`,
    `    default_type application/octet-stream;`,
    `    access_log ${dir("logs", "access.log")};`,
    `    client_body_temp_path ${dir("tmp", "body")};`,
    `    proxy_temp_path ${dir("tmp", "proxy")};`,
    `    fastcgi_temp_path ${dir("tmp", "fastcgi")};`,
    `    uwsgi_temp_path ${dir("tmp", "uwsgi")};`,
    `    scgi_temp_path ${dir("tmp", "scgi")};`,
    ``,
    `    passenger_root ${nginxQuote(c.root)};`,
    `    passenger_nodejs ${nginxQuote(c.nodejs)};`,
    ``,
    `    server {`,
    `        listen ${listen};`,
    `        server_name _;`,
    `        root ${nginxQuote(c.documentRoot)};`,
    `        passenger_enabled on;`,
    `        passenger_app_root ${nginxQuote(c.appDir)};`,
    `        passenger_app_env ${c.environment};`,
    `        client_max_body_size 100m;`,
    `    }`,
    `}`,
    ``,
  ].join("\n");
}

/** modules-enabled/50-mod-http-ferry.conf: the load_module line (main context). */
export function renderNginxLoadSnippet(root: string): string {
  return [
    `# Written by "ferry nginx install": loads Ferry's nginx module (main context).`,
    `load_module ${nginxQuote(nginxModulePath(root))};`,
    ``,
  ].join("\n");
}

/** conf.d/ferry.conf: the server-wide settings (http context, one per nginx). */
export function renderNginxHttpSnippet(root: string, nodejs: string): string {
  return [
    `# Written by "ferry nginx install": Ferry's server-wide settings (http context;`,
    `# Debian's nginx.conf includes conf.d/*.conf inside http {}). Per-app settings`,
    `# belong in a server or location block (see sites-available/ferry, docs/nginx.md).`,
    `passenger_root ${nginxQuote(root)};`,
    `passenger_nodejs ${nginxQuote(nodejs)};`,
    `# passenger_default_user nobody;`,
    `# passenger_max_pool_size 6;`,
    `# passenger_pool_idle_time 300;`,
    `# What "nginx -s reload" redeploys: all | changed | off`,
    `# passenger_redeploy_on_graceful all;`,
    ``,
  ].join("\n");
}

export interface NginxSiteOptions {
  readonly serverName: string;
  readonly appDir: string;
  readonly port: number;
}

/** sites-available/ferry: one app's server block, the Passenger way. */
export function renderNginxSiteSnippet(o: NginxSiteOptions): string {
  return [
    `# Written by "ferry nginx install": serves the Node app in ${o.appDir}.`,
    `# Enable with: ln -s ../sites-available/ferry /etc/nginx/sites-enabled/ferry`,
    `server {`,
    `    listen ${o.port};`,
    `    server_name ${o.serverName};`,
    `    # The app's public/ files are served by nginx; everything else by the app.`,
    `    root ${nginxQuote(path.join(o.appDir, "public"))};`,
    `    passenger_enabled on;`,
    `    passenger_app_env production;`,
    `    # passenger_min_instances 1;`,
    `    # passenger_sticky_sessions on;`,
    `    client_max_body_size 50m;`,
    `}`,
    ``,
  ].join("\n");
}
