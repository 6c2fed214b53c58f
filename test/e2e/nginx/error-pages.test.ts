/**
 * End-to-end through a real nginx: the shared error-page cases
 * (test/e2e/shared/error-page-cases.ts, run through Apache by
 * test/e2e/error-pages.test.ts).
 */
import test from "ava";
import { errorPageCases } from "../shared/error-page-cases.js";

errorPageCases(test, "nginx");
