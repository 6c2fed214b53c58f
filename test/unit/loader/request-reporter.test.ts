/**
 * RequestReporter (loader/request-reporter.ts) with a fake clock and timers:
 * what a "reqs" report holds, and when it goes out — at the end of the turn
 * after a quiet spell, at most every REPORT_STEADY_MS while a busy process
 * only finishes and starts requests, within REPORT_COALESCE_MS for anything else.
 */
import test from "ava";
import { MAX_REQS_PER_MESSAGE, type LoaderMessage } from "../../../core/src/loader/messages.js";
import { REPORT_COALESCE_MS, REPORT_STEADY_MS, RequestReporter, type ReporterTimers } from "../../../core/src/loader/request-reporter.js";

type Reqs = Extract<LoaderMessage, { type: "reqs" }>;

/** Fake timers: `endTurn()` runs what waits for the end of the turn, `advance(ms)` the timers due. */
class FakeTimers implements ReporterTimers {
  at = 1_000;
  #turn: Array<() => void> = [];
  #timers = new Map<number, { due: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.at;
  }
  after(ms: number, fn: () => void): unknown {
    const id = this.#next++;
    this.#timers.set(id, { due: this.at + ms, fn });
    return id;
  }
  cancel(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  endOfTurn(fn: () => void): void {
    this.#turn.push(fn);
  }
  get pending(): number {
    return this.#timers.size;
  }
  endTurn(): void {
    const fns = this.#turn;
    this.#turn = [];
    for (const f of fns) f();
  }
  advance(ms: number): void {
    this.endTurn();
    const end = this.at + ms;
    for (;;) {
      const due = [...this.#timers].filter(([, t]) => t.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.at = due[1].due;
      due[1].fn();
      this.endTurn();
    }
    this.at = end;
  }
}

function reporter(): { r: RequestReporter; sent: Reqs[]; clock: FakeTimers } {
  const sent: Reqs[] = [];
  const clock = new FakeTimers();
  const r = new RequestReporter((m) => {
    if (m.type === "reqs") sent.push(m);
  }, clock);
  return { r, sent, clock };
}

test("RequestReporter reports requests in flight and finished ones, coalesced into one message per turn", (t) => {
  const { r, sent, clock } = reporter();
  r.started();
  r.started();
  r.finished(200, 1.234, 99);
  t.is(sent.length, 0, "nothing is sent synchronously");
  clock.endTurn();
  t.is(sent.length, 1, "the first report goes out at the end of the turn");
  t.deepEqual(sent[0], { type: "reqs", inFlight: 1, upgraded: 0, connections: 0, done: [[200, 1.23, 99]], peak: 2, adopted: 0, fresh: 0, pages: [] });
  r.finished(0, 2, -5);
  clock.advance(REPORT_STEADY_MS);
  t.deepEqual(sent[1]?.done, [[0, 2, 0]], "no head = status 0; bytes never negative");
  t.is(sent[1]?.inFlight, 0);
  t.is(sent[1]?.peak, 1, "the peak restarts from what was in flight at the last report");
});

test("RequestReporter counts requests started in one event-loop turn as at once (peak)", (t) => {
  const { r, sent, clock } = reporter();
  for (let i = 0; i < 3; i++) {
    r.started();
    r.finished(200, 0, 0);
  }
  clock.endTurn();
  t.is(sent[0]?.peak, 3);
  t.is(sent[0]?.inFlight, 0);
  r.started();
  r.finished(200, 0, 0);
  clock.advance(REPORT_STEADY_MS);
  t.is(sent[1]?.peak, 1, "a new turn counts afresh");
});

test("RequestReporter sends a busy process's counts at most every REPORT_STEADY_MS, one write for many requests", (t) => {
  const { r, sent, clock } = reporter();
  r.started();
  clock.endTurn();
  t.is(sent.length, 1, "busy after idle: at once");
  for (let ms = 0; ms < REPORT_STEADY_MS - 1; ms++) {
    r.finished(200, 1, 10);
    r.started();
    clock.advance(1);
  }
  t.is(sent.length, 1, "nothing the core decides on changed: no report yet");
  clock.advance(1);
  t.is(sent.length, 2);
  t.is(sent[1]?.done.length, REPORT_STEADY_MS - 1);
  t.is(sent[1]?.inFlight, 1);
});

test("RequestReporter sends the first counts after a quiet spell at the end of the turn, an upgrade within REPORT_COALESCE_MS", (t) => {
  const { r, sent, clock } = reporter();
  r.started();
  r.finished(200, 1, 1);
  clock.endTurn();
  t.is(sent.length, 1);
  clock.advance(REPORT_STEADY_MS + 10);
  r.started();
  clock.endTurn();
  t.is(sent.length, 2, "no report for REPORT_STEADY_MS: at the end of the turn");
  r.finished(200, 1, 1);
  r.started();
  t.is(clock.pending, 1, "a steady report is scheduled");
  r.upgradeOpened();
  t.is(clock.pending, 1, "the steady timer was replaced by a sooner one");
  clock.advance(REPORT_COALESCE_MS - 1);
  t.is(sent.length, 2);
  clock.advance(1);
  t.is(sent.length, 3, "an upgrade: within REPORT_COALESCE_MS");
  t.is(sent[2]?.upgraded, 1);
  t.is(sent[2]?.done.length, 1);
});

test("RequestReporter splits a long list of finished requests over several messages", (t) => {
  const { r, sent } = reporter();
  for (let i = 0; i < MAX_REQS_PER_MESSAGE + 5; i++) {
    r.started();
    r.finished(200, 0, 0);
  }
  r.flush();
  t.deepEqual(sent.map((m) => m.done.length), [MAX_REQS_PER_MESSAGE, 5]);
});

test("RequestReporter.exiting() sends only what changed since the last report, and takes the handoff's connection counts", (t) => {
  const { r, sent, clock } = reporter();
  r.exiting();
  t.is(sent.length, 0, "nothing changed");
  r.connectionCounts = () => ({ connections: 2, adopted: 7, fresh: 1 });
  r.upgradeOpened();
  r.exiting();
  t.is(sent.length, 1);
  t.like(sent[0], { upgraded: 1, connections: 2, adopted: 7, fresh: 1 });
  r.exiting();
  t.is(sent.length, 1, "sent already");
  clock.advance(REPORT_STEADY_MS);
  t.is(sent.length, 1, "the scheduled report has nothing left to send");
});
