/**
 * The one place a finished request is counted (docs/metrics.md). Every data
 * path calls `requestFinished()` exactly once per exchange, when it ends:
 * today the core's relay (through recordedExchange() in recorded-exchange.ts), and the
 * direct path of issue 11 from the module's end-of-exchange report, before it
 * releases the pool session. Imports nothing of ours.
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

/** "2xx" for 200–299 …, "aborted" for 0 (no response), "other" outside 100–599. */
export function statusClass(status: number): string {
  if (status === 0) return "aborted";
  if (status < 100 || status > 599) return "other";
  return `${Math.floor(status / 100)}xx`;
}
