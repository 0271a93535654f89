/**
 * Reading an HTTP response body with a size bound and a deadline, so a hostile or broken server (an
 * endless body, one that trickles, a dropped connection) makes the read fail with a typed error instead
 * of exhausting memory or hanging.
 */

import { isUtf8 } from 'node:buffer';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { abortError, checkSignal, type ErrorContext, raceAbort } from '../signal/abort';
import { networkErrorToHvkitError } from './dialers';

/** Options of {@link readResponseBody} and {@link readResponseText}. */
export interface ReadBodyOptions extends ErrorContext {
  /**
   * Largest body accepted, in bytes (a positive integer). A larger `Content-Length` is refused before
   * anything is read; a body that streams past the bound is cancelled as soon as it does.
   */
  maxBytes: number;
  /**
   * The deadline of the read: when it aborts, reading stops at once with its `ABORTED`/`TIMEOUT` error and
   * the body is cancelled, even when the body stream itself ignores the signal.
   */
  signal?: AbortSignal;
  /** Where the body comes from, for messages (an origin; never a URL carrying secrets). */
  target?: string;
}

/**
 * Reads a response body into one Buffer, at most `maxBytes` of it. With a `Content-Length` the buffer is
 * allocated once and filled, so the body is held in memory once, not twice.
 *
 * @throws HvkitError `PROTOCOL` for a body above `maxBytes` (`details.maxBytes`); `ABORTED`/`TIMEOUT` when
 *   `signal` aborts; `CONNECTION_LOST` (or `TIMEOUT` for undici's body timeout) when the connection fails
 *   during the read. The body is cancelled in every failure case.
 * @throws TypeError for a bad `maxBytes` or `signal`.
 */
export async function readResponseBody(response: Response, options: ReadBodyOptions): Promise<Buffer> {
  const { maxBytes, target } = options;
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new TypeError(`maxBytes must be a positive integer, got ${String(maxBytes)}.`);
  }
  const signal = checkSignal(options.signal);
  const context: ErrorContext = { adapter: options.adapter, operation: options.operation };
  const body = response.body;
  const tooLarge = () =>
    hvkitError(
      'PROTOCOL',
      `${describe(context)}the response body${target ? ` from ${target}` : ''} is larger than ${maxBytes} bytes.`,
      { ...context, retryable: false, details: { maxBytes, ...(target ? { target } : {}) } },
    );
  const header = response.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header.trim()) ? Number(header) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    await body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!body) return Buffer.alloc(0);
  if (signal?.aborted) {
    await body.cancel().catch(() => {});
    throw abortError(signal, context);
  }
  const reader = body.getReader();
  // Filled in place while the body matches its Content-Length; chunks otherwise.
  let buffer: Buffer | undefined = declared !== undefined ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await raceAbort(reader.read(), signal, context);
      if (done) break;
      if (total + value.byteLength > maxBytes) throw tooLarge();
      if (buffer !== undefined && total + value.byteLength <= buffer.length) {
        buffer.set(value, total);
      } else {
        if (buffer !== undefined) {
          // Longer than declared: keep what we have and go on in chunks.
          chunks.push(buffer.subarray(0, total));
          buffer = undefined;
        }
        chunks.push(value);
      }
      total += value.byteLength;
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    if (HvkitError.isInstance(error)) throw error;
    if (signal?.aborted) throw abortError(signal, context);
    throw networkErrorToHvkitError(error, { ...context, target });
  } finally {
    try {
      reader.releaseLock();
    } catch {
      // A read still pending after an abort; the cancel above ends it.
    }
  }
  return buffer !== undefined ? buffer.subarray(0, total) : Buffer.concat(chunks, total);
}

/**
 * {@link readResponseBody} decoded as UTF-8.
 *
 * @throws HvkitError `PROTOCOL` also when the body is not valid UTF-8; otherwise as {@link readResponseBody}.
 */
export async function readResponseText(response: Response, options: ReadBodyOptions): Promise<string> {
  const bytes = await readResponseBody(response, options);
  if (!isUtf8(bytes)) {
    const context: ErrorContext = { adapter: options.adapter, operation: options.operation };
    throw hvkitError('PROTOCOL', `${describe(context)}the response body is not valid UTF-8.`, {
      ...context,
      retryable: false,
    });
  }
  return bytes.toString('utf8');
}

function describe(context: ErrorContext): string {
  const parts = [context.adapter, context.operation].filter(Boolean);
  return parts.length ? `${parts.join(' ')}: ` : '';
}
