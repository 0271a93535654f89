/**
 * @hvkit/core: hvkit spec v1 (model, adapter interface, supports manifest, method table), typed errors,
 * units, signal and timeout helpers, transports, backup sinks and the hardened XML helper.
 *
 * It exports what adapters, their users and the docs use, and nothing else: the list is recorded in
 * `exports.json` and checked by `npm run check:packages`.
 * @packageDocumentation
 */
export const VERSION = '0.0.0';

export {
  BORROWED_CONNECTION_WATCH_MS,
  BorrowedConnection,
  type ClosableConnection,
} from './adapter/borrowed-connection';
export * from './adapter/capability';
export {
  type AdapterConnection,
  type ConnectionState,
  type ConnectionStateChange,
  ConnectionStatus,
  isResyncEvent,
  type ReconnectLoopOptions,
  type ReconnectOptions,
  type ResolvedReconnect,
  reconnectDelayMs,
  reconnectWithBackoff,
  resolveReconnect,
  resyncEvent,
} from './adapter/connection';
export * from './adapter/guest-ref';
export { noopLogger } from './adapter/logger';
export * from './adapter/option-keys';
export { RunningOperations } from './adapter/running';
export { assertSpecificationVersion } from './adapter/spec-version';
export { type WrapAdapterOptions, wrapAdapter } from './adapter/wrap';
export { createDirectorySink, type DirectorySinkOptions } from './backup/directory-sink';
export {
  createDirectorySource,
  type DirectorySourceOptions,
} from './backup/directory-source';
export {
  BACKUP_LEASE_RENEW_MS,
  BACKUP_LEASE_TTL_MS,
  type BackupLease,
  type HoldLeaseOptions,
  holdLease,
  type LeaseHolder,
  leaseIsLive,
  leaseOwner,
  newLease,
  parseLease,
  renewedLease,
} from './backup/lease';
export {
  artifactPath,
  BACKUP_MANIFEST_FILE,
  BACKUP_MANIFEST_MAX_BYTES,
  type BackupFileRole,
  type BackupManifest,
  type BackupManifestDisk,
  type BackupManifestFile,
  checkBackupManifest,
  newArtifactId,
  parseBackupManifest,
  serializeBackupManifest,
  writeBackupManifest,
} from './backup/manifest';
export {
  checkProgressLog,
  createProgressReporter,
  type ProgressLogProblem,
  type ProgressPhaseOptions,
  type ProgressReporter,
  type ProgressReporterOptions,
} from './backup/progress';
export {
  listingOf,
  MAX_SOURCE_ARTIFACTS,
  type RestoreChain,
  type RestoreLink,
  readVerifiedBytes,
  readVerifiedFile,
  resolveRestoreChain,
  type VerifiedReadOptions,
} from './backup/restore';
export type * from './backup/sink';
export { checkRemoveIncompleteArgs } from './backup/sink';
export type * from './backup/source';
export {
  checkSinkFileName,
  checkSinkWriteOptions,
  createStreamSink,
  type SinkPathProblem,
  type StreamSinkOptions,
  sinkPathError,
  truncateUtf8,
} from './backup/stream-sink';
export * from './errors/hvkit-error';
export { MAX_MESSAGE_LENGTH, quoteForMessage } from './errors/message';
export type * from './hypervisor/v1/hypervisor-adapter-v1';
export {
  SPEC_V1_CAPABILITIES,
  SPEC_V1_METHODS,
  type SpecV1CapabilityName,
  type SpecV1Method,
  type SpecV1MethodRow,
  type SpecV1MethodTable,
  type SpecV1Operation,
  specV1Methods,
} from './hypervisor/v1/methods';
export type * from './hypervisor/v1/model';
export { POWER_STATES, SECURITY_MODEL_NAMES } from './hypervisor/v1/model';
export type * from './hypervisor/v1/supports';
export * from './limits/fields';
export * from './limits/normalize';
export {
  findLimitsIssues,
  findUnsupportedLimits,
  type LimitsHostFacts,
  type LimitsIssue,
  type ValidateLimitsOptions,
  validateLimits,
} from './limits/validate';
export { REDACTED, redact, redactError } from './redact';
export {
  abortError,
  checkSignal,
  checkTimeoutMs,
  DEFAULT_TIMEOUT_MS,
  type DeadlineOptions,
  type DerivedSignal,
  type DeriveSignalSettings,
  deriveSignal,
  type ErrorContext,
  raceAbort,
  type SignalOptions,
  sleep,
  throwIfAborted,
  watchDeadline,
  withDeadline,
} from './signal/abort';
export { parseRetryAfter, type RetryEvent, type RetryOptions, retry } from './signal/retry';
export { type WaiterCheckResult, type WaiterOptions, waitFor } from './signal/waiter';
export * from './transport/body';
export {
  type DialerOptions,
  type NetworkErrorContext,
  networkErrorToHvkitError,
  type TcpDialerOptions,
  TLS_SETTINGS_OPTION_KEYS,
  type TlsDialerOptions,
  type TlsSettings,
  tcpDialer,
  tlsDialer,
  unixSocketDialer,
} from './transport/dialers';
export * from './transport/http';
export { createLocalExec, type LocalExecOptions } from './transport/local-exec';
export {
  createLocalFiles,
  type LocalFilesOptions,
  type LocalFilesTransport,
  type LocalWriteFileOptions,
} from './transport/local-files';
export type * from './transport/types';
export * from './units/bytes';
export {
  CPU_WEIGHT_DEFAULT,
  CPU_WEIGHT_MAX,
  CPU_WEIGHT_MIN,
  sharesToWeight,
  weightToShares,
} from './units/cpu';
export { INT64_MAX, type NormalizeUnlimitedOptions, normalizeUnlimited } from './units/unlimited';
export * from './xml/build';
export * from './xml/parse';
