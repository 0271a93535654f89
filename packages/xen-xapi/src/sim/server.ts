/**
 * The simulator's HTTP side (node:http on loopback): XML-RPC on `/` (and so on every other path, `/RPC2`
 * included, as XAPI's longest-prefix lookup does), JSON-RPC v1 and v2 on `/jsonrpc` (the reply in the
 * request's version), bodies bounded, malformed requests answered with HTTP 500 and an HTML body as XAPI
 * does.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseXapiJson, stringifyXapiJson } from '../protocol/json';
import type { WireValue } from '../protocol/wire';
import { decodeXmlRpcCall, encodeXmlRpcResponse } from '../protocol/xmlrpc';
import { type SimApi, XapiFailure } from './api';
import { type SimTransferFaults, serveTransfer, TRANSFER_PATHS } from './transfers';

/** Largest request body accepted (bytes). */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** Options of the HTTP side. */
export interface SimServerOptions {
  /** Answer `/jsonrpc` with the XML-RPC handler, as hosts older than XenServer 7.0 do (default true = JSON-RPC). */
  jsonRpc: boolean;
  /** Test-only faults of the HTTP transfer endpoints (`/export`, `/import`, ...). */
  faults?: SimTransferFaults;
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function internalError(res: ServerResponse, why: string): void {
  send(
    res,
    500,
    'text/html',
    `<html><body><h1>HTTP 500 internal server error</h1>${why.replace(/[<&>]/g, '')}</body></html>`,
  );
}

async function xmlRpc(api: SimApi, body: string, res: ServerResponse): Promise<void> {
  let call: { method: string; params: unknown[] };
  try {
    call = decodeXmlRpcCall(body);
  } catch {
    // An old host's XML-RPC handler given something else (JSON-RPC) still answers in XML.
    send(
      res,
      200,
      'text/xml',
      encodeXmlRpcResponse({ Status: 'Failure', ErrorDescription: ['INTERNAL_ERROR', 'Xmlrpc parse error'] }),
    );
    return;
  }
  let value: WireValue;
  try {
    value = { Status: 'Success', Value: await api.callAsync(call.method, call.params) };
  } catch (error) {
    if (!(error instanceof XapiFailure)) throw error;
    value = { Status: 'Failure', ErrorDescription: error.description };
  }
  send(res, 200, 'text/xml', encodeXmlRpcResponse(value));
}

async function jsonRpc(api: SimApi, body: string, res: ServerResponse): Promise<void> {
  let req: Record<string, unknown>;
  try {
    req = parseXapiJson(body) as Record<string, unknown>;
  } catch {
    internalError(res, 'Invalid JSON');
    return;
  }
  if (
    typeof req !== 'object' ||
    req === null ||
    typeof req.method !== 'string' ||
    req.id === undefined ||
    req.id === null
  ) {
    internalError(res, 'Invalid JSON-RPC request');
    return;
  }
  const v2 = req.jsonrpc === '2.0';
  const params = Array.isArray(req.params) ? req.params : [];
  const id = req.id as WireValue;
  let out: Record<string, WireValue>;
  try {
    const result = await api.callAsync(req.method, params);
    out = v2 ? { jsonrpc: '2.0', result, id } : { result, error: null, id };
  } catch (error) {
    if (!(error instanceof XapiFailure)) throw error;
    const [code, ...data] = error.description;
    out = v2
      ? { jsonrpc: '2.0', error: { code: 1, message: code as string, data }, id }
      : { result: null, error: error.description, id };
  }
  send(res, 200, 'application/json', stringifyXapiJson(out));
}

/** Creates the HTTP server (not listening yet). */
export function createSimServer(api: SimApi, options: SimServerOptions): Server {
  const server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (TRANSFER_PATHS.has(path as string)) {
        await serveTransfer(api, options.faults ?? {}, req, res);
        return;
      }
      if (req.method !== 'POST') {
        send(res, 404, 'text/html', '<html><body><h1>HTTP 404 not found</h1></body></html>');
        return;
      }
      const body = await readBody(req);
      if (body === undefined) {
        send(res, 413, 'text/html', '<html><body><h1>HTTP 413 request entity too large</h1></body></html>');
        return;
      }
      // XAPI picks the handler with the longest matching path prefix, and `/` (XML-RPC) is a prefix of
      // every path: `/RPC2` and Xen Orchestra's `/xmlrpc` land there too.
      if (path === '/jsonrpc' && options.jsonRpc) await jsonRpc(api, body, res);
      else await xmlRpc(api, body, res);
    } catch (error) {
      if (!res.headersSent) internalError(res, String((error as Error)?.message ?? error));
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 5000;
  return server;
}
