import test from "ava";
import { needsLookup, routeAffinity, type AffinityRoute, type OwnerLookup } from "../../../core/src/affinity/router.js";
import type { NodeRecord } from "../../../core/src/affinity/store.js";

const node = (name: string, peer = `${name}.example:7400`): NodeRecord => ({
  name, peer, tls: false, apps: ["app"], sessions: 1, pid: 1, updatedAt: 0,
});
const owner = (n: string, pid = 10): OwnerLookup => ({ kind: "owner", owner: { node: n, pid } });

const cases: ReadonlyArray<{
  title: string;
  sticky: string | undefined;
  local?: string[];
  lookup: OwnerLookup;
  ownerNode?: NodeRecord;
  want: AffinityRoute;
}> = [
  { title: "no cookie is served locally", sticky: undefined, lookup: { kind: "skipped" }, want: { kind: "local", reason: "no-cookie" } },
  { title: "a local process is served locally without asking the store", sticky: "7", local: ["7"], lookup: { kind: "skipped" }, want: { kind: "local", reason: "local-process" } },
  { title: "a local process wins even if the store names another node", sticky: "7", local: ["7"], lookup: owner("b"), ownerNode: node("b"), want: { kind: "local", reason: "local-process" } },
  { title: "store unavailable falls back to local", sticky: "7", local: ["8"], lookup: { kind: "unavailable" }, want: { kind: "local", reason: "store-unavailable" } },
  { title: "an unpinned id is re-pinned locally", sticky: "7", lookup: { kind: "none" }, want: { kind: "repin", reason: "unpinned" } },
  { title: "pinned to this node but the process is gone: re-pin", sticky: "7", local: ["8"], lookup: owner("a"), want: { kind: "repin", reason: "process-gone" } },
  { title: "owner node not alive: re-pin", sticky: "7", lookup: owner("b"), want: { kind: "repin", reason: "node-gone" } },
  { title: "owner record of another node does not count", sticky: "7", lookup: owner("b"), ownerNode: node("c"), want: { kind: "repin", reason: "node-gone" } },
  { title: "owner node accepts no forwards: re-pin", sticky: "7", lookup: owner("b"), ownerNode: node("b", ""), want: { kind: "repin", reason: "node-unreachable" } },
  { title: "owner on a live peer: forward there", sticky: "7", lookup: owner("b"), ownerNode: node("b"), want: { kind: "forward", node: "b", peer: "b.example:7400", tls: false } },
  { title: "TLS peer: forward with TLS", sticky: "7", lookup: owner("b"), ownerNode: { ...node("b"), tls: true }, want: { kind: "forward", node: "b", peer: "b.example:7400", tls: true } },
];

for (const c of cases) {
  test(`routeAffinity() ${c.title}`, (t) => {
    const got = routeAffinity({
      stickyId: c.sticky, self: "a", localStickyIds: new Set(c.local ?? []), lookup: c.lookup, ownerNode: c.ownerNode,
    });
    t.deepEqual(got, c.want);
  });
}

test("needsLookup() only when the cookie names no local process", (t) => {
  t.false(needsLookup(undefined, new Set()));
  t.false(needsLookup("1", new Set(["1"])));
  t.true(needsLookup("1", new Set(["2"])));
});
