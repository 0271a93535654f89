/**
 * The pure-TypeScript libvirt RPC client: XDR, packet framing, typed procedure descriptors, the
 * connection (calls, keepalive, events, streams) and libvirt error mapping.
 */

export * from './errors';
export * from './protocol/client';
export * from './protocol/constants';
export { DomainEventSubscription, type DomainEventSubscriptionOptions } from './protocol/events';
export {
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  type KeepaliveOptions,
  type KeepaliveStats,
} from './protocol/keepalive';
export { decodeFrame, encodePacket, type Packet, PacketFramer, type PacketHeader } from './protocol/packet';
export * from './protocol/remote-protocol';
export {
  isStreamHole,
  LibvirtReadStream,
  type ReadStreamOptions,
  type StreamChunk,
  type StreamHole,
} from './protocol/stream';
export * from './protocol/types';
export * from './protocol/xdr';
