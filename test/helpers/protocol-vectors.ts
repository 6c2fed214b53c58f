/**
 * The decoded content of the golden protocol vectors in
 * test/fixtures/protocol/*.hex (described for humans and the C tests in
 * test/fixtures/protocol/README.md). Map keys are listed in wire order.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Frame } from "../../core/src/protocol/frames.js";

/** test/fixtures/protocol in the source tree (tests run from build/test/…). */
export const VECTOR_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/protocol");

/** Read a .hex vector: hex digits, whitespace ignored. */
export function readVector(name: string): Buffer {
  const text = readFileSync(path.join(VECTOR_DIR, name), "utf8").replace(/\s+/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(text)) throw new Error(`Cannot read vector ${name}: not hex`);
  return Buffer.from(text, "hex");
}

export const GOOD_VECTORS: ReadonlyArray<{ readonly file: string; readonly frame: Frame }> = [
  {
    file: "request_head_minimal.hex",
    frame: {
      kind: "request-head",
      head: {
        v: 2,
        method: "GET",
        uri: "/",
        proto: "HTTP/1.1",
        headers: ["Host", "example.com"],
        remote_addr: "127.0.0.1",
        remote_port: 50000,
        server_name: "example.com",
        server_port: 80,
        https: false,
        has_body: false,
        upgrade: false,
        gen: 1,
        app: { app_root: "/srv/app" },
        env: [],
      },
    },
  },
  {
    file: "request_head_full.hex",
    frame: {
      kind: "request-head",
      head: {
        v: 2,
        method: "POST",
        uri: "/shop/cart?item=42&note=caf%C3%A9",
        proto: "HTTP/1.1",
        headers: [
          "Host", "www.example.com",
          "User-Agent", "curl/8.5.0",
          "Cookie", "a=1",
          "Content-Type", "application/x-www-form-urlencoded",
          "Cookie", "_passenger_route=3f9a; b=2",
          "Content-Length", "11",
          "X-Note", "café",
        ],
        remote_addr: "2001:db8::7",
        remote_port: 54321,
        server_name: "www.example.com",
        server_port: 8443,
        https: true,
        has_body: true,
        upgrade: false,
        gen: 7,
        app: {
          app_root: "/srv/www/example.com/current/shop",
          app_group_name: "shop",
          app_type: "generic",
          startup_file: "server.js",
          app_start_command: "node server.js --port $PORT",
          app_env: "staging",
          nodejs: "/usr/local/bin/node",
          base_uri: "/shop",
          document_root: "/srv/www/example.com/current/shop/public",
          min_instances: 2,
          max_instances_per_app: 4,
          max_requests: 1000,
          max_request_queue_size: 0,
          force_max_concurrent_requests_per_process: -1,
          start_timeout: 120,
          restart_dir: "/srv/restart",
          sticky_sessions: true,
          sticky_sessions_cookie_name: "route",
          sticky_sessions_cookie_attributes: "SameSite=Strict; Secure",
          friendly_error_pages: true,
          user: "shop",
          group: "www-data",
          load_shell_envvars: true,
          memory_limit: 1024,
          max_request_time: 300,
          app_log_file: "/var/log/shop.log",
          app_file_descriptor_ulimit: 65536,
          abort_websockets_on_process_shutdown: false,
          show_version_in_header: false,
        },
        env: ["FOO", "bar", "EMPTY", "", "GREETING", "grüß dich"],
      },
    },
  },
  { file: "body_small.hex", frame: { kind: "body", data: Buffer.from("hello, world\n") } },
  { file: "body_empty.hex", frame: { kind: "body", data: Buffer.alloc(0) } },
  { file: "end.hex", frame: { kind: "end" } },
  {
    file: "response_head_set_cookies.hex",
    frame: {
      kind: "response-head",
      status: 200,
      headers: [
        "Content-Type", "text/html; charset=utf-8",
        "Set-Cookie", "a=1; Path=/",
        "Set-Cookie", "_passenger_route=3f9a; Path=/; SameSite=Lax",
        "X-Powered-By", "Ferry 0.1.0",
      ],
    },
  },
  {
    file: "response_head_101.hex",
    frame: {
      kind: "response-head",
      status: 101,
      headers: ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
    },
  },
  {
    file: "abort.hex",
    frame: { kind: "abort", code: "app_crashed", message: "The application process exited before completing the response" },
  },
  {
    file: "request-head-v3.hex",
    frame: {
      kind: "request-head",
      head: {
        v: 3, method: "GET", uri: "/", proto: "HTTP/1.1", headers: ["Host", "example.com"], remote_addr: "127.0.0.1",
        remote_port: 50000, server_name: "example.com", server_port: 80, https: false, has_body: false, upgrade: false,
        gen: 1, app: { app_root: "/srv/app" }, env: [], held: ["7f3a9c1e.17", "7f3a9c1e.9"],
      },
    },
  },
  {
    file: "lease.hex",
    frame: {
      kind: "lease",
      lease: {
        id: "7f3a9c1e.17", pid: 4242, reuse: false,
        head: Buffer.from("POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n", "latin1"),
        chunked: false, addHeaders: ["X-Powered-By", "Ferry 0.1.0", "Set-Cookie", "_passenger_route=3f9a; Path=/; SameSite=Lax"], deadline: 0,
      },
    },
  },
  {
    file: "lease-reuse.hex",
    frame: {
      kind: "lease",
      lease: {
        id: "7f3a9c1e.17", pid: 4242, reuse: true,
        head: Buffer.from("PUT /files/a.bin HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n", "latin1"),
        chunked: true, addHeaders: [], deadline: 300000,
      },
    },
  },
  {
    file: "request-head-pass.hex",
    frame: {
      kind: "request-head",
      head: {
        v: 3, method: "GET", uri: "/", proto: "HTTP/1.1", headers: ["Host", "example.com"], remote_addr: "127.0.0.1",
        remote_port: 50000, server_name: "example.com", server_port: 80, https: false, has_body: false, upgrade: false,
        gen: 1, app: { app_root: "/srv/app" }, env: [], held: ["7f3a9c1e.17", "7f3a9c1e.9"], pass: true,
      },
    },
  },
  {
    file: "lease-pass.hex",
    frame: {
      kind: "lease",
      lease: {
        id: "7f3a9c1e.17", pid: 4242, reuse: true,
        head: Buffer.from("GET /hello HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n", "latin1"),
        chunked: false, addHeaders: ["X-Powered-By", "Ferry"], deadline: 0,
        pass: { ttlMs: 200, procs: ["7f3a9c1e.17", "7f3a9c1e.9"], restartFile: "/srv/app/tmp/restart.txt", restartMtimeNs: 1765012345123456789n },
      },
    },
  },
  {
    file: "request-head-pass-sticky.hex",
    frame: {
      kind: "request-head",
      head: {
        v: 3, method: "GET", uri: "/", proto: "HTTP/1.1", headers: ["Host", "example.com"], remote_addr: "127.0.0.1",
        remote_port: 50000, server_name: "example.com", server_port: 80, https: false, has_body: false, upgrade: false,
        gen: 1, app: { app_root: "/srv/app" }, env: [], held: ["7f3a9c1e.17", "7f3a9c1e.9"], pass: true, pass_sticky: true,
      },
    },
  },
  {
    file: "lease-pass-sticky.hex",
    frame: {
      kind: "lease",
      lease: {
        id: "7f3a9c1e.17", pid: 4242, reuse: true,
        head: Buffer.from("GET /hello HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n", "latin1"),
        chunked: false, addHeaders: ["X-Powered-By", "Ferry", "Set-Cookie", "_passenger_route=1234567; Path=/; SameSite=Lax"], deadline: 0,
        pass: {
          ttlMs: 500, procs: ["7f3a9c1e.17", "7f3a9c1e.9"],
          sticky: {
            cookie: "_passenger_route", ids: ["1234567", "4000000000"],
            setCookie: ["_passenger_route=1234567; Path=/; SameSite=Lax", "_passenger_route=4000000000; Path=/; SameSite=Lax"],
            setCookieHttps: ["_passenger_route=1234567; Path=/; SameSite=Lax; Secure", "_passenger_route=4000000000; Path=/; SameSite=Lax; Secure"],
            addHeaders: ["X-Powered-By", "Ferry"],
          },
          restartFile: "/srv/app/tmp/restart.txt", restartMtimeNs: 1765012345123456789n,
        },
      },
    },
  },
  {
    file: "lease-pass-no-restart-file.hex",
    frame: {
      kind: "lease",
      lease: {
        id: "7f3a9c1e.9", pid: 4243, reuse: true,
        head: Buffer.from("GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: http\r\n\r\n", "latin1"),
        chunked: false, addHeaders: ["X-Powered-By", "Ferry"], deadline: 0,
        pass: { ttlMs: 200, procs: ["7f3a9c1e.9"], restartFile: "/srv/app/tmp/restart.txt", restartMtimeNs: -1n },
      },
    },
  },
  { file: "proceed.hex", frame: { kind: "proceed" } },
  {
    file: "done.hex",
    frame: {
      kind: "done",
      report: { id: "7f3a9c1e.17", outcome: "ok", status: 200, bytesIn: 11, bytesOut: 1048576, durationUs: 1234, reusable: true },
    },
  },
];

/** Malformed input: hex of the whole byte stream, and why it must be rejected. */
export const BAD_VECTORS: ReadonlyArray<{ readonly file: string; readonly bytes: string; readonly level: "frame" | "head" }> = [
  // REQUEST_HEAD {v: 4, method: "GET", uri: "/", app: {app_root: "/srv/app"}}: frame is fine, head validation fails.
  { file: "wrong_version.bad.hex", bytes: "", level: "head" },
  // Declared 5-byte payload present, but the msgpack value inside is cut: [2, bin(5) "h"…].
  { file: "truncated_payload.bad.hex", bytes: "0000000592 02 c4 05 68", level: "frame" },
  // Stream ends after 4 of the 13 payload bytes the prefix announces.
  { file: "truncated_frame.bad.hex", bytes: "0000000d 92 02 c4 09", level: "frame" },
  // Length prefix 5 MiB (> 4 MiB): rejected from the prefix alone.
  { file: "oversized_length.bad.hex", bytes: "00500000 92 02 c6 00 4f ff fa", level: "frame" },
  // REQUEST_HEAD announced at 1 MiB + 1 (> HEAD limit): rejected from prefix + first payload bytes.
  { file: "oversized_head.bad.hex", bytes: "00100001 92 01 de", level: "frame" },
  // Payload is the fixint 3, not an array.
  { file: "not_an_array.bad.hex", bytes: "00000001 03", level: "frame" },
  // [9]: unknown frame type.
  { file: "unknown_type.bad.hex", bytes: "00000002 91 09", level: "frame" },
  // [4, 200]: RESPONSE_HEAD missing its headers.
  { file: "wrong_arity.bad.hex", bytes: "00000003 92 04 cc c8", level: "frame" },
  // [2, "hi"]: BODY data is a str, not bin.
  { file: "wrong_element_type.bad.hex", bytes: "00000005 92 02 a2 68 69", level: "frame" },
  // [3] followed by a stray byte inside the same payload.
  { file: "trailing_bytes.bad.hex", bytes: "00000003 91 03 c0", level: "frame" },
  // Zero-length payload.
  { file: "empty_payload.bad.hex", bytes: "00000000", level: "frame" },
];
