import { createHash } from 'node:crypto';
import {
  BACKUP_MANIFEST_FILE,
  type BackupFile,
  type BackupListing,
  type BackupSink,
  type BackupSource,
  type HvkitError,
  hvkitError,
  listingOf,
  parseBackupManifest,
  type SinkWriteOptions,
} from '@hvkit/core';

/** One `writeFile` call the capturing sink saw. */
export interface CapturedWrite {
  name: string;
  status: 'writing' | 'complete' | 'failed' | 'removed';
  /** Bytes received so far. */
  bytes: number;
  /** Lower-case hex SHA-256 of the bytes received (set once complete). */
  sha256?: string;
  /** Whether the adapter passed a signal to the sink. */
  signalPassed: boolean;
  /** The bytes received, when the sink keeps data ({@link CapturingSink.keepData}) and the write completed. */
  data?: Uint8Array;
}

/**
 * The sink the suite hands to `backups.backup`: it behaves like a well-made sink (pulls chunks, honours the
 * signal it is given between chunks, checks `expectedBytes`, makes a file visible only once complete,
 * supports `removeFile`) and records what it received, hashing it itself. It stores the data only with
 * {@link CapturingSink.keepData}, so that {@link CapturingSink.source} can read the artifact back.
 */
export class CapturingSink implements BackupSink {
  readonly kind = 'conformance-capture';
  readonly location = 'memory (hvkit conformance suite)';
  /** Every write, in order. */
  readonly writes: CapturedWrite[] = [];
  /** Things the adapter did wrong that the sink noticed (bad names, non-byte chunks...). */
  readonly problems: string[] = [];
  /** Called after every chunk with the bytes received so far over all files. */
  onChunk: ((totalBytes: number) => void) | undefined;
  /**
   * Makes the sink fail like a full disk: once this many bytes have arrived over all files, the write in
   * progress (and every later one) rejects with {@link CapturingSink.failure}.
   */
  failAfterBytes: number | undefined;
  /** The error the sink failed with, once it has (see {@link CapturingSink.failAfterBytes}). */
  failure: HvkitError | undefined;
  /** Keep the bytes of complete files (for restore checks). */
  keepData = false;
  #total = 0;

  constructor(options: { keepData?: boolean } = {}) {
    this.keepData = options.keepData ?? false;
  }

  /**
   * A {@link BackupSource} over the complete files this sink holds (it needs `keepData`): what restore checks
   * hand to `backups.restore`. `onChunk` is called after each chunk `readFile` yields (with the count so
   * far), so a check can abort at a chosen point; chunks are 64 KiB.
   */
  source(options: { onChunk?: (chunks: number) => void } = {}): BackupSource {
    const files = (): Map<string, Uint8Array> => {
      const out = new Map<string, Uint8Array>();
      for (const [name, w] of this.completeFiles()) if (w.data) out.set(name, w.data);
      return out;
    };
    let chunks = 0;
    const aborted = (signal: AbortSignal | undefined, operation: string) =>
      hvkitError('ABORTED', `conformance source: ${operation} aborted`, { operation, cause: signal?.reason });
    const readManifest = async (path: string, opts: { signal?: AbortSignal } = {}) => {
      if (opts.signal?.aborted) throw aborted(opts.signal, 'source.readManifest');
      const data = files().get(`${path}/${BACKUP_MANIFEST_FILE}`);
      if (!data) {
        throw hvkitError('NOT_FOUND', `conformance source: no manifest in ${JSON.stringify(path)}`, {
          operation: 'source.readManifest',
        });
      }
      return parseBackupManifest(data);
    };
    return {
      kind: 'conformance-capture',
      location: 'memory (hvkit conformance suite)',
      list: async (opts = {}): Promise<BackupListing[]> => {
        if (opts.signal?.aborted) throw aborted(opts.signal, 'source.list');
        const folders = new Map<string, { guestFolder: string; id: string }>();
        for (const name of files().keys()) {
          const parts = name.split('/');
          if (parts.length < 3) continue;
          const [guestFolder, id] = parts as [string, string];
          folders.set(`${guestFolder}/${id}`, { guestFolder, id });
        }
        return listingOf([...folders.values()], readManifest, {
          ...(opts.guest === undefined ? {} : { guest: opts.guest }),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      },
      readManifest,
      readFile: (name, opts = {}) => {
        const data = files().get(name);
        const onChunk = options.onChunk;
        return (async function* () {
          if (opts.signal?.aborted) throw aborted(opts.signal, 'source.readFile');
          if (!data) {
            throw hvkitError('NOT_FOUND', `conformance source: no file ${JSON.stringify(name)}`, {
              operation: 'source.readFile',
            });
          }
          for (let at = 0; at < data.length; at += 64 * 1024) {
            if (opts.signal?.aborted) throw aborted(opts.signal, 'source.readFile');
            yield data.slice(at, Math.min(data.length, at + 64 * 1024));
            onChunk?.(++chunks);
          }
        })();
      },
    };
  }

  /** Flips one byte of a complete file it keeps (restore checks: a corrupt artifact). */
  corrupt(name: string, offset: number): void {
    const w = this.completeFiles().get(name);
    if (!w?.data || offset >= w.data.length) throw new TypeError(`conformance sink: cannot corrupt ${name}`);
    w.data[offset] = (w.data[offset] as number) ^ 0xff;
  }

  /** Files that are complete and not removed, by name. */
  completeFiles(): Map<string, CapturedWrite> {
    const out = new Map<string, CapturedWrite>();
    for (const w of this.writes) {
      if (w.status === 'complete') out.set(w.name, w);
      else if (w.status === 'removed') out.delete(w.name);
    }
    return out;
  }

  async writeFile(
    name: string,
    source: AsyncIterable<Uint8Array>,
    options: SinkWriteOptions = {},
  ): Promise<BackupFile> {
    if (
      typeof name !== 'string' ||
      name === '' ||
      name.startsWith('/') ||
      name.split(/[\\/]/).includes('..')
    ) {
      this.problems.push(
        `writeFile got a bad file name ${JSON.stringify(name)} (must be relative, without '..')`,
      );
      throw new TypeError(`conformance sink: bad file name ${JSON.stringify(name)}`);
    }
    if (
      source === null ||
      typeof source !== 'object' ||
      typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function'
    ) {
      this.problems.push(`writeFile(${JSON.stringify(name)}) got a source that is not an AsyncIterable`);
      throw new TypeError('conformance sink: source must be an AsyncIterable<Uint8Array>');
    }
    const signal = options.signal;
    const entry: CapturedWrite = { name, status: 'writing', bytes: 0, signalPassed: signal !== undefined };
    this.writes.push(entry);
    const hash = createHash('sha256');
    const kept: Uint8Array[] = [];
    const aborted = () =>
      hvkitError('ABORTED', `conformance sink: write of ${name} aborted`, {
        operation: 'sink.writeFile',
        cause: signal?.reason,
      });
    try {
      if (signal?.aborted) throw aborted();
      if (this.failure) throw this.failure;
      for await (const chunk of source) {
        if (!(chunk instanceof Uint8Array)) {
          this.problems.push(
            `writeFile(${JSON.stringify(name)}) got a chunk that is not a Uint8Array: ${typeof chunk}`,
          );
          throw new TypeError('conformance sink: chunks must be Uint8Array');
        }
        hash.update(chunk);
        if (this.keepData) kept.push(chunk.slice());
        entry.bytes += chunk.length;
        this.#total += chunk.length;
        options.onProgress?.({ phase: 'write', processedBytes: entry.bytes, file: name });
        this.onChunk?.(this.#total);
        if (this.failAfterBytes !== undefined && this.#total >= this.failAfterBytes) {
          this.failure ??= hvkitError(
            'REMOTE',
            `conformance sink: no space left on the device after ${this.#total} bytes (writing ${name})`,
            { operation: 'sink.writeFile', backendCode: 'ENOSPC', retryable: false },
          );
          throw this.failure;
        }
        if (signal?.aborted) throw aborted();
      }
      if (options.expectedBytes !== undefined && options.expectedBytes !== entry.bytes) {
        throw hvkitError(
          'PROTOCOL',
          `conformance sink: ${name} has ${entry.bytes} bytes but the adapter announced expectedBytes ${options.expectedBytes}`,
          { operation: 'sink.writeFile' },
        );
      }
    } catch (error) {
      entry.status = 'failed';
      throw error;
    }
    entry.status = 'complete';
    entry.sha256 = hash.digest('hex');
    if (this.keepData) entry.data = Buffer.concat(kept);
    return { name, bytes: entry.bytes, sha256: entry.sha256 };
  }

  async removeFile(name: string): Promise<void> {
    for (const w of this.writes) if (w.name === name && w.status === 'complete') w.status = 'removed';
  }
}
