/**
 * Live checks that the peers started by `scripts/peers/start` are real servers and up:
 * libvirtd (a running QEMU guest, the test driver with its default and node-XML configs) and vcsim
 * (vCenter and ESX models over https with a verified certificate, plain http, SOAP login, vAPI REST).
 * Peers: libvirtd, vcsim.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { livePeer } from './live';

const run = promisify(execFile);
const TIMEOUT_MS = 15_000;

async function virsh(uri: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-q', '-c', uri, ...args], { timeout: TIMEOUT_MS });
  return stdout.trim();
}

const libvirt = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_SOCKET',
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_ACCEL',
  'HVKIT_LIBVIRT_TEST_URI',
  'HVKIT_LIBVIRT_TEST_NODE_URI',
  'HVKIT_LIBVIRT_TEST_NODE_DOMAINS',
]);

describe.skipIf(!libvirt.available)(
  `live libvirtd${libvirt.available ? '' : ` (skipped: ${libvirt.reason})`}`,
  () => {
    const env: Record<string, string> = libvirt.available ? libvirt.env : {};

    it('serves qemu:///system with the peer guest running', async () => {
      const state = await virsh(env.HVKIT_LIBVIRT_QEMU_URI!, 'domstate', env.HVKIT_LIBVIRT_GUEST!);
      expect(state).toBe('running');
      const xml = await virsh(env.HVKIT_LIBVIRT_QEMU_URI!, 'dumpxml', env.HVKIT_LIBVIRT_GUEST!);
      expect(xml).toContain(`<domain type='${env.HVKIT_LIBVIRT_ACCEL === 'kvm' ? 'kvm' : 'qemu'}'`);
      expect(xml).toMatch(/<memory unit='KiB'>131072<\/memory>/);
      expect(xml).toMatch(/<target dev='vda' bus='virtio'\/>/);
    });

    it('serves the test driver default config through the daemon', async () => {
      const names = (await virsh(env.HVKIT_LIBVIRT_TEST_URI!, 'list', '--all', '--name')).split('\n');
      expect(names).toContain('test');
    });

    it('serves the test driver from the generated node XML', async () => {
      const names = (await virsh(env.HVKIT_LIBVIRT_TEST_NODE_URI!, 'list', '--all', '--name')).split('\n');
      expect(names).toHaveLength(Number(env.HVKIT_LIBVIRT_TEST_NODE_DOMAINS));
      expect(names).toContain('hvkit-test-0001');
      const shutOff = await virsh(env.HVKIT_LIBVIRT_TEST_NODE_URI!, 'list', '--inactive', '--name');
      expect(shutOff.split('\n')).toContain('hvkit-test-0004');
    });
  },
);

interface HttpReply {
  status: number;
  body: string;
  cookie?: string;
  /** SHA-1 fingerprint of the server certificate (https only). */
  fingerprint?: string;
}

/** POSTs to an http URL with the global fetch, or to an https URL trusting only `ca` (verification on). */
async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  ca?: string,
): Promise<HttpReply> {
  const target = new URL(url);
  if (target.protocol === 'http:') {
    const res = await fetch(target, {
      method: 'POST',
      body,
      headers,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const cookie = res.headers.get('set-cookie')?.split(';')[0];
    return { status: res.status, body: await res.text(), ...(cookie ? { cookie } : {}) };
  }
  return new Promise<HttpReply>((resolve, reject) => {
    const req = request(target, { method: 'POST', headers, ca, timeout: TIMEOUT_MS, agent: false }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const cookie = res.headers['set-cookie']?.[0]?.split(';')[0];
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          fingerprint,
          ...(cookie ? { cookie } : {}),
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${TIMEOUT_MS} ms: POST ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

const envelope = (inner: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"' +
  ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>' +
  inner +
  '</soapenv:Body></soapenv:Envelope>';

const xmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const tag = (xml: string, name: string): string | undefined =>
  new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`).exec(xml)?.[1];

const vcsim = livePeer('vcsim', [
  'HVKIT_VCSIM_URL',
  'HVKIT_VCSIM_HTTP_URL',
  'HVKIT_VCSIM_ESX_URL',
  'HVKIT_VCSIM_USER',
  'HVKIT_VCSIM_PASSWORD',
  'HVKIT_VCSIM_THUMBPRINT',
  'HVKIT_VCSIM_CA',
  'HVKIT_VCSIM_VMS',
]);

describe.skipIf(!vcsim.available)(`live vcsim${vcsim.available ? '' : ` (skipped: ${vcsim.reason})`}`, () => {
  const env: Record<string, string> = vcsim.available ? vcsim.env : {};
  const ca = vcsim.available ? readFileSync(env.HVKIT_VCSIM_CA!, 'utf8') : '';

  async function soap(url: string, inner: string, cookie?: string): Promise<HttpReply> {
    const headers: Record<string, string> = {
      'content-type': 'text/xml; charset="utf-8"',
      soapaction: 'urn:vim25/6.5',
      ...(cookie ? { cookie } : {}),
    };
    return post(url, envelope(inner), headers, ca);
  }

  const serviceContent =
    '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>';

  it.each([
    ['vCenter over https', 'HVKIT_VCSIM_URL', 'VirtualCenter'],
    ['vCenter over http', 'HVKIT_VCSIM_HTTP_URL', 'VirtualCenter'],
    ['ESX over https', 'HVKIT_VCSIM_ESX_URL', 'HostAgent'],
  ])('answers RetrieveServiceContent (%s)', async (_label, urlVar, apiType) => {
    const url = env[urlVar]!;
    const reply = await soap(url, serviceContent);
    expect(reply.status).toBe(200);
    expect(tag(reply.body, 'apiType')).toBe(apiType);
    expect(tag(reply.body, 'apiVersion')).toMatch(/^\d+\.\d+/);
    if (url.startsWith('https:')) expect(reply.fingerprint).toBe(env.HVKIT_VCSIM_THUMBPRINT);
  });

  it('checks the login and serves the configured inventory', async () => {
    const url = env.HVKIT_VCSIM_URL!;
    const login = (password: string) =>
      soap(
        url,
        `<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>${xmlEscape(
          env.HVKIT_VCSIM_USER!,
        )}</userName><password>${xmlEscape(password)}</password></Login>`,
      );
    const bad = await login(`${env.HVKIT_VCSIM_PASSWORD}-wrong`);
    expect(bad.status).toBe(500);
    expect(bad.body).toContain('InvalidLogin');

    const good = await login(env.HVKIT_VCSIM_PASSWORD!);
    expect(good.status).toBe(200);
    expect(tag(good.body, 'userName')).toBe(env.HVKIT_VCSIM_USER);
    const cookie = good.cookie;
    expect(cookie).toMatch(/^vmware_soap_session=/);
    try {
      const sc = await soap(url, serviceContent, cookie);
      const root = tag(sc.body, 'rootFolder');
      const viewManager = tag(sc.body, 'viewManager');
      const collector = tag(sc.body, 'propertyCollector');
      const view = await soap(
        url,
        `<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">${viewManager}</_this>` +
          `<container type="Folder">${root}</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>`,
        cookie,
      );
      const viewRef = tag(view.body, 'returnval');
      expect(viewRef).toBeTruthy();
      const props = await soap(
        url,
        `<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">${collector}</_this><specSet>` +
          '<propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet>' +
          `<objectSet><obj type="ContainerView">${xmlEscape(viewRef!)}</obj><skip>true</skip>` +
          '<selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path></selectSet></objectSet>' +
          '</specSet><options></options></RetrievePropertiesEx>',
        cookie,
      );
      expect(props.status).toBe(200);
      const vms = props.body.match(/<obj type="VirtualMachine">/g) ?? [];
      expect(vms).toHaveLength(Number(env.HVKIT_VCSIM_VMS));
    } finally {
      await soap(
        url,
        '<Logout xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Logout>',
        cookie,
      );
    }
  });

  it('serves the vAPI REST session endpoint', async () => {
    const base = new URL(env.HVKIT_VCSIM_URL!);
    const auth = Buffer.from(`${env.HVKIT_VCSIM_USER}:${env.HVKIT_VCSIM_PASSWORD}`).toString('base64');
    const reply = await post(
      `${base.origin}/rest/com/vmware/cis/session`,
      '',
      { authorization: `Basic ${auth}` },
      ca,
    );
    expect(reply.status).toBe(200);
    const session = JSON.parse(reply.body) as { value?: unknown };
    expect(typeof session.value).toBe('string');
  });
});
