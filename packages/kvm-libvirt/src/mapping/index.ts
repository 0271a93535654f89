/**
 * The mapping layer of `@hvkit/kvm-libvirt`: libvirt XML and typed parameters to and from the hvkit spec v1
 * model. Pure functions, no I/O.
 */

export * from './domain';
export * from './host';
export * from './limits';
export * from './network';
export {
  type DiskSecurityLabel,
  type LiveSecurityLabelsInput,
  liveSecurityLabels,
  parseDiskSeclabels,
  parseSeclabelElement,
  type SetSeclabelOptions,
  seclabelElement,
  securityModelName,
  setDomainSeclabel,
} from './seclabel';
export * from './snapshot';
export * from './storage';
export * from './typed-params';
