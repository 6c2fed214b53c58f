/**
 * How a finished request's status is labelled in the metrics. The recorder
 * interface the data paths call is the pool's (pool/request-recorder.ts).
 * Imports nothing of ours.
 */

/** "2xx" for 200–299 …, "aborted" for 0 (no response), "other" outside 100–599. */
export function statusClass(status: number): string {
  if (status === 0) return "aborted";
  if (status < 100 || status > 599) return "other";
  return `${Math.floor(status / 100)}xx`;
}
