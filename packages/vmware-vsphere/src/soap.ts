/**
 * `@hvkit/vmware-vsphere/soap`: the protocol clients under the adapter, for raw calls the adapter does not
 * make. The vim25 SOAP client, its session (login, keep-alive, re-login), the property collector, tasks,
 * the response decoder, the vim fault → HvkitError mapping, the TLS helpers (CA, thumbprints), and the vAPI
 * REST tagging client.
 */

export {
  type FaultDetails,
  type FaultSource,
  faultCode,
  faultDetailsOf,
  isSessionLost,
  methodFaultToError,
  soapFaultToError,
} from './errors';
export * from './protocol/soap/client';
export {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_RESPONSE_BYTES,
  type DecodeOptions,
  decodeSoapResponse,
  decodeVimXml,
  SOAP_ENV_NS,
  type SoapFault,
  type SoapResponse,
  XSD_NS,
  XSI_NS,
} from './protocol/soap/decode';
export * from './protocol/soap/envelope';
export { parseSoapFault } from './protocol/soap/faults';
export * from './protocol/soap/property-collector';
export * from './protocol/soap/schema';
export * from './protocol/soap/session';
export * from './protocol/soap/task';
export * from './protocol/soap/tls';
export {
  DEFAULT_VAPI_MAX_RESPONSE_BYTES,
  DEFAULT_VAPI_TIMEOUT_MS,
  type VapiTag,
  VapiTagging,
  type VapiTaggingOptions,
} from './protocol/vapi';
