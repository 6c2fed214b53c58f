/**
 * End-to-end through a real nginx: the shared WebSocket cases
 * (test/e2e/shared/websocket-cases.ts, run through Apache by
 * test/e2e/websocket.test.ts).
 */
import test from "ava";
import { websocketCases } from "../shared/websocket-cases.js";

websocketCases(test, "nginx");
