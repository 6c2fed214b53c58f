import test from "ava";
import { isStickyId, MAX_STICKY_ID, newStickyId, parseStickyCookie, stickyCookieValue } from "../../../core/src/policy/sticky.js";

const N = "_passenger_route";

const parseCases: ReadonlyArray<{ title: string; cookie: string | string[] | undefined; name?: string; want: string | undefined }> = [
  { title: "no Cookie header", cookie: undefined, want: undefined },
  { title: "empty header", cookie: "", want: undefined },
  { title: "the only cookie", cookie: `${N}=123`, want: "123" },
  { title: "among others, with spaces", cookie: `a=1;  ${N}=42 ; b=2`, want: "42" },
  { title: "quoted value", cookie: `${N}="77"`, want: "77" },
  { title: "first occurrence wins", cookie: `${N}=5; ${N}=6`, want: "5" },
  { title: "a cookie whose name only contains ours is ignored", cookie: `x${N}=9; ${N}x=8`, want: undefined },
  { title: "zero is not an id", cookie: `${N}=0`, want: undefined },
  { title: "leading zero is not an id", cookie: `${N}=012`, want: undefined },
  { title: "non-numeric value", cookie: `${N}=abc`, want: undefined },
  { title: "negative value", cookie: `${N}=-3`, want: undefined },
  { title: "above 2^32-1", cookie: `${N}=4294967296`, want: undefined },
  { title: "exactly 2^32-1", cookie: `${N}=4294967295`, want: "4294967295" },
  { title: "several Cookie headers are all searched", cookie: ["a=1", `${N}=31`], want: "31" },
  { title: "custom cookie name", cookie: "route=8; _passenger_route=9", name: "route", want: "8" },
  { title: "value with = inside is invalid", cookie: `${N}=1=2`, want: undefined },
  { title: "part without = is skipped", cookie: `junk; ${N}=4`, want: "4" },
];
for (const c of parseCases) {
  test(`parseStickyCookie() ${c.title}`, (t) => {
    t.is(parseStickyCookie(c.cookie, c.name ?? N), c.want);
  });
}

const setCases: ReadonlyArray<{ title: string; base: string; attrs: string; https: boolean; want: string }> = [
  { title: "root app over HTTP: Path=/ and SameSite=Lax, no Secure", base: "", attrs: "SameSite=Lax", https: false, want: `${N}=7; Path=/; SameSite=Lax` },
  { title: "HTTPS adds Secure", base: "", attrs: "SameSite=Lax", https: true, want: `${N}=7; Path=/; SameSite=Lax; Secure` },
  { title: "base URI becomes the Path", base: "/shop", attrs: "SameSite=Lax", https: false, want: `${N}=7; Path=/shop; SameSite=Lax` },
  { title: "Passenger-style trailing semicolons are normalised", base: "", attrs: "SameSite=Lax; Secure;", https: true, want: `${N}=7; Path=/; SameSite=Lax; Secure` },
  { title: "an explicit Secure is kept over HTTP", base: "", attrs: "SameSite=None; Secure", https: false, want: `${N}=7; Path=/; SameSite=None; Secure` },
  { title: "no attributes", base: "/", attrs: "", https: false, want: `${N}=7; Path=/` },
  { title: "an explicit Path replaces the base URI", base: "/shop", attrs: "Path=/; HttpOnly", https: false, want: `${N}=7; Path=/; HttpOnly` },
];
for (const c of setCases) {
  test(`stickyCookieValue() ${c.title}`, (t) => {
    t.is(stickyCookieValue("7", { name: N, baseURI: c.base, attributes: c.attrs, https: c.https }), c.want);
  });
}

test("isStickyId() accepts 1..2^32-1 in canonical decimal only", (t) => {
  t.true(isStickyId("1"));
  t.true(isStickyId(String(MAX_STICKY_ID)));
  for (const bad of ["", "0", "01", "1.5", " 1", "1e3", String(MAX_STICKY_ID + 1), "99999999999"]) t.false(isStickyId(bad), bad);
});

test("newStickyId() skips taken and invalid values", (t) => {
  const seq = [0, 5, 5, 9];
  let i = 0;
  const id = newStickyId(new Set(["5"]), () => seq[i++] ?? 1);
  t.is(id, "9");
});

test("newStickyId() ids are valid and unique over many draws", (t) => {
  const taken = new Set<string>();
  let x = 12345;
  const lcg = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return (x % 50) + 1; // a tiny range forces collisions
  };
  for (let i = 0; i < 50; i++) {
    const id = newStickyId(taken, lcg);
    t.true(isStickyId(id));
    t.false(taken.has(id));
    taken.add(id);
  }
});
