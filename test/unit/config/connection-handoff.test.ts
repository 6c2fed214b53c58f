/** `ferry start` hands connections to the app processes by default; every source can turn it off (docs/standalone.md). */
import test from "ava";
import { resolveStandaloneConfig } from "../../../core/src/config/standalone-config.js";

const handoff = (input: Omit<Parameters<typeof resolveStandaloneConfig>[0], "appRoot">): boolean | undefined =>
  resolveStandaloneConfig({ appRoot: "/srv/app", ...input }).server.connectionHandoff;

test("resolveStandaloneConfig() turns connection handoff on by default", (t) => {
  t.true(handoff({ env: {}, flags: {} }));
});

test("resolveStandaloneConfig() turns connection handoff off by flag, environment or Passengerfile", (t) => {
  t.false(handoff({ env: {}, flags: { "no-connection-handoff": true } }));
  t.false(handoff({ env: { PASSENGER_CONNECTION_HANDOFF: "off" }, flags: {} }));
  t.false(handoff({ env: {}, flags: {}, file: { file: "/srv/app/Passengerfile.json", value: { connection_handoff: false } } }));
  // Flags win over the file, as for every option.
  t.true(handoff({ env: {}, flags: { "connection-handoff": true }, file: { file: "/srv/app/Passengerfile.json", value: { connection_handoff: false } } }));
});
