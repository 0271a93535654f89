/**
 * `@hvkit/kvm-libvirt/rpc`: the pure-TypeScript libvirt RPC client, for users who want the raw protocol:
 * `connectRpc()` (a libvirt URI to a connection), the client (calls, keepalive, events, streams), typed
 * procedure descriptors, program constants, XDR, packet framing, libvirt URIs and dialers, and the
 * libvirt error mapping.
 */

export { connectRpc, type LibvirtRpcConnectOptions } from './connect';
export {
  hvkitCodeForLibvirtError,
  type LibvirtErrorContext,
  libvirtErrorToHvkitError,
  VIR_ERR,
  VIR_FROM,
  virErrorName,
  virFromName,
} from './errors';
export {
  type CallOptions,
  DEFAULT_LIBVIRT_CLOSE_TIMEOUT_MS,
  DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  type DownloadVolumeOptions,
  type LibvirtClientState,
  type LibvirtClientStats,
  LibvirtRpcClient,
  type LibvirtRpcClientOptions,
  type ReopenedTransport,
  type RpcTraceEvent,
  type UploadVolumeOptions,
} from './protocol/client';
export * from './protocol/constants';
export {
  type LibvirtSshOptions,
  type LibvirtTlsDialerOptions,
  type LibvirtTlsOptions,
  type LibvirtTransportOptions,
  libvirtTlsDialer,
  type ResolvedTransport,
  resolveLibvirtTransport,
} from './protocol/dialers';
export {
  type DomainEventItem,
  type DomainEventResync,
  DomainEventSubscription,
  type DomainEventSubscriptionOptions,
  isDomainEventResync,
} from './protocol/events';
export {
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  type KeepaliveOptions,
  type KeepaliveStats,
} from './protocol/keepalive';
export { decodeFrame, encodePacket, type Packet, PacketFramer, type PacketHeader } from './protocol/packet';
export { type RemoteError, readRemoteError } from './protocol/remote-error';
export * from './protocol/remote-protocol';
export {
  isStreamHole,
  LibvirtReadStream,
  type ReadStreamOptions,
  type StreamChunk,
  type StreamHole,
} from './protocol/stream';
export * from './protocol/types';
export {
  LIBVIRT_DRIVERS,
  LIBVIRT_TCP_PORT,
  LIBVIRT_TLS_PORT,
  type LibvirtTransportName,
  type LibvirtUri,
  parseLibvirtUri,
  redactLibvirtUri,
  type SocketMode,
  type SshProxyMode,
} from './protocol/uri';
export { LibvirtWriteStream, type WriteStreamOptions } from './protocol/write-stream';
export * from './protocol/xdr';
