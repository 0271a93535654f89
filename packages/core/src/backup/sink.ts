import { hvkitError } from '../errors/hvkit-error';
import type { BackupFile, Progress } from '../hypervisor/v1/model';
import { checkSinkFileName } from './stream-sink';

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
  /**
   * Removes the incomplete artifacts of one guest: every artifact folder `<guestFolder>/<id>` without a
   * manifest (`hvkit-backup.json`, written last), with everything in it, except the folders whose id is in
   * `keepRuns` (runs that a live lease says are still going). Complete artifacts are never touched; nothing is
   * removed through a symbolic link. Used by adapters' `backups.cleanup({ sink })`.
   *
   * @param guestFolder the guest's folder: the first segment of `artifactPath(guest.name, id)`.
   * @returns the removed folders, relative to the sink's root (`<guestFolder>/<id>`), sorted.
   */
  removeIncomplete?(
    guestFolder: string,
    keepRuns: readonly string[],
    options?: { signal?: AbortSignal },
  ): Promise<string[]>;
}

/** Checks the arguments of {@link BackupSink.removeIncomplete}; returns the guest folder. */
export function checkRemoveIncompleteArgs(guestFolder: unknown, keepRuns: unknown): string {
  if (typeof guestFolder !== 'string') throw new TypeError('removeIncomplete: guestFolder must be a string.');
  if (!Array.isArray(keepRuns) || keepRuns.some((r) => typeof r !== 'string')) {
    throw new TypeError('removeIncomplete: keepRuns must be an array of strings.');
  }
  if (guestFolder.includes('/')) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `removeIncomplete: guestFolder ${JSON.stringify(guestFolder.slice(0, 200))} must be one path segment.`,
    );
  }
  return checkSinkFileName(guestFolder);
}
