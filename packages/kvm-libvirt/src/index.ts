/**
 * `@hvkit/kvm-libvirt`: the hvkit adapter for KVM/QEMU through libvirt. `connect(options)` returns the
 * adapter; the manifests say what each libvirt driver supports. The raw libvirt RPC client is in
 * `@hvkit/kvm-libvirt/rpc`.
 */

/** Version of this package. */
export const VERSION = '0.0.0';
export { connect, type KvmLibvirtAdapter, type KvmLibvirtOptions } from './connect';
export { ADAPTER_ID } from './errors';
export { type ParseDomainXmlOptions, parseDomainXml } from './mapping/domain';
export type { LibvirtSshOptions, LibvirtTlsOptions, LibvirtTransportOptions } from './protocol/dialers';
export {
  KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS,
  KVM_LIBVIRT_SUPPORTS,
  KVM_LIBVIRT_TEST_DRIVER_SUPPORTS,
} from './supports';
