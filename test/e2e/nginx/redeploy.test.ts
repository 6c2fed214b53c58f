/**
 * End-to-end through a real nginx: what `nginx -s reload` redeploys (the
 * shared cases of test/e2e/shared/redeploy-cases.ts, run through Apache by
 * test/e2e/redeploy.test.ts).
 */
import test from "ava";
import { redeployCases } from "../shared/redeploy-cases.js";

redeployCases(test, "nginx");
