import { createHash } from 'node:crypto';
import type { BackupSink, SinkWriteOptions } from '../backup/sink';
import { hvkitError } from '../errors/hvkit-error';
import type { BackupFile } from '../hypervisor/v1/model';
import { checkSignal, throwIfAborted } from '../signal/abort';

/** A {@link BackupSink} that keeps files in memory, for tests. */
export interface MemorySink extends BackupSink {
  readonly kind: 'memory';
  /** Complete files by name. A file appears only once its write finished. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Every `writeFile` call, in order, with how it ended. */
  readonly writes: readonly {
    name: string;
    status: 'writing' | 'complete' | 'failed' | 'removed';
    bytes: number;
  }[];
  /** Concatenation of a complete file's bytes, or `undefined`. */
  read(name: string): Uint8Array | undefined;
}

/**
 * Creates a sink that stores files in memory. It pulls the source chunk by chunk, hashes while it reads,
 * checks `expectedBytes` (`PROTOCOL` on mismatch), honours `signal` between chunks (`ABORTED`) and makes a
 * file visible in `files` only once complete; a failed write leaves nothing.
 */
export function createMemorySink(): MemorySink {
  const files = new Map<string, Uint8Array>();
  const writes: { name: string; status: 'writing' | 'complete' | 'failed' | 'removed'; bytes: number }[] = [];
  return {
    kind: 'memory',
    location: 'memory',
    files,
    writes,
    read: (name) => files.get(name),
    async writeFile(
      name: string,
      source: AsyncIterable<Uint8Array>,
      options: SinkWriteOptions = {},
    ): Promise<BackupFile> {
      if (typeof name !== 'string' || name === '' || name.startsWith('/') || name.split('/').includes('..')) {
        throw new TypeError(`memory sink: bad file name ${JSON.stringify(name)}`);
      }
      const signal = checkSignal(options.signal);
      const context = { operation: 'sink.writeFile' };
      const entry = { name, status: 'writing' as 'writing' | 'complete' | 'failed' | 'removed', bytes: 0 };
      writes.push(entry);
      const hash = createHash('sha256');
      const chunks: Uint8Array[] = [];
      try {
        throwIfAborted(signal, context);
        for await (const chunk of source) {
          if (!(chunk instanceof Uint8Array))
            throw new TypeError('memory sink: the source must yield Uint8Array chunks');
          hash.update(chunk);
          chunks.push(chunk.slice());
          entry.bytes += chunk.length;
          options.onProgress?.({ phase: 'write', processedBytes: entry.bytes, file: name });
          throwIfAborted(signal, context);
        }
        if (options.expectedBytes !== undefined && options.expectedBytes !== entry.bytes) {
          throw hvkitError(
            'PROTOCOL',
            `memory sink: ${name} has ${entry.bytes} bytes, expected ${options.expectedBytes}`,
            {
              ...context,
            },
          );
        }
      } catch (error) {
        entry.status = 'failed';
        throw error;
      }
      const data = new Uint8Array(entry.bytes);
      let at = 0;
      for (const c of chunks) {
        data.set(c, at);
        at += c.length;
      }
      files.set(name, data);
      entry.status = 'complete';
      return { name, bytes: entry.bytes, sha256: hash.digest('hex') };
    },
    async removeFile(name: string): Promise<void> {
      if (files.delete(name)) {
        const entry = writes.findLast((w) => w.name === name && w.status === 'complete');
        if (entry) entry.status = 'removed';
      }
    },
  };
}
