import type { BackupManifest } from './manifest';

/** Options of {@link BackupSource.list}. */
export interface SourceListOptions {
  signal?: AbortSignal;
  /** Only artifacts of this guest (name or id, as the manifests record it). */
  guest?: string;
}

/** One artifact a source holds, as {@link BackupSource.list} reports it. */
export interface BackupListing {
  /** Its folder relative to the source's root, `<guest name>/<artifact id>`. */
  path: string;
  /** The artifact id (the folder's last segment). */
  id: string;
  /**
   * `true` when the folder holds a valid manifest, which a backup writes last; an incomplete artifact (a run
   * that failed or was killed) has none, and only `path` and `id` are known.
   */
  complete: boolean;
  /** The manifest, when complete. */
  manifest?: BackupManifest;
  /** Why the folder's manifest was refused (it is there but not valid), when it was; `complete` is then false. */
  invalid?: string;
}

/** Options of {@link BackupSource.readFile}. */
export interface SourceReadOptions {
  signal?: AbortSignal;
  /** Fail with `PROTOCOL` once the file yields more than this many bytes. */
  maxBytes?: number;
}

/**
 * Where a restore reads an artifact from: the mirror of a {@link BackupSink}. A local directory
 * (`createDirectorySource`) and an SSH directory (`createSshSource` in `@hvkit/ssh`) are provided.
 */
export interface BackupSource {
  /** `directory`, `ssh`, or another kind. */
  readonly kind: string;
  /** Where the data is, for messages (never contains a secret). */
  readonly location: string;
  /** The artifacts it holds, complete or not, oldest first (artifact ids sort by time). */
  list(options?: SourceListOptions): Promise<BackupListing[]>;
  /** Reads and checks one artifact's manifest. `NOT_FOUND` when there is none, `PROTOCOL` when it is not valid. */
  readManifest(path: string, options?: { signal?: AbortSignal }): Promise<BackupManifest>;
  /** Streams one file; `name` is relative to the source's root (`<guest>/<id>/<file>`), without `..`. */
  readFile(name: string, options?: SourceReadOptions): AsyncIterable<Uint8Array>;
}
