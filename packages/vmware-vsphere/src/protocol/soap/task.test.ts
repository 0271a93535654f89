/**
 * waitForTask against a local server whose task stays running (vcsim 0.24.2 finishes every task inside
 * the call that starts it and has no CancelTask): backoff polling, cancellation, timeouts, task errors.
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type SoapReply,
  type SoapRequest,
  type SoapServer,
  sample,
  soapEnvelope,
  startSoapServer,
} from '../../../test/soap-server';
import { moRef } from './envelope';
import { connectVim, type VimSession } from './session';
import { waitForTask } from './task';

const XSI = 'xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"';
const TASK = moRef('Task', 'task-7');

/** A Task info.* response the way vcsim writes it. */
function taskState(state: string, extra = ''): string {
  return soapEnvelope(
    `<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-7</obj>` +
      `<propSet><name>info.state</name><val ${XSI} XMLSchema-instance:type="TaskInfoState">${state}</val></propSet>` +
      `${extra}</objects></returnval></RetrievePropertiesExResponse>`,
  );
}
const progress = (n: number) =>
  `<propSet><name>info.progress</name><val ${XSI} XMLSchema-instance:type="xsd:int">${n}</val></propSet>`;
const result = `<propSet><name>info.result</name><val ${XSI} XMLSchema-instance:type="ManagedObjectReference" type="VirtualMachineSnapshot">snapshot-9</val></propSet>`;
const taskError = (fault: string) =>
  `<propSet><name>info.error</name><val ${XSI} XMLSchema-instance:type="LocalizedMethodFault"><fault XMLSchema-instance:type="${fault}"><object type="VirtualMachine">vm-1</object><privilegeId>VirtualMachine.State.CreateSnapshot</privilegeId></fault><localizedMessage>denied</localizedMessage></val></propSet>`;

let server: SoapServer | undefined;
let session: VimSession | undefined;
afterEach(async () => {
  await session?.close();
  await server?.close();
  session = undefined;
  server = undefined;
});

async function connect(states: (request: SoapRequest) => SoapReply): Promise<[SoapServer, VimSession]> {
  server = await startSoapServer((req) => {
    switch (req.method) {
      case 'RetrieveServiceContent':
        return { body: sample('service-content-vpx.xml') };
      case 'Login':
        return { body: sample('login.xml'), headers: { 'set-cookie': 'vmware_soap_session=s1; HttpOnly' } };
      case 'Logout':
        return { body: sample('logout.xml') };
      case 'CancelTask':
        return { body: soapEnvelope('<CancelTaskResponse xmlns="urn:vim25"></CancelTaskResponse>') };
      case 'RetrievePropertiesEx':
        return states(req);
      default:
        return { status: 500, body: sample('fault-method-not-found.xml') };
    }
  });
  session = await connectVim({
    url: server.url,
    insecureHttp: true,
    version: '6.5',
    username: 'u',
    password: 'p',
    keepAliveMs: false,
  });
  return [server, session];
}

const count = (s: SoapServer, method: string) => s.requests.filter((r) => r.method === method).length;

describe('waitForTask', () => {
  it('polls with backoff until success and returns the result', async () => {
    const replies = [
      taskState('queued'),
      taskState('running', progress(10)),
      taskState('running', progress(60)),
    ];
    const [srv, vim] = await connect(() => ({
      body: replies.shift() ?? taskState('success', progress(100) + result),
    }));
    const seen: (number | undefined)[] = [];
    const value = await waitForTask(vim, TASK, {
      minPollMs: 10,
      maxPollMs: 40,
      onProgress: (s) => seen.push(s.progress),
    });
    expect(value).toEqual({ type: 'VirtualMachineSnapshot', value: 'snapshot-9' });
    expect(seen).toEqual([undefined, 10, 60]);
    expect(count(srv, 'RetrievePropertiesEx')).toBe(4);
    const poll = srv.requests.find((r) => r.method === 'RetrievePropertiesEx')?.body ?? '';
    expect(poll).toContain('<obj type="Task">task-7</obj>');
    expect(poll).toContain('<pathSet>info.state</pathSet>');
  });

  it('throws the task error typed by its fault, without re-login for a nested NotAuthenticated', async () => {
    const [srv, vim] = await connect(() => ({ body: taskState('error', taskError('NotAuthenticated')) }));
    const error = await waitForTask(vim, TASK).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'AUTH_FAILED')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('NotAuthenticated');
    expect((error as HvkitError).details).toMatchObject({ faultSource: 'task', task: 'task-7' });
    expect((error as HvkitError).message).toContain('denied');
    expect(count(srv, 'Login')).toBe(1);
    expect(vim.stats.relogins).toBe(0);
  });

  it('cancels the task when the wait is aborted', async () => {
    const [srv, vim] = await connect(() => ({ body: taskState('running', progress(5)) }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 250);
    const started = Date.now();
    const error = await waitForTask(vim, TASK, {
      signal: controller.signal,
      minPollMs: 20,
      maxPollMs: 50,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_500);
    await expect.poll(() => count(srv, 'CancelTask')).toBe(1);
    expect(srv.requests.find((r) => r.method === 'CancelTask')?.body).toContain(
      '<_this type="Task">task-7</_this>',
    );
  });

  it('aborts a poll that is in flight', async () => {
    const [, vim] = await connect(() => ({ body: taskState('running'), delayMs: 5_000 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await waitForTask(vim, TASK, { signal: controller.signal, cancelOnAbort: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('times out without cancelling the task', async () => {
    const [srv, vim] = await connect(() => ({ body: taskState('running') }));
    const error = await waitForTask(vim, TASK, { timeoutMs: 300, minPollMs: 20, maxPollMs: 50 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'TIMEOUT')).toBe(true);
    expect((error as HvkitError).message).toContain('task task-7');
    expect(count(srv, 'CancelTask')).toBe(0);
  });

  it('reports a task that does not exist as NOT_FOUND and rejects misuse', async () => {
    const [, vim] = await connect(() => ({
      status: 500,
      body: sample('fault-managed-object-not-found.xml'),
    }));
    const error = await waitForTask(vim, TASK).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'NOT_FOUND')).toBe(true);
    await expect(waitForTask(vim, { type: 'Task' } as never)).rejects.toThrow(TypeError);
  });
});
