/**
 * `@hvkit/conformance/fixtures`: record fixtures against real servers and replay them offline.
 *
 * - Fixture folders (`packages/<adapter>/test/fixtures/<source>/`): {@link writeFixture},
 *   {@link readFixture}, {@link listFixtureFolders}, {@link fixtureMetadata}.
 * - HTTP cassettes: {@link recordingFetch}; replay through msw with {@link cassetteHandlers} (handlers for
 *   your own `setupServer`) or {@link createReplayServer} (a server of its own).
 * - Socket transcripts: {@link recordingDialer}, {@link replayDialer}, {@link lengthPrefixedFramer}.
 * - Exec transcripts: {@link recordingExec}, {@link replayExec}.
 * - File trees: {@link snapshotFileTree}, {@link replayFiles}.
 * - Normaliser: {@link normalise}, {@link defaultRules}, {@link idMaps}, {@link normaliserId}.
 * - Secret scanner: {@link scanForSecrets} (run by `npm run check:fixtures`).
 *
 * Typical recording:
 * ```ts
 * const cassette = createHttpCassette();
 * const adapter = await connect({ url, fetch: recordingFetch(fetch, cassette) });
 * await adapter.inventory.listGuests();
 * const rules = defaultRules({ ids: [idMaps.uuid(), idMaps.moid()], knownSecrets: [password] });
 * await writeFixture('packages/vmware-vsphere/test/fixtures/vcsim', {
 *   metadata: fixtureMetadata({ recordedFrom: { server: 'vcsim', version: '0.24.2' }, normalisedWith: normaliserId(rules) }),
 *   files: { 'cassette.json': normalise(cassette, rules) },
 * });
 * ```
 * @packageDocumentation
 */

export {
  type EncodedBytes,
  FIXTURE_FORMATS,
  FIXTURE_TOOL,
  fixtureJson,
  REDACTED,
  REDACTED_SESSION_PREFIX,
} from './fixtures/common';
export {
  CREDENTIAL_HEADERS,
  type DetectOptions,
  findSecretSpans,
  SECRET_FIELD_NAMES,
  SESSION_FIELD_NAMES,
  SESSION_HEADERS,
  type SecretKind,
  type SecretSpan,
} from './fixtures/detect';
export {
  createExecTranscript,
  type ExecTranscript,
  type RecordedCommand,
  type ReplayExec,
  type ReplayExecOptions,
  type ReplayedExecCall,
  recordingExec,
  replayExec,
} from './fixtures/exec';
export {
  type FileTreeEntry,
  type FileTreeSnapshot,
  type ReplayedWrite,
  type ReplayFiles,
  type ReplayFilesOptions,
  replayFiles,
  type SnapshotOptions,
  snapshotFileTree,
} from './fixtures/files';
export {
  assertFixtureMetadata,
  FIXTURE_METADATA_FILE,
  type Fixture,
  type FixtureContent,
  type FixtureFolderInfo,
  type FixtureFolderOptions,
  type FixtureMetadata,
  findFixtureRoots,
  fixtureMetadata,
  fixtureMetadataProblems,
  listFixtureFolders,
  readFixture,
  type WriteFixtureOptions,
  writeFixture,
} from './fixtures/folder';
export {
  type BodyMatcher,
  bodyMatchers,
  type CassetteHandlers,
  cassetteHandlers,
  createHttpCassette,
  createReplayServer,
  DEFAULT_DROPPED_HEADERS,
  type HttpCassette,
  type HttpInteraction,
  type HttpMatchContext,
  type HttpReplayOptions,
  type HttpReplayState,
  jsonRpcReplay,
  type PendingHttpInteraction,
  type RecordedHeaders,
  type RecordedHttpRequest,
  type RecordedHttpResponse,
  type RecordingFetchOptions,
  type ReplayedHttpRequest,
  type ReplayServer,
  type ReplayServerOptions,
  type ResponseRewriter,
  recordingFetch,
  type UnhandledHttpRequest,
  type UnhandledReason,
} from './fixtures/http';
export {
  DEFAULT_TIMESTAMP,
  defaultRules,
  type FrameContext,
  type IdMapRule,
  idMaps,
  MIN_KNOWN_SECRET_LENGTH,
  type NormaliseRules,
  normalise,
  normaliserId,
  normaliseText,
  type TextContext,
  type TextRule,
  type TimestampPins,
} from './fixtures/normalise';
export {
  formatFindings,
  readKnownSecrets,
  type ScanOptions,
  type ScanResult,
  type SecretFinding,
  type SecretFindingKind,
  scanFixtureContent,
  scanForSecrets,
  TEST_SECRETS_FILE,
} from './fixtures/secret-scan';
export {
  canonicalSocketOrder,
  createSocketTranscript,
  type FrameCorrelator,
  type FrameMatcher,
  type FrameRange,
  type Framer,
  type FrameSplitter,
  framerFromName,
  isReplayMismatch,
  type LengthPrefixedFramerOptions,
  lengthPrefixedFramer,
  maskedFrameMatcher,
  type RecordingDialerOptions,
  type ReplayDialer,
  type ReplayDialerOptions,
  type ReplayedConnection,
  rawFramer,
  recordingDialer,
  replayDialer,
  type SocketConnectionRecord,
  type SocketEvent,
  type SocketTranscript,
} from './fixtures/socket';
