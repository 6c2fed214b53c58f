/** Finding the running instance a CLI command talks to (`--instance`, or the only one running). */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { defaultRegistryDir } from "../../config/standalone-config.js";
import { findInstances, readInstance, type InstanceInfo } from "../../control/client.js";
import type { CliIo } from "../io.js";

export class InstanceChoiceError extends Error {}

/**
 * Apache's usual DefaultRuntimeDir (Debian, RHEL), where mod_ferry keeps its
 * core's instance dir unless PassengerInstanceRegistryDir says otherwise.
 * Searched when no registry dir is given and the default one holds no instance,
 * as passenger-status also finds Apache's instances.
 */
export const APACHE_RUNTIME_DIRS: readonly string[] = ["/var/run/apache2", "/run/apache2", "/var/run/httpd", "/run/httpd"];

/** Running instances under several registry dirs, each instance once (/var/run is often /run). */
export async function findInstancesIn(dirs: readonly string[]): Promise<InstanceInfo[]> {
  const seen = new Set<string>();
  const out: InstanceInfo[] = [];
  for (const dir of dirs) {
    for (const inst of await findInstances(dir)) {
      const real = await fsp.realpath(inst.dir).catch(() => inst.dir);
      if (seen.has(real)) continue;
      seen.add(real);
      out.push(inst);
    }
  }
  return out;
}

/**
 * `--instance` may be an instance dir, a control socket path, or a name under the
 * registry dir; without it the registry dir (`--instance-registry-dir`,
 * PASSENGER_INSTANCE_REGISTRY_DIR, $TMPDIR, /tmp) must hold exactly one instance;
 * when none is given and $TMPDIR//tmp holds none, Apache's runtime dirs are searched.
 */
export async function chooseInstance(
  io: CliIo, instance: string | undefined, registry: string | undefined, apacheDirs: readonly string[] = APACHE_RUNTIME_DIRS,
): Promise<InstanceInfo> {
  const explicit = registry ?? io.env["PASSENGER_INSTANCE_REGISTRY_DIR"];
  let registryDir = explicit ?? defaultRegistryDir(io.env);
  if (instance !== undefined) {
    let dir = path.isAbsolute(instance) || instance.includes("/") ? path.resolve(io.cwd, instance) : path.join(registryDir, instance);
    try {
      if ((await fsp.stat(dir)).isSocket()) dir = path.dirname(dir);
    } catch {
      // reported below
    }
    const inst = await readInstance(dir);
    if (inst === undefined) throw new InstanceChoiceError(`Cannot find a running Ferry instance at ${dir}`);
    return inst;
  }
  let all = await findInstances(registryDir);
  let fallback = false;
  if (all.length === 0 && explicit === undefined && apacheDirs.length > 0) {
    all = await findInstancesIn(apacheDirs);
    registryDir = [registryDir, ...apacheDirs].join(", ");
    fallback = true;
  }
  if (all.length === 1 && all[0] !== undefined) return all[0];
  if (all.length === 0) {
    throw new InstanceChoiceError(`Cannot find a running Ferry instance in ${registryDir} (is it running? pass --instance or --instance-registry-dir)`);
  }
  const names = all.map((i) => `  ${fallback ? i.dir : path.basename(i.dir)}  ${typeof i.properties["app_root"] === "string" ? i.properties["app_root"] : ""}`);
  throw new InstanceChoiceError(`Cannot choose an instance: ${all.length} are running in ${registryDir}; pass --instance NAME:\n${names.join("\n")}`);
}
