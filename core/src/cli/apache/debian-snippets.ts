/**
 * The files `ferry apache install` writes for Debian's a2enmod: ferry.load
 * (LoadModule) and ferry.conf (server-wide settings with this install's
 * PassengerRoot and node), from conf/'s templates when they are there.
 */
import path from "node:path";
import { q } from "./httpd-conf.js";

/** ferry.load for a2enmod: LoadModule pointing at this install. */
export function renderLoadFile(root: string, template?: string): string {
  const line = `LoadModule ferry_module ${path.join(root, "build", "apache", "mod_ferry.so")}`;
  if (template !== undefined && /^\s*LoadModule\s+ferry_module\b/m.test(template)) {
    return template.replace(/^\s*LoadModule\s+ferry_module\b.*$/m, line);
  }
  return `# Written by "ferry apache install". Enable with: a2enmod ferry\n${line}\n`;
}

/** ferry.conf for a2enmod: server-wide settings with PassengerRoot (and node) of this install. */
export function renderConfFile(root: string, nodejs: string, template?: string): string {
  const rootLine = `PassengerRoot ${q(root)}`;
  const nodeLine = `PassengerNodejs ${q(nodejs)}`;
  if (template !== undefined && /^\s*#?\s*PassengerRoot\b/m.test(template)) {
    let out = template.replace(/^(\s*)#?\s*PassengerRoot\b.*$/m, `$1${rootLine}`);
    out = /^\s*#?\s*PassengerNodejs\b/m.test(out)
      ? out.replace(/^(\s*)#?\s*PassengerNodejs\b.*$/m, `$1${nodeLine}`)
      : out.replace(rootLine, `${rootLine}\n    ${nodeLine}`);
    return out;
  }
  return [
    `# Written by "ferry apache install": mod_ferry's server-wide settings.`,
    `# Per-app settings belong in your <VirtualHost> (see docs/apache.md).`,
    `<IfModule ferry_module>`,
    `    ${rootLine}`,
    `    ${nodeLine}`,
    `    # PassengerDefaultUser nobody`,
    `    # PassengerMaxPoolSize 6`,
    `    # PassengerPoolIdleTime 300`,
    `    # What "apachectl graceful" redeploys: all | changed | off`,
    `    # PassengerRedeployOnGraceful all`,
    `</IfModule>`,
    ``,
  ].join("\n");
}
