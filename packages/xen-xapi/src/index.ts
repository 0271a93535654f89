/**
 * @hvkit/xen-xapi: the hvkit adapter for XenServer and XCP-ng. `connect(options)` logs in to the pool
 * master over XAPI (JSON-RPC, or XML-RPC on old hosts) and returns a spec v1 adapter whose `supports`
 * manifest ({@link XEN_XAPI_SUPPORTS}) says what it can do. An XAPI simulator is at
 * `@hvkit/xen-xapi/simulator`.
 * @packageDocumentation
 */

export type { XenXapiBackupsCapability } from './capabilities/backups';
export { connect, type XenXapiAdapter, type XenXapiOptions, type XenXapiServer } from './connect';
export type { XenXapiBackupNaming } from './context';
export { ADAPTER_ID, XAPI_ERROR_CODES } from './errors';
export { weightToXapiWeight, xapiWeightToWeight } from './mapping/cpu';
export { XEN_XAPI_LIMIT_TIMING, XEN_XAPI_SUPPORTS } from './supports';
