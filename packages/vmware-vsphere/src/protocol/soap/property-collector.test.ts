/**
 * The RetrievePropertiesEx / ContinueRetrievePropertiesEx token loop against a local server that pages the
 * recorded vcsim inventory (vcsim 0.24.2 ignores maxObjects and has no ContinueRetrievePropertiesEx).
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  objectsOf,
  type SoapReply,
  type SoapRequest,
  type SoapServer,
  sample,
  soapEnvelope,
  startSoapServer,
} from '../../../test/soap-server';
import { moRef } from './envelope';
import { retrieveContainer, retrieveProperties, retrievePropertiesPages } from './property-collector';
import { connectVim, type VimSession } from './session';

const VM_PATHS = [
  'name',
  'config.uuid',
  'config.instanceUuid',
  'runtime.powerState',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'guest.guestId',
  'runtime.host',
  'config.cpuAllocation',
  'config.memoryAllocation',
  'resourceConfig',
  'config.hardware.device',
];

const OBJECTS = objectsOf(sample('retrieve-vms-vpx.xml'));

function page(method: string, objects: string[], token?: string): string {
  const tokenXml = token ? `<token>${token}</token>` : '';
  return soapEnvelope(
    `<${method}Response xmlns="urn:vim25"><returnval>${tokenXml}${objects.join('')}</returnval></${method}Response>`,
  );
}
const VOID = (method: string) => soapEnvelope(`<${method}Response xmlns="urn:vim25"></${method}Response>`);

interface FakeOptions {
  pageSize?: number;
  onContinue?: (token: string) => SoapReply | undefined;
  retrieve?: (request: SoapRequest) => SoapReply | undefined;
}

/** A vCenter-like server: service content and login from the samples, the inventory in pages. */
function fakeVcenter(options: FakeOptions = {}): (request: SoapRequest) => SoapReply {
  const size = options.pageSize ?? 4;
  const pages: string[][] = [];
  for (let i = 0; i < OBJECTS.length; i += size) pages.push(OBJECTS.slice(i, i + size));
  return (request) => {
    switch (request.method) {
      case 'RetrieveServiceContent':
        return { body: sample('service-content-vpx.xml') };
      case 'Login':
        return {
          body: sample('login.xml'),
          headers: { 'set-cookie': 'vmware_soap_session="s1"; Path=/; HttpOnly' },
        };
      case 'CreateContainerView':
        return { body: sample('create-container-view.xml') };
      case 'DestroyView':
      case 'CancelRetrievePropertiesEx':
      case 'Logout':
        return { body: VOID(request.method) };
      case 'RetrievePropertiesEx': {
        const custom = options.retrieve?.(request);
        if (custom) return custom;
        return { body: page('RetrievePropertiesEx', pages[0] ?? [], pages.length > 1 ? 't1' : undefined) };
      }
      case 'ContinueRetrievePropertiesEx': {
        const token = /<token>([^<]*)<\/token>/.exec(request.body)?.[1] ?? '';
        const custom = options.onContinue?.(token);
        if (custom) return custom;
        const index = Number(token.slice(1));
        const next = index + 1 < pages.length ? `t${index + 1}` : undefined;
        return { body: page('ContinueRetrievePropertiesEx', pages[index] ?? [], next) };
      }
      default:
        return { status: 500, body: sample('fault-method-not-found.xml') };
    }
  };
}

let server: SoapServer | undefined;
let session: VimSession | undefined;
afterEach(async () => {
  await session?.close();
  await server?.close();
  session = undefined;
  server = undefined;
});

async function connect(handler: (request: SoapRequest) => SoapReply): Promise<[SoapServer, VimSession]> {
  server = await startSoapServer(handler);
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

const methods = (s: SoapServer) => s.requests.map((r) => r.method);

describe('retrieveContainer: the token loop', () => {
  it('follows tokens across pages and decodes every object', async () => {
    const [srv, vim] = await connect(fakeVcenter({ pageSize: 4 }));
    const vms = await retrieveContainer(vim, { type: 'VirtualMachine', paths: VM_PATHS }, { maxObjects: 4 });
    expect(vms).toHaveLength(9);
    expect(new Set(vms.map((v) => v.obj.value)).size).toBe(9);
    for (const vm of vms) {
      expect(vm.props.name).toMatch(/^DC0_/);
      expect(Array.isArray(vm.props['config.hardware.device'])).toBe(true);
      expect(vm.missing).toEqual([]);
    }
    expect(methods(srv)).toEqual([
      'RetrieveServiceContent',
      'Login',
      'CreateContainerView',
      'RetrievePropertiesEx',
      'ContinueRetrievePropertiesEx',
      'ContinueRetrievePropertiesEx',
      'DestroyView',
    ]);
    const rpe = srv.requests[3]?.body as string;
    expect(rpe).toContain('<options><maxObjects>4</maxObjects></options>');
    expect(rpe).toContain(
      '<selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path></selectSet>',
    );
    expect(srv.requests[4]?.body).toContain('<token>t1</token>');
    expect(srv.requests[5]?.body).toContain('<token>t2</token>');
    // The session cookie went with every call after Login.
    expect(srv.requests.slice(2).every((r) => r.headers.cookie === 'vmware_soap_session="s1"')).toBe(true);
  });

  it('handles one-object pages and an empty result', async () => {
    const [, vim] = await connect(fakeVcenter({ pageSize: 1 }));
    expect(
      await retrieveContainer(vim, { type: 'VirtualMachine', paths: ['name'] }, { maxObjects: 1 }),
    ).toHaveLength(9);
    await server?.close();
    await session?.close();
    const [, empty] = await connect(
      fakeVcenter({ retrieve: () => ({ body: VOID('RetrievePropertiesEx') }) }),
    );
    expect(await retrieveContainer(empty, { type: 'VirtualMachine', paths: ['name'] })).toEqual([]);
  });

  it('cancels the open token when the caller stops after the first page', async () => {
    const [srv, vim] = await connect(fakeVcenter({ pageSize: 4 }));
    const spec = [
      {
        propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
        objectSet: [{ obj: moRef('Folder', 'group-d1') }],
      },
    ];
    for await (const first of retrievePropertiesPages(vim, spec)) {
      expect(first).toHaveLength(4);
      break;
    }
    await expect.poll(() => methods(srv)).toContain('CancelRetrievePropertiesEx');
    const cancel = srv.requests.find((r) => r.method === 'CancelRetrievePropertiesEx');
    expect(cancel?.body).toContain('<token>t1</token>');
    expect(methods(srv)).not.toContain('ContinueRetrievePropertiesEx');
  });

  it('aborts while a page is in flight and cancels the token', async () => {
    const [srv, vim] = await connect(
      fakeVcenter({
        pageSize: 4,
        onContinue: () => ({ body: page('ContinueRetrievePropertiesEx', []), delayMs: 5_000 }),
      }),
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const error = await retrieveContainer(
      vim,
      { type: 'VirtualMachine', paths: ['name'] },
      { signal: controller.signal },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect.poll(() => methods(srv)).toContain('CancelRetrievePropertiesEx');
    await expect.poll(() => methods(srv)).toContain('DestroyView');
  });

  it('fails on a token the server no longer knows, with the fault typed', async () => {
    const [, vim] = await connect(
      fakeVcenter({ onContinue: () => ({ status: 500, body: sample('fault-invalid-argument.xml') }) }),
    );
    const error = await retrieveContainer(vim, { type: 'VirtualMachine', paths: ['name'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('InvalidArgument');
  });
});

describe('retrieveProperties: NotAuthenticated inside missingSet', () => {
  const notAuthenticated = sample('retrieve-missing-not-authenticated.xml');

  it('is only a missing property while the session is alive (no re-login)', async () => {
    const [srv, vim] = await connect(
      fakeVcenter({
        retrieve: (req) =>
          req.body.includes('<type>SessionManager</type>')
            ? { body: sample('current-session.xml') }
            : { body: notAuthenticated },
      }),
    );
    const [vm] = await retrieveProperties(vim, [
      {
        propSet: [{ type: 'VirtualMachine', pathSet: ['name', 'runtime.powerState'] }],
        objectSet: [{ obj: moRef('VirtualMachine', 'vm-51') }],
      },
    ]);
    expect(vm?.props).toEqual({});
    expect(vm?.missing.map((m) => [m.path, m.faultType, m.error.code])).toEqual([
      ['name', 'NotAuthenticated', 'AUTH_FAILED'],
      ['runtime.powerState', 'NotAuthenticated', 'AUTH_FAILED'],
    ]);
    expect(methods(srv).filter((m) => m === 'Login')).toHaveLength(1);
    expect(vim.stats.relogins).toBe(0);
  });

  it('logs in again once when currentSession shows the session is gone', async () => {
    // The server forgets the session right after the connect's Login, until the next Login.
    let logins = 0;
    const base = fakeVcenter();
    const [srv, vim] = await connect((req) => {
      if (req.method === 'Login') logins++;
      const loggedOut = logins === 1;
      if (req.method === 'RetrievePropertiesEx') {
        if (req.body.includes('<type>SessionManager</type>')) {
          return { body: sample(loggedOut ? 'current-session-none.xml' : 'current-session.xml') };
        }
        return { body: loggedOut ? notAuthenticated : sample('retrieve-missing-invalid-property.xml') };
      }
      return base(req);
    });
    const [vm] = await retrieveProperties(vim, [
      {
        propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
        objectSet: [{ obj: moRef('VirtualMachine', 'vm-51') }],
      },
    ]);
    expect(vm?.props.name).toMatch(/^DC0_/);
    expect(vim.stats.relogins).toBe(1);
    expect(methods(srv).filter((m) => m === 'Login')).toHaveLength(2);
  });
});
