/**
 * End-to-end through a real nginx: the core's life as the module manages it
 * (the shared cases of test/e2e/shared/lifecycle-cases.ts, run through Apache
 * by test/e2e/lifecycle.test.ts): `nginx -s reload` under load fails no
 * request and serves the new code; `nginx -s quit` ends the core and the apps.
 */
import test from "ava";
import { lifecycleCases } from "../shared/lifecycle-cases.js";

const { registerReloadCase, registerStopCase } = lifecycleCases(test, "nginx");
registerReloadCase();
registerStopCase();
