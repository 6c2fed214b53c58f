/**
 * The request head as the core's request path sees it, whatever front end
 * carried it: the validated REQUEST_HEAD of docs/protocol.md, or a request
 * read by the standalone HTTP front. Header values and the target are Node
 * byte strings (one char per byte).
 */
export interface RequestHead {
  readonly method: string;
  /** Request target as the client sent it: path and query. */
  readonly uri: string;
  /** "HTTP/1.1" or "HTTP/1.0". */
  readonly proto: string;
  /** Flat [name, value, name, value, …] in client order; hop-by-hop headers removed. */
  readonly headers: readonly string[];
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly serverName: string;
  readonly serverPort: number;
  readonly https: boolean;
  readonly hasBody: boolean;
  /** The client asked to upgrade the connection (WebSocket). */
  readonly upgrade: boolean;
}
