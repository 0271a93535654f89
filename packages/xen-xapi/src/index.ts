/**
 * @hvkit/xen-xapi: the hvkit adapter for Xen (XAPI). `connect(options)` logs in and returns a spec v1
 * adapter whose `supports` manifest ({@link XEN_XAPI_SUPPORTS}) says what it can do.
 * @packageDocumentation
 */

export { connect, type XenXapiAdapter, type XenXapiOptions } from './connect';
export { ADAPTER_ID } from './errors';
export { XEN_XAPI_SUPPORTS } from './supports';
