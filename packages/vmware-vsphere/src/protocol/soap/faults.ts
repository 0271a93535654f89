/**
 * SOAP fault parsing: the parts of a fault body (HTTP 500). What a fault means (its HvkitError code) is
 * decided in `../../errors.ts`.
 */

import { decodeSoapResponse, type SoapFault } from './decode';

/**
 * Parses a SOAP fault body (as received with HTTP 500) into its parts. Returns `undefined` when the body is
 * a well-formed SOAP response that is not a fault.
 *
 * @throws HvkitError `PROTOCOL` when the body is not a well-formed SOAP envelope.
 */
export function parseSoapFault(body: string, options: { maxBytes?: number } = {}): SoapFault | undefined {
  // The response element name is not known here: accept any by decoding as a fault-or-anything.
  const result = decodeSoapResponse(body, '*', { ...options, returns: 'void', anyResponse: true });
  return result.fault;
}
