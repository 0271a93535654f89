/**
 * The pure-TypeScript libvirt RPC client: XDR, packet framing, typed procedure descriptors, the
 * connection (calls, keepalive, events, streams) and libvirt error mapping.
 */

export * from './client';
export * from './constants';
export * from './errors';
export { DomainEventSubscription, type DomainEventSubscriptionOptions } from './events';
export {
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  type KeepaliveOptions,
  type KeepaliveStats,
} from './keepalive';
export { decodeFrame, encodePacket, type Packet, PacketFramer, type PacketHeader } from './packet';
export * from './remote-protocol';
export {
  isStreamHole,
  LibvirtReadStream,
  type ReadStreamOptions,
  type StreamChunk,
  type StreamHole,
} from './stream';
export * from './types';
export * from './xdr';
