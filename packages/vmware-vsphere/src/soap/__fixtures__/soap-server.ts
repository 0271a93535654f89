/**
 * Test helper: a local HTTP server answering SOAP calls with bodies a test builds (from the recorded
 * samples), for what vcsim 0.24.2 cannot do: paging tokens, running tasks, quoted cookies, HTTP errors.
 */

import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface SoapRequest {
  method: string;
  body: string;
  headers: IncomingHttpHeaders;
}

export interface SoapReply {
  status?: number;
  body?: string;
  headers?: Record<string, string | string[]>;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface SoapServer {
  readonly url: string;
  readonly requests: SoapRequest[];
  close(): Promise<void>;
}

/** The text of a recorded sample. */
export function sample(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../__samples__/${name}`, import.meta.url)), 'utf8');
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
): Promise<SoapServer> {
  const requests: SoapRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const request = { method: methodOf(body), body, headers: req.headers };
      requests.push(request);
      Promise.resolve(handler(request)).then(
        async (reply) => {
          if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
          if (res.destroyed) return;
          res.writeHead(reply.status ?? 200, { 'content-type': 'text/xml; charset=utf-8', ...reply.headers });
          res.end(reply.body ?? '');
        },
        (error: unknown) => {
          res.writeHead(599);
          res.end(String(error));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/sdk`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
