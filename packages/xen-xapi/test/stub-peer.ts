/**
 * A stand-in server for the xen-xapi backend on 127.0.0.1: it answers `GET /version` like the stub client
 * expects, so `test/record.ts` can record the stub's own fixture before a real server exists. Replace it
 * with your real server (a peer under scripts/peers/, or a simulator shipped in the package) as soon as
 * the adapter talks to one.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stub says about itself. */
export const STUB_HELLO = { product: 'xen-xapi-stub', version: '0.0.0' } as const;

/** A running stub server. */
export interface StubPeer {
  /** Base URL, `http://127.0.0.1:<port>/`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts the stub server. `handle` may answer a request itself (hostile-server tests); when it returns
 * false the stub's normal answers apply.
 */
export async function startStubPeer(
  handle?: (request: IncomingMessage, response: ServerResponse) => boolean,
): Promise<StubPeer> {
  const server = createServer((request, response) => {
    if (handle?.(request, response)) return;
    if (request.method === 'GET' && request.url === '/version') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(STUB_HELLO));
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { message: `no route ${request.method} ${request.url}` } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
