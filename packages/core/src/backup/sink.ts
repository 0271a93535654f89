import type { BackupFile, Progress } from '../hypervisor/v1/model';

/** Options of {@link BackupSink.writeFile}. */
export interface SinkWriteOptions {
  signal?: AbortSignal;
  /** Expected size; the sink fails the write with PROTOCOL when the source yields a different count. */
  expectedBytes?: number;
  /** Called as bytes are written; `processedBytes` counts this file only and only grows. */
  onProgress?: (progress: Progress) => void;
}

/**
 * Where backup data goes. The sink pulls from the source (so backpressure is natural), hashes while it
 * writes, and makes a file visible under its final name only once it is complete: an aborted or failed
 * write never leaves a file that looks complete.
 */
export interface BackupSink {
  /** `directory`, `ssh`, `stream`, or an adapter's own kind. */
  readonly kind: string;
  /** Where the data goes, for messages (never contains a secret). */
  readonly location: string;
  /** Writes one file. `name` is a relative path without `..`. Resolves with its size and sha256. */
  writeFile(name: string, source: AsyncIterable<Uint8Array>, options?: SinkWriteOptions): Promise<BackupFile>;
  /** Removes a file written earlier (cleanup of a failed multi-file backup). Missing files are ignored. */
  removeFile?(name: string, options?: { signal?: AbortSignal }): Promise<void>;
}
