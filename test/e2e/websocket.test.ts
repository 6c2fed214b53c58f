/**
 * End-to-end through a real Apache: WebSocket upgrades are tunnelled both ways
 * (the shared cases of test/e2e/shared/websocket-cases.ts; nginx runs them in
 * test/e2e/nginx/websocket.test.ts).
 */
import test from "ava";
import { websocketCases } from "./shared/websocket-cases.js";

websocketCases(test, "apache");
