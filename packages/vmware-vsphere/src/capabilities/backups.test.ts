/**
 * Host configuration backups against fake ESXi servers on loopback: the configuration bundle is fetched
 * only from the session's own origin whatever URL the server names (another host, plain http, a redirect).
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectorySink, HvkitError } from '@hvkit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert, type TestCert } from '../../../core/src/__test-utils__';
import {
  bootstrapReply,
  FAKE_SESSION_COOKIE,
  type SoapReply,
  type SoapRequest,
  type SoapServer,
  type SoapServerOptions,
  soapEnvelope,
  startSoapServer,
} from '../../test/soap-server';
import { connect } from '../connect';

const servers: SoapServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function fakeVsphere(
  model: 'vpx' | 'esx',
  other: (req: SoapRequest) => SoapReply | undefined = () => undefined,
  options: SoapServerOptions = {},
): Promise<SoapServer> {
  const server = await startSoapServer(
    (req) => bootstrapReply(req, model) ?? other(req) ?? { status: 404 },
    options,
  );
  servers.push(server);
  return server;
}

const BUNDLE = Buffer.from('configBundle of the session host\n'.repeat(100));
const FOREIGN_BUNDLE = Buffer.from('a bundle from somewhere else');

/**
 * An ESXi host whose BackupFirmwareConfiguration answers `bundleUrl()`; `/downloads/` serves the bundle
 * unless `download` answers otherwise.
 */
function esxHost(
  bundleUrl: () => string,
  download: (req: SoapRequest) => SoapReply | undefined = () => undefined,
): (req: SoapRequest) => SoapReply | undefined {
  return (req) => {
    switch (req.method) {
      case 'CreateContainerView':
        return {
          body: soapEnvelope(
            '<CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">session[1]view-1</returnval></CreateContainerViewResponse>',
          ),
        };
      case 'RetrievePropertiesEx':
        return {
          body: soapEnvelope(
            '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="HostSystem">ha-host</obj>' +
              '<propSet><name>configManager.firmwareSystem</name><val xsi:type="ManagedObjectReference" type="HostFirmwareSystem">ha-firmwareSystem</val></propSet>' +
              '</objects></returnval></RetrievePropertiesExResponse>',
          ),
        };
      case 'DestroyView':
        return { body: soapEnvelope('<DestroyViewResponse xmlns="urn:vim25"></DestroyViewResponse>') };
      case 'BackupFirmwareConfiguration':
        return {
          body: soapEnvelope(
            `<BackupFirmwareConfigurationResponse xmlns="urn:vim25"><returnval>${bundleUrl()}</returnval></BackupFirmwareConfigurationResponse>`,
          ),
        };
      default:
        if (req.httpMethod === 'GET' && req.path.startsWith('/downloads/'))
          return (
            download(req) ?? {
              headers: {
                'content-type': 'application/octet-stream',
                'content-length': String(BUNDLE.length),
              },
              raw: (res) => {
                res.writeHead(200, { 'content-length': String(BUNDLE.length) });
                res.end(BUNDLE);
              },
            }
          );
        return undefined;
    }
  };
}

describe('host configuration backup: the bundle comes from the session host only', () => {
  // Made in beforeAll, not while the file is collected.
  let cert: TestCert;
  beforeAll(() => {
    cert = makeTestCert('esx', 'IP:127.0.0.1');
  });
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const sink = () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-vs-hostcfg-'));
    dirs.push(dir);
    return { dir, sink: createDirectorySink(dir) };
  };
  const foreignServer = async () => {
    const foreign = await startSoapServer(() => ({
      raw: (res) => {
        res.writeHead(200, { 'content-length': String(FOREIGN_BUNDLE.length) });
        res.end(FOREIGN_BUNDLE);
      },
    }));
    servers.push(foreign);
    return foreign;
  };
  const downloads = (server: SoapServer) => server.requests.filter((r) => r.path.startsWith('/downloads/'));

  it('a URL naming another host over plain http is fetched from the session origin; the cookie stays home', async () => {
    const foreign = await foreignServer();
    const server = await fakeVsphere(
      'esx',
      esxHost(() => `${foreign.origin}/downloads/abc/configBundle-ha-host.tgz`),
    );
    const adapter = await connect({ url: server.url, insecureHttp: true, username: 'u', password: 'p' });
    try {
      const { dir, sink: s } = sink();
      const artifact = await adapter.backups!.backupHostConfig!(s);
      expect(foreign.requests).toHaveLength(0);
      const [download] = downloads(server);
      expect(download?.path).toBe('/downloads/abc/configBundle-ha-host.tgz');
      expect(download?.headers.cookie).toBe(FAKE_SESSION_COOKIE);
      expect(artifact.files[0]?.sha256).toBe(createHash('sha256').update(BUNDLE).digest('hex'));
      expect(readFileSync(join(dir, artifact.path ?? '', 'configBundle.tgz'))).toEqual(BUNDLE);
    } finally {
      await adapter.close();
    }
  });

  it("ESXi's `http://*/downloads/...` over an https session is fetched over https, never plain http", async () => {
    const server = await fakeVsphere(
      'esx',
      esxHost(() => 'http://*/downloads/5273d1d3/configBundle-ha-host.tgz'),
      { tls: cert },
    );
    const adapter = await connect({ url: server.url, username: 'u', password: 'p', tls: { ca: cert.cert } });
    try {
      const { sink: s } = sink();
      const artifact = await adapter.backups!.backupHostConfig!(s);
      // The TLS server saw the download, with the cookie: it went over https to the session's own port.
      const [download] = downloads(server);
      expect(download?.path).toBe('/downloads/5273d1d3/configBundle-ha-host.tgz');
      expect(download?.headers.cookie).toBe(FAKE_SESSION_COOKIE);
      expect(artifact.files[0]?.bytes).toBe(BUNDLE.length);
    } finally {
      await adapter.close();
    }
  });

  it('a redirect from the download URL to another origin is not followed', async () => {
    const foreign = await foreignServer();
    const server = await fakeVsphere(
      'esx',
      esxHost(
        () => '/downloads/abc/configBundle-ha-host.tgz',
        () => ({
          status: 302,
          headers: { location: `${foreign.origin}/downloads/abc/configBundle-ha-host.tgz` },
        }),
      ),
    );
    const adapter = await connect({ url: server.url, insecureHttp: true, username: 'u', password: 'p' });
    try {
      const { sink: s } = sink();
      const error = await adapter.backups!.backupHostConfig!(s).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(foreign.requests).toHaveLength(0);
      expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    } finally {
      await adapter.close();
    }
  });
});
