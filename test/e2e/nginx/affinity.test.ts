/**
 * End-to-end through two real nginx instances and one redis-server: shared
 * session affinity configured with the passenger_affinity_* directives (the
 * shared cases of test/e2e/shared/affinity-cases.ts, run through Apache by
 * test/e2e/affinity.test.ts).
 */
import test from "ava";
import { affinityCases } from "../shared/affinity-cases.js";

affinityCases(test, "nginx");
