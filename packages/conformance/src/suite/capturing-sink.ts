import { createHash } from 'node:crypto';
import {
  type BackupFile,
  type BackupSink,
  type HvkitError,
  hvkitError,
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
}

/**
 * The sink the suite hands to `backups.backup`: it behaves like a well-made sink (pulls chunks, honours the
 * signal it is given between chunks, checks `expectedBytes`, makes a file visible only once complete,
 * supports `removeFile`) and records what it received, hashing it itself. It stores no data.
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
  #total = 0;

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
    return { name, bytes: entry.bytes, sha256: entry.sha256 };
  }

  async removeFile(name: string): Promise<void> {
    for (const w of this.writes) if (w.name === name && w.status === 'complete') w.status = 'removed';
  }
}
