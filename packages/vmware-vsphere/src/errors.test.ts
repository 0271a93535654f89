import type { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from '../test/soap-server';
import { faultCode, faultDetailsOf, isSessionLost, methodFaultToError, soapFaultToError } from './errors';
import { decodeSoapResponse } from './protocol/soap/decode';
import { parseSoapFault } from './protocol/soap/faults';
import type { DataObject, LocalizedMethodFault } from './protocol/soap/schema';

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

/**
 * Every row of the fault table, with a subtype that reaches it only through the schema's base types (the
 * vim25 hierarchy), and the faults in between that must stay REMOTE. A row dropped or moved to another code
 * fails here by name.
 */
const FAULT_ROWS: readonly (readonly [fault: string, code: string, subtype: string | null])[] = [
  ['NotAuthenticated', 'AUTH_FAILED', null],
  ['InvalidLogin', 'AUTH_FAILED', 'InvalidClientCertificate'],
  ['MethodNotFound', 'UNSUPPORTED', null],
  ['ManagedObjectNotFound', 'NOT_FOUND', null],
  ['NotFound', 'NOT_FOUND', null],
  ['FileNotFound', 'NOT_FOUND', null],
  ['InvalidArgument', 'INVALID_ARGUMENT', 'IncompatibleSetting'],
  ['InvalidRequest', 'INVALID_ARGUMENT', 'InvalidType'],
  ['InvalidProperty', 'INVALID_ARGUMENT', null],
  ['InvalidVmConfig', 'INVALID_ARGUMENT', null],
  ['InvalidState', 'CONFLICT', 'InvalidDatastoreState'],
  ['TaskInProgress', 'CONFLICT', 'VAppTaskInProgress'],
  ['ConcurrentAccess', 'CONFLICT', null],
  ['DuplicateName', 'CONFLICT', null],
  ['AlreadyExists', 'CONFLICT', null],
  ['FileAlreadyExists', 'CONFLICT', null],
  ['NoPermission', 'PERMISSION_DENIED', null],
  ['SecurityError', 'PERMISSION_DENIED', 'SolutionUserRequired'],
  ['NotSupported', 'UNSUPPORTED', 'HostAccessRestrictedToManagementServer'],
  ['RequestCanceled', 'ABORTED', null],
];

describe('fault table', () => {
  it.each(FAULT_ROWS)('%s → %s', (fault, code, subtype) => {
    expect(faultCode(fault)).toBe(code);
    if (subtype !== null) expect(faultCode(subtype)).toBe(code);
    const error = methodFaultToError(
      { _type: 'LocalizedMethodFault', fault: { _type: fault } as DataObject, localizedMessage: 'm' },
      { source: 'task', task: 'task-1' },
    );
    expect(error.code).toBe(code);
    expect(error.backendCode).toBe(fault);
    expect(error.retryable).toBe(fault === 'TaskInProgress' || fault === 'ConcurrentAccess');
  });

  it('keeps the bases of those faults, and the faults beside them, REMOTE', () => {
    for (const fault of [
      'MethodFault',
      'RuntimeFault',
      'VimFault',
      'FileFault',
      'CannotDeleteFile',
      'VmConfigFault',
      'Timedout',
      'SystemError',
      'HostCommunication',
      'HostNotReachable',
      'InvalidName',
      '',
    ]) {
      expect(faultCode(fault), fault).toBe('REMOTE');
    }
  });

  it('retries host communication faults and their subtypes as they are', () => {
    for (const fault of ['HostCommunication', 'HostNotConnected', 'HostNotReachable', 'VAppTaskInProgress']) {
      const error = methodFaultToError(
        { _type: 'LocalizedMethodFault', fault: { _type: fault } as DataObject },
        { source: 'task' },
      );
      expect(error.retryable, fault).toBe(true);
    }
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

describe('fault messages', () => {
  const fault = (type: string, fields: Record<string, unknown> = {}) =>
    ({ _type: type, ...fields }) as DataObject;
  const soap = (detail: DataObject | undefined, faultstring = 'boom', faultType = detail?._type) =>
    soapFaultToError({ faultcode: 'ServerFaultCode', faultstring, faultType, detail }, { method: 'M' });

  it('names up to four scalar or moref fields of the fault, never its cause, message or type', () => {
    const error = soap(
      fault('InvalidArgument', {
        faultCause: { _type: 'LocalizedMethodFault' },
        faultMessage: [{ _type: 'LocalizableMessage', key: 'k' }],
        invalidProperty: 'spec.name',
        other: { _type: 'Data', nested: 'x' },
        half: { type: 1, value: 'vm-1' },
        count: 3,
        ok: false,
        obj: { _type: 'ManagedObjectReference', type: 'VirtualMachine', value: 'vm-9' },
        fifth: 'not shown',
      }),
    );
    expect(error.message).toBe(
      'M: boom (InvalidArgument) [invalidProperty=spec.name, count=3, ok=false, obj=VirtualMachine:vm-9]',
    );
    expect(error.backendMessage).toBe('boom');
    expect(soap(fault('InvalidArgument', { fifth: '' })).message).toBe('M: boom (InvalidArgument) [fifth=]');
    // A fault with nothing to name, or none at all.
    expect(soap(fault('InvalidArgument')).message).toBe('M: boom (InvalidArgument)');
    expect(soap(undefined, 'no detail', 'ServerFaultCode').message).toBe('M: no detail (ServerFaultCode)');
  });

  it('cuts the named fields at 300 characters', () => {
    const error = soap(fault('SystemError', { reason: 'r'.repeat(400) }));
    expect(error.message).toBe(`M: boom (SystemError) [reason=${'r'.repeat(293)}…]`);
    const exact = soap(fault('SystemError', { reason: 'r'.repeat(293) }));
    expect(exact.message).toBe(`M: boom (SystemError) [reason=${'r'.repeat(293)}]`);
  });

  it('uses the trimmed server message, or the fault type when there is none', () => {
    expect(soap(fault('NotFound'), '  gone  ').message).toBe('M: gone (NotFound)');
    const blank = soap(fault('NotFound'), '   ');
    expect(blank.message).toBe('M: NotFound');
    expect(blank.backendMessage).toBe('   ');
    expect(soap(fault('NotFound'), 'NotFound').message).toBe('M: NotFound');
    expect(
      soapFaultToError({ faultcode: 'X', faultstring: 'y', faultType: 'NotFound', detail: undefined })
        .message,
    ).toBe('y (NotFound)');
    expect(
      soapFaultToError({ faultcode: 'X', faultstring: 'y', faultType: 'NotFound', detail: undefined })
        .operation,
    ).toBeUndefined();
  });

  it('says which task or property a nested fault came from, also without an id', () => {
    const nested = (source: 'task' | 'property', extra: { task?: string; path?: string }) =>
      methodFaultToError(
        { _type: 'LocalizedMethodFault', fault: fault('NotFound'), localizedMessage: 'gone' },
        { source, ...extra, operation: 'op' },
      );
    expect(nested('task', { task: 'task-1' }).message).toBe('task task-1 failed: gone (NotFound)');
    expect(nested('task', {}).message).toBe('task  failed: gone (NotFound)');
    expect(nested('property', { path: 'config.name' }).message).toBe('property config.name: gone (NotFound)');
    expect(nested('property', {}).message).toBe('property : gone (NotFound)');
    expect(nested('property', {}).operation).toBe('op');
    expect(faultDetailsOf(nested('property', { path: 'p' }))).toEqual({
      faultType: 'NotFound',
      faultSource: 'property',
      fault: { _type: 'NotFound' },
      task: undefined,
      path: 'p',
    });
  });

  it('reads a LocalizedMethodFault without a fault object or message as MethodFault', () => {
    for (const inner of [undefined, null, 'NotFound']) {
      const error = methodFaultToError(
        {
          _type: 'LocalizedMethodFault',
          fault: inner as unknown as DataObject,
          localizedMessage: 7 as unknown as string,
        },
        { source: 'task', task: 't' },
      );
      expect(error.backendCode).toBe('MethodFault');
      expect(error.message).toBe('task t failed: MethodFault');
      expect(error.backendMessage).toBeUndefined();
      expect(error.code).toBe('REMOTE');
    }
  });
});

describe('fault details of other errors', () => {
  it('are undefined, and such errors never mean a lost session', async () => {
    const { hvkitError } = await import('@hvkit/core');
    const bare = hvkitError('AUTH_FAILED', 'x', { backendCode: 'NotAuthenticated' });
    expect(isSessionLost(bare)).toBe(false);
    expect(faultDetailsOf(bare)).toBeUndefined();
    expect(faultDetailsOf(new Error('x'))).toBeUndefined();
    expect(faultDetailsOf(hvkitError('REMOTE', 'x', { details: { faultType: 'X' } }))).toBeUndefined();
    expect(faultDetailsOf(hvkitError('REMOTE', 'x', { details: { faultSource: 'soap' } }))).toBeUndefined();
    expect(
      faultDetailsOf(hvkitError('REMOTE', 'x', { details: { faultType: 'X', faultSource: 'soap' } })),
    ).toEqual({
      faultType: 'X',
      faultSource: 'soap',
    });
  });
});
