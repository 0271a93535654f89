/**
 * `remote_error`: the error payload of a REPLY or STREAM packet with status ERROR. Its mapping to
 * HvkitError codes is in `../errors.ts`.
 */

import { type RemoteDomain, type RemoteNetwork, readDomain, readNetwork } from './types';
import type { XdrReader } from './xdr';

/** `remote_error`, the payload of a REPLY or STREAM packet with status ERROR. */
export interface RemoteError {
  /** `virErrorNumber` (VIR_ERR_*). */
  code: number;
  /** `virErrorDomain` (VIR_FROM_*): the subsystem that raised it. */
  domain: number;
  message: string | null;
  /** 1 warning, 2 error. */
  level: number;
  dom: RemoteDomain | null;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
  net: RemoteNetwork | null;
}

/** Reads a `remote_error`. */
export function readRemoteError(r: XdrReader): RemoteError {
  return {
    code: r.int(),
    domain: r.int(),
    message: r.optString(),
    level: r.int(),
    dom: r.optional(readDomain),
    str1: r.optString(),
    str2: r.optString(),
    str3: r.optString(),
    int1: r.int(),
    int2: r.int(),
    net: r.optional(readNetwork),
  };
}
