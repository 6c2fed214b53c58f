/**
 * End-to-end through a real nginx: logs with passenger_log_file (the shared
 * cases of test/e2e/shared/logs-cases.ts, run through Apache by
 * test/e2e/logs.test.ts); the rotation's reopen command is `nginx -s reopen`.
 */
import test from "ava";
import { logsCases } from "../shared/logs-cases.js";

logsCases(test, "nginx");
