/**
 * XAPI's HTTP transfers (`/export`, `/export_raw_vdi`, `/host_backup`, `/pool/xmldbdump`, `/import`,
 * `/import_raw_vdi`), with the rules of docs/security.md ("Where credentials go"):
 *
 * - the session id goes only to the session's own origin; a `302` (XAPI sends one to the host that can
 *   see the SR) is followed only to a host the pool's own records list (`host.address`), on the same
 *   scheme and port, at most {@link MAX_REDIRECTS} times; any other redirect is `PROTOCOL`;
 * - downloads are bounded (declared size, and the caller's bound) and an `text/html` body where data is
 *   expected (XAPI answers some failed exports `200` with an HTML error page, xen-api#4603) is `REMOTE`;
 * - no response, or no data, for `idleTimeoutMs` is `TIMEOUT`; the caller's signal aborts at any point;
 * - uploads state their `Content-Length` (XAPI refuses chunked uploads); up to {@link UPLOAD_BUFFER_BYTES}
 *   they are read whole before the request starts, larger ones stream and are cut, never completed, when the
 *   source fails (a file that does not match its manifest), so the host never sees a whole bad body.
 */

import {
  abortError,
  type FetchLike,
  fetchErrorToHvkitError,
  HvkitError,
  hvkitError,
  readResponseText,
} from '@hvkit/core';
import { ADAPTER_ID, backendErrorToHvkitError, xapiErrorToHvkitError } from '../errors';

/** Redirects followed at most (to pool members only). */
export const MAX_REDIRECTS = 2;
/** Uploads up to this size (4 MiB) are read, and verified, whole before the request starts. */
export const UPLOAD_BUFFER_BYTES = 4 * 1024 * 1024;
/** Default idle deadline of a transfer: 60 s without a response or a byte is `TIMEOUT`. */
export const DEFAULT_TRANSFER_IDLE_TIMEOUT_MS = 60_000;

/** Where and how a transfer goes. */
export interface TransferTarget {
  fetch: FetchLike;
  /** The session's origin (`https://host:443`). */
  origin: string;
  /** The session ref: sent as `session_id`, never shown. */
  session: string;
  /** Addresses of the pool's hosts (`host.address`), read from the pool's records. */
  poolHosts: () => Promise<readonly string[]>;
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Named in errors, e.g. `backups.backup`. */
  operation: string;
  /** What is transferred, for messages. */
  what: string;
}

/** An opened download. */
export interface Download {
  /** The size the server declared, when it did. */
  readonly size: number | undefined;
  /** The bytes; read once. A drop before the declared size is `CONNECTION_LOST`. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Releases the connection when `chunks` will not be read to its end. */
  cancel(): void;
}

/** An idle deadline that aborts with a retryable TIMEOUT after `ms` without `touch()`. */
function idleDeadline(ms: number, t: TransferTarget) {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    if (timer !== undefined) clearTimeout(timer);
    if (!Number.isFinite(ms)) return;
    timer = setTimeout(
      () =>
        controller.abort(
          hvkitError('TIMEOUT', `${t.what}: no data from the server for ${ms} ms.`, {
            adapter: ADAPTER_ID,
            operation: t.operation,
            retryable: true,
          }),
        ),
      ms,
    );
    timer.unref?.();
  };
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return { signal: controller.signal, touch, stop };
}

function failure(t: TransferTarget, code: 'PROTOCOL' | 'REMOTE', message: string): HvkitError {
  return hvkitError(code, `${t.what}: ${message}`, {
    adapter: ADAPTER_ID,
    operation: t.operation,
    retryable: false,
  });
}

/** The error of a failed transfer response: XAPI's error code when the body names one. */
async function responseError(t: TransferTarget, response: Response): Promise<HvkitError> {
  const text = await readResponseText(response, { maxBytes: 16 * 1024, adapter: ADAPTER_ID }).catch(() => '');
  const code = /\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b((?:\s+[^\s<]+)*)/.exec(text.replace(/<[^>]*>/g, ' '));
  if (code && response.status >= 500)
    return xapiErrorToHvkitError([code[1], ...(code[2] ?? '').trim().split(/\s+/).filter(Boolean)], {
      operation: t.operation,
    });
  return backendErrorToHvkitError(response.status, text, { operation: t.operation });
}

/** Sends one request, following redirects to pool members only. */
async function send(
  t: TransferTarget,
  path: string,
  query: Record<string, string>,
  init: { method: string; headers?: Record<string, string>; body?: ReadableStream<Uint8Array> | Uint8Array },
  signal: AbortSignal,
): Promise<Response> {
  const origin = new URL(t.origin);
  let url = new URL(path, origin);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  url.searchParams.set('session_id', t.session);
  for (let hop = 0; ; hop++) {
    let response: Response;
    try {
      response = await t.fetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body,
        redirect: 'manual',
        signal,
        ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (error) {
      if (signal.aborted)
        throw signal.reason instanceof HvkitError
          ? signal.reason
          : abortError(signal, { adapter: ADAPTER_ID, operation: t.operation });
      throw fetchErrorToHvkitError(error, { adapter: ADAPTER_ID, operation: t.operation });
    }
    if (response.status < 300 || response.status >= 400) return response;
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get('location');
    if (hop >= MAX_REDIRECTS || !location || init.body instanceof ReadableStream)
      throw failure(
        t,
        'PROTOCOL',
        `the server redirected (HTTP ${response.status}) where no redirect is followed.`,
      );
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw failure(t, 'PROTOCOL', 'the server redirected to something that is not a URL.');
    }
    const hosts = (await t.poolHosts()).map((h) => h.replace(/^\[|\]$/g, '').toLowerCase());
    const host = next.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (next.protocol !== origin.protocol || next.port !== origin.port || !hosts.includes(host))
      throw failure(
        t,
        'PROTOCOL',
        'the server redirected to a host that is not a member of this pool (or changed scheme or port); the session is not sent there.',
      );
    next.searchParams.set('session_id', t.session);
    url = next;
  }
}

/**
 * Opens a download (`GET path?query&session_id=`).
 *
 * @param maxBytes largest body accepted; more is `PROTOCOL`.
 * @throws HvkitError `PROTOCOL`, `REMOTE`, `NOT_FOUND`, `CONFLICT`, `AUTH_FAILED`, `CONNECTION_LOST`,
 *   `TIMEOUT`, `ABORTED` (XAPI's error codes mapped as for calls).
 */
export async function openDownload(
  t: TransferTarget,
  path: string,
  query: Record<string, string>,
  maxBytes: number,
): Promise<Download> {
  const idle = idleDeadline(t.idleTimeoutMs, t);
  const cancelled = new AbortController();
  const signal = AbortSignal.any([...(t.signal ? [t.signal] : []), idle.signal, cancelled.signal]);
  idle.touch();
  let response: Response;
  try {
    response = await send(t, path, query, { method: 'GET' }, signal);
  } catch (error) {
    idle.stop();
    throw error;
  }
  if (response.status >= 300) {
    idle.stop();
    throw await responseError(t, response);
  }
  if (/text\/html/i.test(response.headers.get('content-type') ?? '')) {
    idle.stop();
    const error = await responseError(t, new Response(response.body, { status: 500 }));
    throw error;
  }
  const declared = response.headers.get('content-length');
  const size = declared !== null && /^\d+$/.test(declared) ? Number(declared) : undefined;
  if (size !== undefined && size > maxBytes) {
    idle.stop();
    await response.body?.cancel().catch(() => {});
    throw failure(t, 'PROTOCOL', `the server declared ${size} bytes, more than the ${maxBytes} accepted.`);
  }
  const body = response.body;
  const reader = body?.getReader();
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let got = 0;
    try {
      for (;;) {
        idle.touch();
        let step: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
        try {
          if (!reader) break;
          step = await reader.read();
        } catch (error) {
          if (signal.aborted)
            throw signal.reason instanceof HvkitError
              ? signal.reason
              : abortError(signal, { adapter: ADAPTER_ID, operation: t.operation });
          // A body that stops (undici's `TypeError: terminated`, a reset socket) is a lost connection.
          if (HvkitError.isInstance(error)) throw error;
          throw hvkitError('CONNECTION_LOST', `${t.what}: the connection was lost at byte ${got}.`, {
            adapter: ADAPTER_ID,
            operation: t.operation,
            retryable: true,
            cause: error,
          });
        }
        if (step.done) break;
        got += step.value.byteLength;
        if (got > (size ?? maxBytes))
          throw failure(t, 'PROTOCOL', `the server sent more than ${size ?? maxBytes} bytes.`);
        yield step.value;
      }
      if (size !== undefined && got !== size)
        throw hvkitError('CONNECTION_LOST', `${t.what}: the connection ended at byte ${got} of ${size}.`, {
          adapter: ADAPTER_ID,
          operation: t.operation,
          retryable: true,
        });
    } finally {
      idle.stop();
      cancelled.abort();
      await reader?.cancel().catch(() => {});
    }
  }
  return {
    size,
    chunks: chunks(),
    cancel() {
      idle.stop();
      cancelled.abort();
      reader?.cancel().catch(() => {});
    },
  };
}

/**
 * Uploads exactly `bytes` bytes from `source` (`PUT path?query&session_id=` with `Content-Length`). When
 * `source` throws, the request is aborted (the host never sees the whole body) and that error is rethrown.
 *
 * @throws HvkitError as {@link openDownload}, `PROTOCOL` when the source yields more or fewer bytes, or
 *   what `source` throws.
 */
export async function upload(
  t: TransferTarget,
  path: string,
  query: Record<string, string>,
  source: AsyncIterable<Uint8Array>,
  bytes: number,
): Promise<void> {
  const idle = idleDeadline(t.idleTimeoutMs, t);
  const failed = new AbortController();
  const signal = AbortSignal.any([...(t.signal ? [t.signal] : []), idle.signal, failed.signal]);
  if (signal.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: t.operation });
  let sourceError: unknown;
  let sent = 0;
  const iterator = source[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      idle.touch();
      try {
        const step = await iterator.next();
        if (step.done) {
          if (sent !== bytes) throw failure(t, 'PROTOCOL', `the source ended at byte ${sent} of ${bytes}.`);
          controller.close();
          return;
        }
        sent += step.value.byteLength;
        if (sent > bytes) throw failure(t, 'PROTOCOL', `the source yields more than ${bytes} bytes.`);
        controller.enqueue(step.value);
      } catch (error) {
        sourceError = error;
        controller.error(error);
        failed.abort(error);
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  // A small upload is read whole (and so verified) before the request starts: a source that fails then
  // sends nothing at all. A larger one streams, and a failing source cuts it.
  let payload: ReadableStream<Uint8Array> | Uint8Array = body;
  if (bytes <= UPLOAD_BUFFER_BYTES) {
    const buffer = new Uint8Array(bytes);
    const reader = body.getReader();
    let at = 0;
    try {
      for (;;) {
        const step = await reader.read();
        if (step.done) break;
        buffer.set(step.value, at);
        at += step.value.byteLength;
      }
    } catch (error) {
      idle.stop();
      throw sourceError ?? error;
    }
    if (signal.aborted) {
      idle.stop();
      throw abortError(signal, { adapter: ADAPTER_ID, operation: t.operation });
    }
    payload = buffer;
  }
  idle.touch();
  try {
    const response = await send(
      t,
      path,
      query,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) },
        body: payload,
      },
      signal,
    ).catch((error: unknown) => {
      throw sourceError ?? error;
    });
    if (sourceError !== undefined) throw sourceError;
    if (response.status >= 300) throw await responseError(t, response);
    await readResponseText(response, { maxBytes: 64 * 1024, adapter: ADAPTER_ID }).catch(() => '');
  } finally {
    idle.stop();
  }
}
