import test from "ava";
import { MAX_REQS_PER_MESSAGE, type LoaderMessage } from "../../../core/src/loader/messages.js";
import { RequestReporter } from "../../../core/src/loader/request-reporter.js";

type Reqs = Extract<LoaderMessage, { type: "reqs" }>;

function reporter(): { r: RequestReporter; sent: Reqs[] } {
  const sent: Reqs[] = [];
  const r = new RequestReporter((m) => {
    if (m.type === "reqs") sent.push(m);
  });
  return { r, sent };
}

const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

test("RequestReporter reports requests in flight and finished ones, coalesced into one message per turn", async (t) => {
  const { r, sent } = reporter();
  r.started();
  r.started();
  r.finished(200, 1.234, 99);
  t.is(sent.length, 0, "nothing is sent synchronously");
  await turn();
  t.is(sent.length, 1);
  t.deepEqual(sent[0], { type: "reqs", inFlight: 1, upgraded: 0, connections: 0, done: [[200, 1.23, 99]], peak: 2, adopted: 0, fresh: 0, pages: [] });
  r.finished(0, 2, -5);
  await turn();
  t.deepEqual(sent[1]?.done, [[0, 2, 0]], "no head = status 0; bytes never negative");
  t.is(sent[1]?.inFlight, 0);
  t.is(sent[1]?.peak, 1, "the peak restarts from what was in flight at the last report");
});

test("RequestReporter counts requests started in one event-loop turn as at once (peak)", async (t) => {
  const { r, sent } = reporter();
  for (let i = 0; i < 3; i++) {
    r.started();
    r.finished(200, 0, 0);
  }
  await turn();
  t.is(sent[0]?.peak, 3);
  t.is(sent[0]?.inFlight, 0);
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
  const { r, sent } = reporter();
  r.exiting();
  t.is(sent.length, 0, "nothing changed");
  r.connectionCounts = () => ({ connections: 2, adopted: 7, fresh: 1 });
  r.upgradeOpened();
  r.exiting();
  t.is(sent.length, 1);
  t.like(sent[0], { upgraded: 1, connections: 2, adopted: 7, fresh: 1 });
  r.exiting();
  t.is(sent.length, 1, "sent already");
});
