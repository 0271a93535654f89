/**
 * `@hvkit/vmware-vsphere`: the hvkit adapter for VMware vSphere (vCenter and ESXi). The vim25 SOAP and vAPI
 * clients underneath are `@hvkit/vmware-vsphere/soap`.
 */

export { connect, type VmwareVsphereAdapter, type VmwareVsphereOptions } from './connect';
export { ADAPTER_ID } from './errors';
export {
  VSPHERE_SHARES_PER_VCPU,
  type VsphereSharesInfo,
  type VsphereSharesLevel,
  vsphereSharesInfoToWeight,
  vsphereSharesToWeight,
  weightToVsphereShares,
  weightToVsphereSharesInfo,
} from './mapping/cpu';
export { VMWARE_VSPHERE_SUPPORTS } from './supports';
