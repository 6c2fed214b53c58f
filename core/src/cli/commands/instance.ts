/** Finding the running instance a CLI command talks to (`--instance`, or the only one running). */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { defaultRegistryDir } from "../../config/load.js";
import { findInstances, readInstance, type InstanceInfo } from "../../control/client.js";
import type { CliIo } from "../io.js";

export class InstanceChoiceError extends Error {}

/**
 * `--instance` may be an instance dir, a control socket path, or a name under the
 * registry dir; without it the registry dir (`--instance-registry-dir`,
 * PASSENGER_INSTANCE_REGISTRY_DIR, $TMPDIR, /tmp) must hold exactly one instance.
 */
export async function chooseInstance(io: CliIo, instance: string | undefined, registry: string | undefined): Promise<InstanceInfo> {
  const registryDir = registry ?? io.env["PASSENGER_INSTANCE_REGISTRY_DIR"] ?? defaultRegistryDir(io.env);
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
  const all = await findInstances(registryDir);
  if (all.length === 1 && all[0] !== undefined) return all[0];
  if (all.length === 0) {
    throw new InstanceChoiceError(`Cannot find a running Ferry instance in ${registryDir} (is it running? pass --instance or --instance-registry-dir)`);
  }
  const names = all.map((i) => `  ${path.basename(i.dir)}  ${typeof i.properties["app_root"] === "string" ? i.properties["app_root"] : ""}`);
  throw new InstanceChoiceError(`Cannot choose an instance: ${all.length} are running in ${registryDir}; pass --instance NAME:\n${names.join("\n")}`);
}
