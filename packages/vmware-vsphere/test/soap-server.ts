/**
 * Test helper: a local HTTP(S) server answering SOAP calls with bodies a test builds (from the recorded
 * samples), for what vcsim 0.24.2 cannot do: paging tokens, running tasks, quoted cookies, HTTP errors;
 * and, through `raw` replies, hostile servers (redirects, endless or trickling bodies).
 */

import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { fileURLToPath } from 'node:url';

export interface SoapRequest {
  /** The vim method of a SOAP call (`''` for other requests). */
  method: string;
  /** The HTTP method. */
  httpMethod: string;
  /** Path and query of the request. */
  path: string;
  body: string;
  headers: IncomingHttpHeaders;
}

export interface SoapReply {
  status?: number;
  body?: string;
  headers?: Record<string, string | string[]>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answers by hand instead (streaming, endless or trickling bodies); the test ends the response. */
  raw?: (res: ServerResponse) => void;
}

export interface SoapServer {
  /** `http(s)://127.0.0.1:<port>/sdk`. */
  readonly url: string;
  /** `http(s)://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly requests: SoapRequest[];
  close(): Promise<void>;
}

/** Options of {@link startSoapServer}. */
export interface SoapServerOptions {
  /** Serve https with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
}

/** The text of a recorded sample. */
export function sample(name: string): string {
  return readFileSync(
    fileURLToPath(new URL(`../src/protocol/soap/__samples__/${name}`, import.meta.url)),
    'utf8',
  );
}

const ENVELOPE_START =
  '<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" ' +
  'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ' +
  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>';
const ENVELOPE_END = '</soapenv:Body></soapenv:Envelope>';

/** A SOAP response envelope around `body`, written the way vcsim writes them. */
export function soapEnvelope(body: string): string {
  return `${ENVELOPE_START}${body}${ENVELOPE_END}`;
}

/** The `<objects>…</objects>` elements of a recorded RetrievePropertiesEx response. */
export function objectsOf(response: string): string[] {
  return response.match(/<objects>.*?<\/objects>/gs) ?? [];
}

/** The vim method a request body calls (`RetrievePropertiesEx`). */
export function methodOf(body: string): string {
  return /<soapenv:Body><([A-Za-z_][\w]*)/.exec(body)?.[1] ?? '';
}

export async function startSoapServer(
  handler: (request: SoapRequest) => SoapReply | Promise<SoapReply>,
  options: SoapServerOptions = {},
): Promise<SoapServer> {
  const requests: SoapRequest[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const request = {
        method: methodOf(body),
        httpMethod: req.method ?? '',
        path: req.url ?? '',
        body,
        headers: req.headers,
      };
      requests.push(request);
      Promise.resolve(handler(request)).then(
        async (reply) => {
          if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
          if (res.destroyed) return;
          if (reply.raw) {
            reply.raw(res);
            return;
          }
          res.writeHead(reply.status ?? 200, { 'content-type': 'text/xml; charset=utf-8', ...reply.headers });
          res.end(reply.body ?? '');
        },
        (error: unknown) => {
          res.writeHead(599);
          res.end(String(error));
        },
      );
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    url: `${origin}/sdk`,
    origin,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Name of the session cookie the fake servers set, and its value. */
export const FAKE_SESSION_COOKIE = 'vmware_soap_session=fake-session-4711';

/**
 * Answers what `connect()` and `close()` send (the version list, RetrieveServiceContent, Login, Logout)
 * from the recorded samples of the vCenter (`vpx`) or ESX model; `undefined` for anything else.
 */
export function bootstrapReply(request: SoapRequest, model: 'vpx' | 'esx'): SoapReply | undefined {
  if (request.httpMethod === 'GET' && request.path.endsWith('/vimServiceVersions.xml'))
    return { body: sample('vimServiceVersions.xml') };
  switch (request.method) {
    case 'RetrieveServiceContent':
      return { body: sample(`service-content-${model}.xml`) };
    case 'Login':
      return { body: sample('login.xml'), headers: { 'set-cookie': `${FAKE_SESSION_COOKIE}; HttpOnly` } };
    case 'Logout':
      return { body: sample('logout.xml') };
    default:
      return undefined;
  }
}
