/**
 * A backup sink over any Writable, and the pump that every sink uses: pull, hash, write, honour
 * backpressure, report progress, stop on abort.
 */

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type { BackupFile } from '../hypervisor/v1/model';
import { abortError, checkSignal, raceAbort } from '../signal/abort';
import type { BackupSink, SinkWriteOptions } from './sink';

/** Longest path segment of a sink file name, in UTF-8 bytes (`NAME_MAX` of Linux and most file systems). */
export const MAX_SINK_NAME_SEGMENT_BYTES = 255;

/** Longest sink file name, in UTF-8 bytes. */
export const MAX_SINK_NAME_BYTES = 1024;

/**
 * Characters a sink file name may not hold: C0 and C1 controls (newlines, tabs, escapes) and DEL, the
 * Unicode line and paragraph separators, bidirectional marks, embeddings, overrides and isolates (which make
 * a name display as another one), and look-alikes of `/` and `\` (fullwidth, division, fraction and big
 * solidus, fullwidth and small reverse solidus).
 */
const UNSAFE_NAME_CHARS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to refuse.
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\u2044\u2215\u29f8\u29f9\ufe68\uff0f\uff3c]/u;

/**
 * A file name as messages show it: in double quotes, with controls, separators, bidirectional characters
 * and lone surrogates as `\u` escapes, cut to 200 characters.
 */
function printableName(name: string): string {
  const cut = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return JSON.stringify(cut).replace(
    new RegExp(`${UNSAFE_NAME_CHARS.source}|\\p{Cs}`, 'gu'),
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Checks a sink file name: relative, `/`-separated, no `..` or `.` segments, no empty segment, no NUL or
 * `\`; no control characters (newlines included), bidirectional marks, embeddings, overrides or isolates,
 * or look-alikes of `/` and `\`; valid UTF-16 (no lone surrogate); each segment at most
 * 255 and the whole name at most 1024 bytes of UTF-8.
 *
 * @throws HvkitError `INVALID_ARGUMENT` naming the problem (the name shown escaped); TypeError for a non-string.
 */
export function checkSinkFileName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError('Backup file name must be a string.');
  const bad = (why: string) =>
    hvkitError('INVALID_ARGUMENT', `Invalid backup file name ${printableName(name)}: ${why}.`, {
      details: { name: name.slice(0, 200) },
    });
  if (name === '') throw bad('empty');
  if (name.includes('\0')) throw bad('contains a NUL byte');
  if (name.includes('\\')) throw bad('contains a backslash');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('absolute');
  const unsafe = UNSAFE_NAME_CHARS.exec(name);
  if (unsafe) {
    throw bad(
      `contains U+${(unsafe[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')} (a control, ` +
        'bidirectional or slash-like character)',
    );
  }
  if (/\p{Cs}/u.test(name)) throw bad('contains a lone UTF-16 surrogate');
  if (Buffer.byteLength(name) > MAX_SINK_NAME_BYTES) throw bad(`longer than ${MAX_SINK_NAME_BYTES} bytes`);
  for (const segment of name.split('/')) {
    if (segment === '') throw bad('empty path segment');
    if (segment === '..' || segment === '.') throw bad(`"${segment}" segment`);
    if (Buffer.byteLength(segment) > MAX_SINK_NAME_SEGMENT_BYTES) {
      throw bad(`a path segment is longer than ${MAX_SINK_NAME_SEGMENT_BYTES} bytes`);
    }
  }
  return name;
}

/**
 * The longest start of `text` that fits in `maxBytes` bytes of UTF-8, cut between code points (never
 * inside one): what a sink puts of a file name into a temporary name that must stay within
 * {@link MAX_SINK_NAME_SEGMENT_BYTES}.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (typeof text !== 'string') throw new TypeError('truncateUtf8: text must be a string.');
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    throw new TypeError('truncateUtf8: maxBytes must be a non-negative integer.');
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/** Why a sink refuses a directory on the way to a file (see {@link sinkPathError}). */
export type SinkPathProblem = 'symlink' | 'not-directory' | 'replaced';

const SINK_PATH_PROBLEMS: Record<SinkPathProblem, [what: string, backendCode: string]> = {
  symlink: ['is a symbolic link', 'ELOOP'],
  'not-directory': ['is not a directory', 'ENOTDIR'],
  replaced: ['was replaced while in use', 'ESTALE'],
};

/**
 * The error every sink throws when a directory below its own is a symbolic link (`backendCode` `ELOOP`),
 * not a directory (`ENOTDIR`), or was swapped for something else during the write (`ESTALE`): `CONFLICT`,
 * with the path in `details.path`. Sinks never follow links below their directory.
 */
export function sinkPathError(
  path: string,
  problem: SinkPathProblem,
  context: { operation?: string; cause?: unknown; where?: string } = {},
): HvkitError {
  const [what, backendCode] = SINK_PATH_PROBLEMS[problem];
  return hvkitError(
    'CONFLICT',
    `${context.where ?? context.operation ?? 'sink'}: ${JSON.stringify(path)} ${what}; a sink does not ` +
      'follow symbolic links below its directory.',
    { operation: context.operation, cause: context.cause, backendCode, details: { path } },
  );
}

/** Validates {@link SinkWriteOptions}. */
export function checkSinkWriteOptions(options: SinkWriteOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Sink write options must be an object.');
  checkSignal(options.signal);
  const { expectedBytes, onProgress } = options;
  if (expectedBytes !== undefined && !(Number.isSafeInteger(expectedBytes) && expectedBytes >= 0)) {
    throw new TypeError('expectedBytes must be a non-negative integer.');
  }
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new TypeError('onProgress must be a function.');
}

function checkSource(source: unknown): AsyncIterable<Uint8Array> {
  if (
    typeof source !== 'object' ||
    source === null ||
    typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function'
  ) {
    throw new TypeError('Backup source must be an AsyncIterable<Uint8Array>.');
  }
  return source as AsyncIterable<Uint8Array>;
}

/**
 * Writes `source` into `writable` and ends it; resolves once it has finished, with the byte count and the
 * SHA-256 of the bytes written. The next chunk is pulled only after the previous one was accepted (or the
 * stream drained), so a slow destination slows the producer down.
 *
 * Rejects (without ending `writable`; the caller destroys or discards it) with `ABORTED` when `signal`
 * aborts, `PROTOCOL` when the count differs from `expectedBytes` (as soon as it exceeds it), the source's
 * own error when it throws, or the writable's error converted by `destinationError`. The source iterator
 * is closed (`return()`) on failure.
 */
export async function pumpToWritable(
  source: AsyncIterable<Uint8Array>,
  writable: Writable,
  name: string,
  options: SinkWriteOptions & {
    /** Turns an error of the writable into the error to throw (default: `REMOTE` with the error as cause). */
    destinationError?: (error: unknown) => HvkitError;
  } = {},
): Promise<BackupFile> {
  const { signal, expectedBytes, onProgress } = options;
  const destinationError =
    options.destinationError ??
    ((error: unknown) =>
      hvkitError('REMOTE', `Writing backup file ${JSON.stringify(name)} failed: ${messageOf(error)}`, {
        operation: 'sink.writeFile',
        cause: error,
      }));
  const fromDestination = (error: unknown): unknown =>
    HvkitError.isInstance(error) ? error : destinationError(error);
  const hash = createHash('sha256');
  let bytes = 0;
  const iterator = checkSource(source)[Symbol.asyncIterator]();
  let exhausted = false;
  // Errors of the writable while we wait for the source surface on the next write or at the end.
  let writableError: unknown;
  const onError = (error: unknown) => {
    writableError ??= error;
  };
  writable.on('error', onError);
  const context = { operation: 'sink.writeFile' };
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal, context);
      if (writableError !== undefined) throw fromDestination(writableError);
      const step = await raceAbort(iterator.next(), signal, context);
      if (step.done) {
        exhausted = true;
        break;
      }
      const chunk = step.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`Backup source yielded ${typeof chunk}, expected Uint8Array chunks.`);
      }
      if (chunk.byteLength === 0) continue;
      bytes += chunk.byteLength;
      if (expectedBytes !== undefined && bytes > expectedBytes) {
        throw sizeMismatch(name, expectedBytes, bytes, true);
      }
      hash.update(chunk);
      try {
        if (!writable.write(chunk)) await waitDrain(writable, signal, context);
      } catch (error) {
        throw fromDestination(error);
      }
      if (writableError !== undefined) throw fromDestination(writableError);
      onProgress?.({ phase: 'write', processedBytes: bytes, totalBytes: expectedBytes, file: name });
    }
    if (expectedBytes !== undefined && bytes !== expectedBytes)
      throw sizeMismatch(name, expectedBytes, bytes, false);
    try {
      writable.end();
      await raceAbort(finished(writable), signal, context);
    } catch (error) {
      throw fromDestination(error);
    }
    if (bytes === 0)
      onProgress?.({ phase: 'write', processedBytes: 0, totalBytes: expectedBytes, file: name });
    return { name, bytes, sha256: hash.digest('hex') };
  } catch (error) {
    if (!exhausted) {
      // Let the producer clean up (close its handles); don't wait for a producer that hangs.
      Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => {});
    }
    throw error;
  } finally {
    writable.removeListener('error', onError);
  }
}

async function waitDrain(
  writable: Writable,
  signal: AbortSignal | undefined,
  context: { operation: string },
): Promise<void> {
  if (writable.destroyed) throw writable.errored ?? new Error('The destination was closed.');
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([
      once(writable, 'drain', { signal: controller.signal }),
      once(writable, 'close', { signal: controller.signal }).then(() => {
        throw writable.errored ?? new Error('The destination closed before accepting all data.');
      }),
    ]);
  } catch (error) {
    if (signal?.aborted) throw abortError(signal, context);
    throw error;
  } finally {
    controller.abort();
    signal?.removeEventListener('abort', onAbort);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sizeMismatch(name: string, expected: number, actual: number, early: boolean): HvkitError {
  return hvkitError(
    'PROTOCOL',
    `Backup file ${JSON.stringify(name)}: expected ${expected} bytes, ${early ? 'got more than that' : `got ${actual}`}.`,
    { operation: 'sink.writeFile', details: { name, expectedBytes: expected, receivedBytes: actual } },
  );
}

/** Options of {@link createStreamSink}. */
export interface StreamSinkOptions {
  /** Sink kind (default `stream`). */
  kind?: string;
  /** Where the data goes, for messages (default `stream`). Never put a secret here. */
  location?: string;
  /** Removes a file written earlier; becomes the sink's `removeFile`. */
  remove?: (name: string, options: { signal?: AbortSignal }) => Promise<void>;
}

/**
 * A sink over any Writable: `open(name)` returns (or resolves to) the stream for one file. Data is hashed
 * while it is written, with backpressure, and `expectedBytes` is checked.
 *
 * On abort or failure the stream is destroyed with the error (so the receiver can tell the data is
 * incomplete and discard it) and the write rejects with `ABORTED`, the size `PROTOCOL` error, the source's
 * own error, or the stream's error (as `REMOTE` with the error as `cause`, unless it is an HvkitError).
 */
export function createStreamSink(
  open: (name: string, options: { signal?: AbortSignal }) => Writable | Promise<Writable>,
  options: StreamSinkOptions = {},
): BackupSink {
  if (typeof open !== 'function') throw new TypeError('createStreamSink: open must be a function.');
  const sink: BackupSink = {
    kind: options.kind ?? 'stream',
    location: options.location ?? 'stream',
    async writeFile(name, source, writeOptions = {}) {
      checkSinkFileName(name);
      checkSinkWriteOptions(writeOptions);
      checkSource(source);
      const { signal } = writeOptions;
      if (signal?.aborted) throw abortError(signal, { operation: 'sink.writeFile' });
      const writable = await raceAbort(Promise.resolve(open(name, { signal })), signal, {
        operation: 'sink.writeFile',
      });
      if (!writable || typeof (writable as Writable).write !== 'function') {
        throw new TypeError('createStreamSink: open must return a Writable.');
      }
      try {
        return await pumpToWritable(source, writable, name, writeOptions);
      } catch (error) {
        // Late 'error' events after destroy must not crash the process.
        writable.on('error', () => {});
        writable.destroy(error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
    },
  };
  if (options.remove) {
    const remove = options.remove;
    sink.removeFile = async (name, removeOptions = {}) => {
      checkSinkFileName(name);
      await remove(name, removeOptions);
    };
  }
  return sink;
}
