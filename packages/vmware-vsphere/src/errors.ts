/**
 * The adapter id, defined once, and the backend's errors → HvkitError codes, in one place.
 *
 * vim25 faults → HvkitError. A fault reaches the client three ways: as the SOAP fault of a call (HTTP 500),
 * inside a finished task (`TaskInfo.error`) and inside a property collector result (`missingSet[].fault`).
 * All three become an HvkitError with the fault type as `backendCode`, and `details.faultSource` saying
 * which way it came (only a `soap` NotAuthenticated means the session is gone).
 */

import { HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';
import type { SoapFault } from './protocol/soap/decode';
import { type DataObject, isVimSubtypeOf, type LocalizedMethodFault } from './protocol/soap/schema';

/** The adapter id (`adapter` of every error and of the adapter object). */
export const ADAPTER_ID = 'vmware-vsphere';

/** Where a fault came from: the SOAP response of a call, a task's error, or a missing property. */
export type FaultSource = 'soap' | 'task' | 'property';

/**
 * Fault types in lookup order (subtypes before their bases) and the code each maps to. A fault type not in
 * the table is looked up through its base types (per the schema table), else it is `REMOTE`.
 */
const FAULT_CODES: ReadonlyArray<readonly [fault: string, code: HvkitErrorCode]> = [
  ['NotAuthenticated', 'AUTH_FAILED'],
  ['InvalidLogin', 'AUTH_FAILED'],
  ['MethodNotFound', 'UNSUPPORTED'],
  ['ManagedObjectNotFound', 'NOT_FOUND'],
  ['NotFound', 'NOT_FOUND'],
  ['FileNotFound', 'NOT_FOUND'],
  ['InvalidArgument', 'INVALID_ARGUMENT'],
  ['InvalidRequest', 'INVALID_ARGUMENT'],
  ['InvalidProperty', 'INVALID_ARGUMENT'],
  ['InvalidVmConfig', 'INVALID_ARGUMENT'],
  ['InvalidState', 'CONFLICT'],
  ['TaskInProgress', 'CONFLICT'],
  ['ConcurrentAccess', 'CONFLICT'],
  ['DuplicateName', 'CONFLICT'],
  ['AlreadyExists', 'CONFLICT'],
  ['FileAlreadyExists', 'CONFLICT'],
  ['NoPermission', 'PERMISSION_DENIED'],
  ['SecurityError', 'PERMISSION_DENIED'],
  ['NotSupported', 'UNSUPPORTED'],
  ['RequestCanceled', 'ABORTED'],
];

/** Faults worth retrying as they are (the server was busy with the object). */
const RETRYABLE_FAULTS: readonly string[] = ['TaskInProgress', 'ConcurrentAccess', 'HostCommunication'];

/** The HvkitError code of a vim fault type (`InvalidPowerState` → `CONFLICT`, unknown → `REMOTE`). */
export function faultCode(faultType: string): HvkitErrorCode {
  for (const [fault, code] of FAULT_CODES) if (isVimSubtypeOf(faultType, fault)) return code;
  return 'REMOTE';
}

/** Facts an error built from a fault carries in `details`. */
export interface FaultDetails {
  /** The vim fault type (`ManagedObjectNotFound`); also the error's `backendCode`. */
  faultType: string;
  /** Where it came from; only `soap` NotAuthenticated faults mean the session is gone. */
  faultSource: FaultSource;
  /** The decoded fault object (`{ _type, obj, ... }`). */
  fault: DataObject | undefined;
  /** The SOAP `faultcode` (`ServerFaultCode`), for SOAP faults. */
  soapFaultCode?: string;
  /** The method called, for SOAP faults. */
  method?: string;
  /** The property path, for missing properties. */
  path?: string;
  /** The task, for task errors (`task-42`). */
  task?: string;
}

function describeFault(fault: DataObject | undefined): string {
  if (!fault) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fault)) {
    if (key === '_type' || key === 'faultCause' || key === 'faultMessage') continue;
    if (typeof value === 'string') parts.push(`${key}=${value}`);
    else if (typeof value === 'number' || typeof value === 'boolean') parts.push(`${key}=${String(value)}`);
    else if (typeof value === 'object' && value !== null && 'type' in value && 'value' in value) {
      const ref = value as { type: unknown; value: unknown };
      if (typeof ref.type === 'string' && typeof ref.value === 'string')
        parts.push(`${key}=${ref.type}:${ref.value}`);
    }
    if (parts.length >= 4) break;
  }
  const text = parts.join(', ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

interface FaultErrorInput {
  faultType: string;
  message: string;
  fault: DataObject | undefined;
  source: FaultSource;
  operation?: string;
  extra?: Partial<FaultDetails>;
}

function faultError(input: FaultErrorInput): HvkitError {
  const code = faultCode(input.faultType);
  const info = describeFault(input.fault);
  const text = input.message.trim() || input.faultType;
  const where =
    input.source === 'task'
      ? `task ${input.extra?.task ?? ''} failed: `
      : input.source === 'property'
        ? `property ${input.extra?.path ?? ''}: `
        : input.extra?.method
          ? `${input.extra.method}: `
          : '';
  const message = `${where}${text}${text === input.faultType ? '' : ` (${input.faultType})`}${info ? ` [${info}]` : ''}`;
  const details: FaultDetails = {
    faultType: input.faultType,
    faultSource: input.source,
    fault: input.fault,
    ...input.extra,
  };
  return hvkitError(code, message, {
    adapter: ADAPTER_ID,
    operation: input.operation,
    backendCode: input.faultType,
    backendMessage: input.message || undefined,
    retryable: RETRYABLE_FAULTS.some((f) => isVimSubtypeOf(input.faultType, f)),
    details: details as unknown as Record<string, unknown>,
  });
}

/**
 * The HvkitError for the SOAP fault a call returned: code by fault type (NotAuthenticated/InvalidLogin →
 * `AUTH_FAILED`, ManagedObjectNotFound → `NOT_FOUND`, InvalidArgument/InvalidRequest → `INVALID_ARGUMENT`,
 * InvalidState/TaskInProgress/ConcurrentAccess → `CONFLICT`, NoPermission → `PERMISSION_DENIED`,
 * NotSupported and MethodNotFound → `UNSUPPORTED`, others `REMOTE`), `backendCode` = the fault type,
 * `backendMessage` = the faultstring. A fault without a vim detail uses the SOAP faultcode as its type.
 */
export function soapFaultToError(fault: SoapFault, context: { method?: string } = {}): HvkitError {
  return faultError({
    faultType: fault.faultType ?? fault.faultcode,
    message: fault.faultstring,
    fault: fault.detail,
    source: 'soap',
    operation: context.method ? `soap.${context.method}` : undefined,
    extra: { soapFaultCode: fault.faultcode, method: context.method },
  });
}

/**
 * The HvkitError for a `LocalizedMethodFault` from a task (`source: 'task'`) or a missing property
 * (`source: 'property'`). Never treated as a lost session, even for NotAuthenticated.
 */
export function methodFaultToError(
  fault: LocalizedMethodFault | DataObject | undefined,
  context: { source: Exclude<FaultSource, 'soap'>; task?: string; path?: string; operation?: string },
): HvkitError {
  const inner =
    fault && typeof fault.fault === 'object' && fault.fault !== null
      ? (fault.fault as DataObject)
      : undefined;
  const faultType = inner?._type ?? 'MethodFault';
  const message = typeof fault?.localizedMessage === 'string' ? fault.localizedMessage : '';
  return faultError({
    faultType,
    message,
    fault: inner,
    source: context.source,
    operation: context.operation,
    extra: { task: context.task, path: context.path },
  });
}

/** True when `error` is the SOAP fault `NotAuthenticated` of a call (the session is gone), not a nested one. */
export function isSessionLost(error: unknown): boolean {
  if (!HvkitError.isInstance(error) || error.backendCode !== 'NotAuthenticated') return false;
  return (error.details as Partial<FaultDetails> | undefined)?.faultSource === 'soap';
}

/** The `details` of an HvkitError built from a vim fault, or `undefined` for other errors. */
export function faultDetailsOf(error: unknown): FaultDetails | undefined {
  if (!HvkitError.isInstance(error)) return undefined;
  const details = error.details as Partial<FaultDetails> | undefined;
  return typeof details?.faultType === 'string' && typeof details.faultSource === 'string'
    ? (details as FaultDetails)
    : undefined;
}
