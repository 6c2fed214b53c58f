import test from "ava";
import { affinityKey, keyMismatches, siteOf } from "../../../core/src/affinity/site-key.js";
import { makeAppOptions } from "../../../core/src/config/schema.js";

test("affinityKey() is the same for one site served from different directories", (t) => {
  const a = affinityKey({ app: makeAppOptions("/srv/releases/1/app"), serverName: "shop.example" });
  const b = affinityKey({ app: makeAppOptions("/home/web2/shop"), serverName: "SHOP.example" });
  t.is(a, b);
  t.is(a, "site:shop.example/ (production)");
});

test("affinityKey() tells base URIs, virtual hosts and environments apart", (t) => {
  const key = (root: string, serverName: string, over: Parameters<typeof makeAppOptions>[1] = {}): string =>
    affinityKey({ app: makeAppOptions(root, over), serverName });
  t.not(key("/a", "shop.example", { baseURI: "/api" }), key("/a", "shop.example"));
  t.is(key("/a", "shop.example", { baseURI: "/api" }), "site:shop.example/api (production)");
  t.not(key("/a", "shop.example"), key("/a", "blog.example"));
  t.not(key("/a", "shop.example", { appEnv: "staging" }), key("/a", "shop.example"));
});

test("affinityKey() is PassengerAppGroupName when it is set, whatever the vhost", (t) => {
  t.is(affinityKey({ app: makeAppOptions("/a", { appGroupName: "shop" }), serverName: "one" }), "group:shop");
  t.is(affinityKey({ app: makeAppOptions("/b", { appGroupName: "shop" }), serverName: "two" }), "group:shop");
});

test("siteOf() is the lower-case vhost and the base URI", (t) => {
  t.is(siteOf({ app: makeAppOptions("/a", { baseURI: "/x" }), serverName: "A.Example" }), "a.example/x");
});

test("keyMismatches() lists only sites served under more than one key", (t) => {
  t.deepEqual(keyMismatches([
    { name: "h1", sites: { "site:s/ (production)": "s/", "site:t/ (production)": "t/" } },
    { name: "h2", sites: { "site:s/ (production)": "s/", "group:t": "t/" } },
  ]), [{ site: "t/", keys: [{ node: "h1", key: "site:t/ (production)" }, { node: "h2", key: "group:t" }] }]);
  t.deepEqual(keyMismatches([{ name: "h1", sites: { "site:s/ (production)": "s/" } }, { name: "h2", sites: { "site:s/ (production)": "s/" } }]), []);
});
