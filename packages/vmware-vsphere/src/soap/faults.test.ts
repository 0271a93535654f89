import type { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from './__fixtures__/soap-server';
import { decodeSoapResponse } from './decode';
import {
  faultCode,
  faultDetailsOf,
  isSessionLost,
  methodFaultToError,
  parseSoapFault,
  soapFaultToError,
} from './faults';
import type { DataObject, LocalizedMethodFault } from './schema';

function errorOf(name: string, method = 'X'): HvkitError {
  const fault = parseSoapFault(sample(name));
  expect(fault).toBeDefined();
  return soapFaultToError(fault as NonNullable<typeof fault>, { method });
}

describe('SOAP faults recorded from vcsim', () => {
  it.each([
    ['fault-invalid-login.xml', 'Login', 'AUTH_FAILED', 'InvalidLogin'],
    ['fault-not-authenticated.xml', 'CreateContainerView', 'AUTH_FAILED', 'NotAuthenticated'],
    ['fault-managed-object-not-found.xml', 'RetrievePropertiesEx', 'NOT_FOUND', 'ManagedObjectNotFound'],
    ['fault-invalid-argument.xml', 'RetrievePropertiesEx', 'INVALID_ARGUMENT', 'InvalidArgument'],
    ['fault-invalid-request.xml', 'SetCustomValue', 'INVALID_ARGUMENT', 'InvalidRequest'],
    ['fault-method-not-found.xml', 'ContinueRetrievePropertiesEx', 'UNSUPPORTED', 'MethodNotFound'],
    ['fault-cancel-task-method-not-found.xml', 'CancelTask', 'UNSUPPORTED', 'MethodNotFound'],
  ] as const)('%s → %s', (file, method, code, faultType) => {
    const error = errorOf(file, method);
    expect(error.code).toBe(code);
    expect(error.backendCode).toBe(faultType);
    expect(error.adapter).toBe('vmware-vsphere');
    expect(error.operation).toBe(`soap.${method}`);
    expect(error.message.startsWith(`${method}: `)).toBe(true);
    expect(faultDetailsOf(error)).toMatchObject({
      faultType,
      faultSource: 'soap',
      soapFaultCode: 'ServerFaultCode',
    });
  });

  it('falls back to the fault type when the faultstring is empty, and names fault fields', () => {
    const error = errorOf('fault-not-authenticated.xml', 'CreateContainerView');
    expect(error.message).toBe(
      'CreateContainerView: NotAuthenticated [object=ViewManager:ViewManager, privilegeId=System.View]',
    );
    expect(error.backendMessage).toBeUndefined();
    const notFound = errorOf('fault-managed-object-not-found.xml', 'RetrievePropertiesEx');
    expect(notFound.message).toContain('obj=VirtualMachine:vm-nope');
    expect(notFound.backendMessage).toBe(
      'The object has already been deleted or has not been completely created',
    );
  });

  it('only a SOAP NotAuthenticated means the session is lost', () => {
    expect(isSessionLost(errorOf('fault-not-authenticated.xml'))).toBe(true);
    expect(isSessionLost(errorOf('fault-invalid-login.xml'))).toBe(false);
    // The same fault inside a missingSet (per property) is not.
    const response = decodeSoapResponse(
      sample('retrieve-missing-not-authenticated.xml'),
      'RetrievePropertiesEx',
    );
    const missing = (
      response.returnval as { objects: { missingSet: { path: string; fault: LocalizedMethodFault }[] }[] }
    ).objects[0]?.missingSet[0];
    const nested = methodFaultToError(missing?.fault, { source: 'property', path: missing?.path });
    expect(nested.code).toBe('AUTH_FAILED');
    expect(nested.backendCode).toBe('NotAuthenticated');
    expect(isSessionLost(nested)).toBe(false);
    expect(isSessionLost(new Error('x'))).toBe(false);
  });

  it('parseSoapFault returns undefined for a non-fault response', () => {
    expect(parseSoapFault(sample('logout.xml'))).toBeUndefined();
  });
});

describe('task errors', () => {
  it('types the fault of a failed task (recorded InvalidPowerState → CONFLICT)', () => {
    const response = decodeSoapResponse(sample('task-info-error.xml'), 'RetrievePropertiesEx');
    const info = (
      response.returnval as { objects: { propSet: { val: { error: LocalizedMethodFault } }[] }[] }
    ).objects[0]?.propSet[0]?.val;
    const error = methodFaultToError(info?.error, { source: 'task', task: 'task-77' });
    expect(error.code).toBe('CONFLICT');
    expect(error.backendCode).toBe('InvalidPowerState');
    expect(error.message).toContain('task task-77 failed');
    expect(error.message).toContain('requestedState=poweredOn');
    expect(faultDetailsOf(error)).toMatchObject({ faultSource: 'task', task: 'task-77' });
    expect(isSessionLost(error)).toBe(false);
  });
});

describe('faultCode', () => {
  it('maps fault types and their subtypes', () => {
    const cases: [string, string][] = [
      ['NotAuthenticated', 'AUTH_FAILED'],
      ['InvalidLogin', 'AUTH_FAILED'],
      ['PasswordExpired', 'AUTH_FAILED'],
      ['ManagedObjectNotFound', 'NOT_FOUND'],
      ['FileNotFound', 'NOT_FOUND'],
      ['InvalidArgument', 'INVALID_ARGUMENT'],
      ['InvalidIndexArgument', 'INVALID_ARGUMENT'],
      ['InvalidRequest', 'INVALID_ARGUMENT'],
      ['InvalidType', 'INVALID_ARGUMENT'],
      ['InvalidState', 'CONFLICT'],
      ['InvalidPowerState', 'CONFLICT'],
      ['InvalidHostConnectionState', 'CONFLICT'],
      ['TaskInProgress', 'CONFLICT'],
      ['VAppTaskInProgress', 'CONFLICT'],
      ['ConcurrentAccess', 'CONFLICT'],
      ['NoPermission', 'PERMISSION_DENIED'],
      ['RestrictedVersion', 'PERMISSION_DENIED'],
      ['NotSupported', 'UNSUPPORTED'],
      ['MethodNotFound', 'UNSUPPORTED'],
      ['RequestCanceled', 'ABORTED'],
      ['SystemError', 'REMOTE'],
      ['SomeFutureFault', 'REMOTE'],
    ];
    for (const [fault, code] of cases) expect(faultCode(fault), fault).toBe(code);
  });

  it('marks busy-object faults retryable', () => {
    const busy = methodFaultToError(
      { _type: 'LocalizedMethodFault', fault: { _type: 'TaskInProgress' } as DataObject },
      {
        source: 'task',
      },
    );
    expect(busy.retryable).toBe(true);
    const other = methodFaultToError(undefined, { source: 'task' });
    expect(other.backendCode).toBe('MethodFault');
    expect(other.retryable).toBe(false);
  });
});
