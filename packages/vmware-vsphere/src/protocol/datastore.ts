/**
 * File transfers with the server the session is logged in to: datastore file downloads and uploads
 * (`/folder`, see {@link datastoreFileUrl}) and the ESXi configuration bundle. What a hostile or broken server cannot do here:
 *
 * - send the session elsewhere: redirects are never followed (`PROTOCOL`), and a URL the server supplies
 *   is reduced to its path and query on the session's own scheme, host and port ({@link onSessionOrigin});
 * - fill the disk: a declared size above the bound is refused before anything is written, and a body is
 *   cut as soon as it passes its declared size or the bound;
 * - stall a backup forever: no response or no data for `idleTimeoutMs` is a `TIMEOUT`.
 *
 * A dropped or stalled transfer is resumed with `Range` from where it stopped (at most `maxResumes`
 * times); each (re)opening goes through core's `retry` (backoff, `Retry-After`). Every failure is a typed
 * HvkitError.
 */

import {
  abortError,
  type FetchLike,
  fetchErrorToHvkitError,
  HvkitError,
  hvkitError,
  networkErrorToHvkitError,
  raceAbort,
  retry,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

import { commonStatusError } from './http-status';

/** Default idle deadline of a backup download: 60 s without a response or a byte is `TIMEOUT`. */
export const DEFAULT_BACKUP_IDLE_TIMEOUT_MS = 60_000;
/** Uploads up to this size (1 MiB) are read whole and sent as one buffer; larger ones are streamed. */
export const UPLOAD_BUFFER_BYTES = 1024 * 1024;
/** Default number of `Range` resumes after a dropped or stalled transfer. */
export const DEFAULT_DOWNLOAD_RESUMES = 3;

/**
 * The URL a server supplied (`http://*\/downloads/...`, another host, another scheme) reduced to its path
 * and query on the session's own origin: the session cookie only ever goes where the session was opened,
 * over the same scheme (https never falls back to http).
 *
 * @throws HvkitError `PROTOCOL` when `supplied` is not a URL or path.
 */
export function onSessionOrigin(supplied: string, session: URL, operation?: string): URL {
  let parsed: URL;
  try {
    // `*` stands for "this host" in ESXi's answers; any host will do, only the path is kept.
    parsed = new URL(
      String(supplied).replace(/^([a-z][a-z0-9+.-]*:\/\/)\*(?=[:/]|$)/i, '$1host.invalid'),
      session,
    );
  } catch (error) {
    throw hvkitError('PROTOCOL', 'The server supplied a download location that is not a URL.', {
      adapter: ADAPTER_ID,
      operation,
      cause: error,
      retryable: false,
    });
  }
  const url = new URL(session.origin);
  url.pathname = parsed.pathname;
  url.search = parsed.search;
  return url;
}

/** A file on a datastore: the datastore's name and the path inside it (`vm-1/disk.vmdk`). */
export interface DatastoreFile {
  datastore: string;
  path: string;
}

/**
 * The URL of a datastore file on the session's server: `/folder/<path>?dcPath=<datacenter>&dsName=<datastore>`
 * (each path segment percent-encoded), resolved against the session URL so it stays on its origin.
 */
export function datastoreFileUrl(file: DatastoreFile, dcPath: string, session: URL): URL {
  const url = new URL(`/folder/${file.path.split('/').map(encodeURIComponent).join('/')}`, session);
  url.searchParams.set('dcPath', dcPath);
  url.searchParams.set('dsName', file.datastore);
  return url;
}

/** Options of {@link openDownload} and {@link headDownload}. */
export interface DownloadOptions {
  fetch: FetchLike;
  /** The session's Cookie header, read before every request (a re-login may change it). */
  cookie: () => string | undefined;
  /**
   * Largest size accepted, in bytes, or `undefined` when only the server's declared size can bound the
   * file (a download without either is refused).
   */
  maxBytes: number | undefined;
  /** No response or no data for this long is `TIMEOUT` (`Infinity` turns it off). */
  idleTimeoutMs: number;
  /** `Range` resumes after a dropped or stalled transfer (default {@link DEFAULT_DOWNLOAD_RESUMES}). */
  maxResumes?: number;
  signal?: AbortSignal;
  /** Named in errors, e.g. `backups.backup`. */
  operation: string;
  /** The file, for messages, e.g. `Datastore file [ds] vm/disk.vmdk`. */
  what: string;
}

/** An opened download. */
export interface Download {
  /** The file's size as the server declared it (`Content-Length`), when it did. */
  readonly size: number | undefined;
  /** The file's bytes, resumed after failures; read it once. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Releases the connection when `chunks` will not be read (after a failure elsewhere). */
  cancel(): void;
}

/** One HTTP exchange: the response, its idle deadline and the body reader. */
interface Attempt {
  readonly response: Response;
  read(): Promise<Uint8Array | undefined>;
  cancel(): void;
}

/**
 * An idle deadline: a signal that aborts with a retryable `TIMEOUT` when a wait on the server (`arm` to
 * `disarm`) lasts longer than `ms`. Time the consumer takes between reads (a slow sink) does not count.
 */
function idleDeadline(ms: number, context: { operation: string; what: string }) {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    if (!Number.isFinite(ms) || controller.signal.aborted) return;
    timer = setTimeout(() => {
      controller.abort(
        hvkitError('TIMEOUT', `${context.what}: no data for ${ms} ms.`, {
          adapter: ADAPTER_ID,
          operation: context.operation,
          retryable: true,
          details: { idleTimeoutMs: ms },
        }),
      );
    }, ms);
    timer.unref?.();
  };
  return { signal: controller.signal, arm, disarm };
}

function statusError(response: Response, options: Pick<DownloadOptions, 'operation' | 'what'>): HvkitError {
  const status = response.status;
  const context = {
    adapter: ADAPTER_ID,
    operation: options.operation,
    backendCode: status,
    details: { status },
  };
  const where = `${options.what}: HTTP ${status}`;
  if (status >= 300 && status < 400)
    return hvkitError(
      'PROTOCOL',
      `${where}, a redirect. Redirects are not followed: the session cookie stays with the server it belongs to.`,
      { ...context, retryable: false },
    );
  if (status === 404) return hvkitError('NOT_FOUND', `${options.what} not found.`, context);
  return (
    commonStatusError(response, where, { adapter: ADAPTER_ID, operation: options.operation }) ??
    hvkitError('REMOTE', `${where}.`, { ...context, retryable: false })
  );
}

/** Sends one request; the signal it gets also carries the idle deadline. */
async function send(
  url: URL,
  method: 'GET' | 'HEAD',
  offset: number,
  options: DownloadOptions,
): Promise<{ response: Response; idle: ReturnType<typeof idleDeadline>; signal: AbortSignal }> {
  const idle = idleDeadline(options.idleTimeoutMs, options);
  const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
  const headers: Record<string, string> = {};
  const cookie = options.cookie();
  if (cookie) headers.cookie = cookie;
  if (offset > 0) headers.range = `bytes=${offset}-`;
  idle.arm();
  try {
    const response = await options.fetch(url, { method, headers, signal, redirect: 'manual' });
    return { response, idle, signal };
  } catch (error) {
    throw fetchErrorToHvkitError(error, {
      signal,
      target: url.origin,
      adapter: ADAPTER_ID,
      operation: options.operation,
    });
  } finally {
    idle.disarm();
  }
}

/** Opens the file at `offset` (one try): checks the status and, on a resume, the range the server sends. */
async function attempt(url: URL, offset: number, options: DownloadOptions): Promise<Attempt> {
  const { response, idle, signal } = await send(url, 'GET', offset, options);
  const context = { adapter: ADAPTER_ID, operation: options.operation };
  const fail = (error: HvkitError): never => {
    response.body?.cancel().catch(() => {});
    throw error;
  };
  if (response.status !== 200 && response.status !== 206) fail(statusError(response, options));
  if (offset > 0) {
    const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
    if (response.status !== 206 || Number(start) !== offset)
      fail(
        hvkitError('PROTOCOL', `${options.what}: the server did not resume at byte ${offset} as asked.`, {
          ...context,
          retryable: false,
        }),
      );
  }
  const reader = response.body?.getReader();
  let cancelled = false;
  const cancel = () => {
    if (cancelled) return;
    cancelled = true;
    idle.disarm();
    reader?.cancel().catch(() => {});
  };
  return {
    response,
    cancel,
    async read() {
      if (!reader) return undefined;
      idle.arm();
      try {
        const step = await raceAbort(reader.read(), signal, context);
        return step.done ? undefined : step.value;
      } catch (error) {
        cancel();
        if (HvkitError.isInstance(error)) throw error;
        if (signal.aborted) throw abortError(signal, context);
        throw networkErrorToHvkitError(error, { ...context, target: url.origin });
      } finally {
        idle.disarm();
      }
    },
  };
}

function tooLarge(options: DownloadOptions, limit: number, declared?: number): HvkitError {
  return hvkitError(
    'PROTOCOL',
    declared !== undefined
      ? `${options.what}: the server declares ${declared} bytes, more than the ${limit} bytes this file can have.`
      : `${options.what}: the server sent more than the ${limit} bytes this file can have.`,
    {
      adapter: ADAPTER_ID,
      operation: options.operation,
      retryable: false,
      details: { maxBytes: limit, ...(declared !== undefined ? { declaredBytes: declared } : {}) },
    },
  );
}

/**
 * Opens a download of `url` (retried with backoff on temporary failures) and returns its declared size
 * and a resumable stream of its bytes.
 *
 * @throws HvkitError `NOT_FOUND` (404), `PROTOCOL` (a redirect, a declared size above `maxBytes`, no bound
 *   at all), `AUTH_FAILED`/`PERMISSION_DENIED`, `REMOTE`, `CONNECTION_LOST`, `TIMEOUT`, `ABORTED`.
 */
export async function openDownload(url: URL, options: DownloadOptions): Promise<Download> {
  const context = { adapter: ADAPTER_ID, operation: options.operation };
  const open = (offset: number) =>
    retry(() => attempt(url, offset, options), { signal: options.signal, maxAttempts: 3, ...context });
  let current = await open(0);
  const header = current.response.headers.get('content-length');
  const size = header !== null && /^\d+$/.test(header.trim()) ? Number(header) : undefined;
  const declaredOrBound = size ?? options.maxBytes;
  if (declaredOrBound === undefined) {
    current.cancel();
    throw hvkitError(
      'PROTOCOL',
      `${options.what}: the server declares no size and none is known, so the download cannot be bounded.`,
      { ...context, retryable: false },
    );
  }
  if (size !== undefined && options.maxBytes !== undefined && size > options.maxBytes) {
    current.cancel();
    throw tooLarge(options, options.maxBytes, size);
  }
  const limit: number = declaredOrBound;
  const maxResumes = options.maxResumes ?? DEFAULT_DOWNLOAD_RESUMES;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let offset = 0;
    let resumes = 0;
    try {
      for (;;) {
        try {
          for (;;) {
            const chunk = await current.read();
            if (chunk === undefined) break;
            if (offset + chunk.byteLength > limit) throw tooLarge(options, limit);
            offset += chunk.byteLength;
            yield chunk;
          }
          if (size !== undefined && offset < size) {
            throw hvkitError(
              'CONNECTION_LOST',
              `${options.what}: the transfer ended at byte ${offset} of ${size}.`,
              {
                ...context,
                retryable: true,
              },
            );
          }
          return;
        } catch (error) {
          current.cancel();
          if (!HvkitError.isInstance(error) || !error.retryable || resumes >= maxResumes) throw error;
          if (options.signal?.aborted) throw abortError(options.signal, context);
          resumes++;
          current = await open(offset);
        }
      }
    } finally {
      current.cancel();
    }
  }
  return { size, chunks: chunks(), cancel: () => current.cancel() };
}

/**
 * Whether the file exists (HEAD): `true` for 200, `false` for 404, typed errors otherwise (a redirect is
 * `PROTOCOL`, not "missing").
 */
export async function downloadExists(url: URL, options: DownloadOptions): Promise<boolean> {
  return (await headFile(url, options)).exists;
}

/**
 * HEAD of a file: whether it exists and its declared size (`Content-Length`), when the server states one.
 * 404 is `{ exists: false }`; other failures are typed errors (a redirect is `PROTOCOL`, not "missing"; a
 * declared size above `maxBytes` is `PROTOCOL`).
 */
export async function headFile(
  url: URL,
  options: DownloadOptions,
): Promise<{ exists: boolean; size?: number }> {
  return retry(
    async () => {
      const { response } = await send(url, 'HEAD', 0, options);
      await response.body?.cancel().catch(() => {});
      if (response.status === 404) return { exists: false };
      if (response.status !== 200) throw statusError(response, options);
      const header = response.headers.get('content-length');
      if (header === null || !/^\d+$/.test(header.trim())) return { exists: true };
      const size = Number(header);
      if (options.maxBytes !== undefined && size > options.maxBytes)
        throw tooLarge(options, options.maxBytes, size);
      return { exists: true, size };
    },
    { signal: options.signal, maxAttempts: 3, adapter: ADAPTER_ID, operation: options.operation },
  );
}

/** Options of {@link uploadFile}: those of a download, minus the bound (the caller states the exact size). */
export type UploadOptions = Omit<DownloadOptions, 'maxBytes' | 'maxResumes'>;

/**
 * Uploads `bytes` bytes from `source` to `url` with one `PUT` (the datastore file endpoint creates or
 * replaces the file), on the session's origin with its cookie; redirects are not followed. Up to
 * {@link UPLOAD_BUFFER_BYTES} the source is read whole before the request starts; larger files stream with
 * their `Content-Length` stated. The body must yield exactly `bytes` bytes: more or fewer is `PROTOCOL` and
 * the request is aborted (or never sent), so the server never sees a complete body. An error thrown by `source` (a file that fails verification) aborts the request and
 * is rethrown as it is. No progress for `idleTimeoutMs` (the server not reading, or not answering) is
 * `TIMEOUT`. Not retried: a body cannot be replayed.
 *
 * @throws HvkitError `PROTOCOL`, `NOT_FOUND`, `AUTH_FAILED`/`PERMISSION_DENIED`, `REMOTE`, `CONNECTION_LOST`,
 *   `TIMEOUT`, `ABORTED`, or what `source` throws.
 */
export async function uploadFile(
  url: URL,
  source: AsyncIterable<Uint8Array>,
  bytes: number,
  options: UploadOptions,
): Promise<void> {
  const context = { adapter: ADAPTER_ID, operation: options.operation };
  const idle = idleDeadline(options.idleTimeoutMs, options);
  // Aborts the request as soon as the source fails, whatever the fetch does with an errored body stream.
  const failed = new AbortController();
  const signal = AbortSignal.any([...(options.signal ? [options.signal] : []), idle.signal, failed.signal]);
  if (signal.aborted) throw abortError(signal, context);
  let sourceError: unknown;
  let sent = 0;
  const iterator = source[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      idle.arm();
      try {
        const step = await iterator.next();
        if (step.done) {
          if (sent !== bytes)
            throw hvkitError('PROTOCOL', `${options.what}: the source ended at byte ${sent} of ${bytes}.`, {
              ...context,
              retryable: false,
            });
          controller.close();
          return;
        }
        sent += step.value.byteLength;
        if (sent > bytes)
          throw hvkitError('PROTOCOL', `${options.what}: the source yields more than ${bytes} bytes.`, {
            ...context,
            retryable: false,
          });
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
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  const cookie = options.cookie();
  if (cookie) headers.cookie = cookie;
  // A small file is read whole first (so it is verified before the request starts) and sent as a buffer,
  // whose length fetch states itself; a larger one is streamed with its length stated.
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
      idle.disarm();
      throw sourceError ?? error;
    }
    payload = buffer;
  } else headers['content-length'] = String(bytes);
  // An abort while the source was read: no request at all.
  if (sourceError === undefined && signal.aborted) {
    idle.disarm();
    throw abortError(signal, context);
  }
  idle.arm();
  let response: Response;
  try {
    response = await options.fetch(url, {
      method: 'PUT',
      headers,
      body: payload,
      signal,
      redirect: 'manual',
      ...(payload === body ? { duplex: 'half' } : {}),
    } as RequestInit);
  } catch (error) {
    if (sourceError !== undefined) throw sourceError;
    throw fetchErrorToHvkitError(error, { signal, target: url.origin, ...context });
  } finally {
    idle.disarm();
  }
  // Not awaited: some fetch implementations (msw's) never settle cancel() of an empty body.
  response.body?.cancel().catch(() => {});
  if (sourceError !== undefined) throw sourceError;
  if (response.status < 200 || response.status > 299) throw statusError(response, options);
  if (sent !== bytes)
    throw hvkitError('PROTOCOL', `${options.what}: the server answered before the whole body was sent.`, {
      ...context,
      retryable: false,
    });
}
