/**
 * Test helper: a reverse proxy on loopback (http or https) in front of a real vcsim that passes every
 * request through unchanged, except those a test intercepts to answer like a hostile or broken server
 * would (redirects elsewhere, endless, stalled or dropped bodies). It records what it received.
 */

import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** One request the proxy received. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** A running proxy. */
export interface HostileProxy {
  /** `http(s)://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The SDK URL through the proxy. */
  readonly url: string;
  readonly requests: ProxiedRequest[];
  /** Answers a request itself when it returns true; the request is passed through otherwise. */
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean;
  close(): Promise<void>;
}

/** Starts a proxy to `target` (an `http://` vcsim URL). With `tls`, the proxy itself serves https. */
export async function startHostileProxy(
  target: string,
  options: { tls?: { cert: string; key: string } } = {},
): Promise<HostileProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: HostileProxy = {
    origin: '',
    url: '',
    requests: [],
    intercept: () => false,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    proxy.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    if (proxy.intercept(req, res)) {
      req.resume();
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`;
  Object.assign(proxy, { origin, url: `${origin}/sdk` });
  return proxy;
}
