export const VERSION = '0.0.0';

// The adapter (issue 4, part 3).
export {
  ADAPTER_ID,
  connect,
  type VmwareVsphereAdapter,
  VSPHERE_SUPPORTS,
  type VsphereConnectOptions,
} from './adapter';
// vim25 SOAP client (issue 4, part 1): transport, session, property collector, tasks, decoding.
export * from './soap/client';
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
} from './soap/decode';
export * from './soap/envelope';
export {
  type FaultDetails,
  type FaultSource,
  faultCode,
  faultDetailsOf,
  isSessionLost,
  methodFaultToError,
  parseSoapFault,
  soapFaultToError,
} from './soap/faults';
export * from './soap/property-collector';
export * from './soap/schema';
export * from './soap/session';
export * from './soap/task';
export * from './soap/tls';
