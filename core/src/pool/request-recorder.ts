/**
 * The one place a finished request is counted (docs/metrics.md). Every data
 * path calls `requestFinished()` exactly once per exchange, when it ends: the
 * core's relay (through recordedExchange(), metrics/recorded-exchange.ts),
 * and the direct path from the module's end-of-exchange report, before it
 * releases the pool session. The pool holds the recorder; metrics/prometheus.ts
 * is the one that counts. Imports nothing of ours.
 */

export interface RequestRecorder {
  /**
   * One exchange ended.
   * @param app      the app group name (PassengerAppGroupName)
   * @param status   the HTTP status sent to the client; 0 when no response head went out
   *                 (the client went away first)
   * @param durationSeconds  from the request head's arrival to the end of the response
   * @param bytesSent response body bytes sent to the client
   */
  requestFinished(app: string, status: number, durationSeconds: number, bytesSent: number): void;
}

/** A recorder that counts nothing (metrics off). */
export const NO_RECORDER: RequestRecorder = { requestFinished: () => undefined };
