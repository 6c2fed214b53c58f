/**
 * Pure pool-wide eviction (Passenger's `Pool::forceFreeCapacity()`): when the
 * pool is full and a group needs a process, pick an idle process of ANOTHER
 * group to retire. Fairness: a group holding more than its fair share of the
 * pool yields first, then a group above its minimum, then anyone; within a
 * tier the least recently used idle process goes. When no other group has an
 * idle process and the requester holds less than its fair share, a group
 * above its fair share gives up its least busy process (it drains: finishes
 * its requests, then stops), so one busy app cannot starve the others.
 */

export interface EvictableProcess {
  readonly id: number;
  readonly inFlight: number;
  readonly upgraded: number;
  readonly lastUsedAt: number;
}

export interface EvictableGroup {
  readonly name: string;
  readonly minInstances: number;
  /** Accepting processes of the group. */
  readonly processes: readonly EvictableProcess[];
}

export interface EvictionVictim {
  readonly group: string;
  readonly id: number;
  /** The victim still has requests in flight (fair-share rebalancing): it drains first. */
  readonly busy: boolean;
}

/** The fair share of each group in a pool of `maxPoolSize` shared by `groups` groups (≥ 1). */
export function fairShare(maxPoolSize: number, groups: number): number {
  return Math.max(1, Math.floor(maxPoolSize / Math.max(1, groups)));
}

export function chooseEvictionVictim(
  groups: readonly EvictableGroup[],
  requester: string,
  maxPoolSize: number,
): EvictionVictim | null {
  const share = fairShare(maxPoolSize, groups.length);
  let best: { victim: EvictionVictim; tier: number; lastUsedAt: number } | null = null;
  for (const g of groups) {
    if (g.name === requester) continue;
    const count = g.processes.length;
    const tier = count > share ? 0 : count > g.minInstances ? 1 : 2;
    for (const p of g.processes) {
      if (p.inFlight > 0 || p.upgraded > 0) continue;
      if (best === null || tier < best.tier || (tier === best.tier && p.lastUsedAt < best.lastUsedAt)) {
        best = { victim: { group: g.name, id: p.id, busy: false }, tier, lastUsedAt: p.lastUsedAt };
      }
    }
  }
  if (best !== null) return best.victim;

  // Nothing idle: rebalance toward fair shares.
  const mine = groups.find((g) => g.name === requester)?.processes.length ?? 0;
  if (mine >= share) return null;
  let busiest: EvictableGroup | null = null;
  for (const g of groups) {
    if (g.name === requester || g.processes.length <= share) continue;
    if (busiest === null || g.processes.length > busiest.processes.length) busiest = g;
  }
  if (busiest === null) return null;
  let pick: EvictableProcess | null = null;
  for (const p of busiest.processes) {
    const load = p.inFlight + p.upgraded;
    const pickLoad = pick === null ? Infinity : pick.inFlight + pick.upgraded;
    if (pick === null || load < pickLoad || (load === pickLoad && p.lastUsedAt < pick.lastUsedAt)) pick = p;
  }
  return pick === null ? null : { group: busiest.name, id: pick.id, busy: true };
}

/**
 * Idle processes to retire so the pool fits `maxPoolSize` again (after the
 * limit was lowered): least recently used idle ones first, any group.
 */
export function processesOverPoolLimit(
  groups: readonly EvictableGroup[],
  maxPoolSize: number,
): readonly Omit<EvictionVictim, "busy">[] {
  const all = groups.flatMap((g) => g.processes.map((p) => ({ group: g.name, p })));
  const excess = all.length - maxPoolSize;
  if (excess <= 0) return [];
  return all
    .filter(({ p }) => p.inFlight === 0 && p.upgraded === 0)
    .sort((a, b) => a.p.lastUsedAt - b.p.lastUsedAt)
    .slice(0, excess)
    .map(({ group, p }) => ({ group, id: p.id }));
}
