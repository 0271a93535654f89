import {
  cassetteHandlers,
  type HttpCassette,
  readFixture,
  replayDialer,
  type SocketTranscript,
} from '@hvkit/conformance/fixtures';
import type { HypervisorAdapter } from '@hvkit/core';
import { createInMemoryAdapter } from '@hvkit/core/testing';
import { connect as connectLibvirt } from '@hvkit/kvm-libvirt';
import { connect as connectVsphere } from '@hvkit/vmware-vsphere';
import { VCSIM_REPLAY_URL } from '@hvkit/vmware-vsphere/testing';
import { connect as connectXen } from '@hvkit/xen-xapi';
import { setupServer } from 'msw/node';

/** An opened source: the adapter, and what to check once it is closed. */
export interface OpenedSource {
  adapter: HypervisorAdapter;
  /** Called after `adapter.close()`: stops a replay and throws when it was not used as recorded. */
  finish?(): void;
}

/** One backend the demo shows: an adapter opened on embedded data, so no server is needed. */
export interface DemoSource {
  /** Short label printed as the section title. */
  name: string;
  /** Where the data comes from (recorded fixture folder, or the in-memory reference adapter). */
  origin: string;
  open(): Promise<OpenedSource>;
}

/**
 * Opens an adapter on an HTTP replay: msw answers the adapter's requests in this process from the fixture's
 * `demo-cassette.json` (nothing reaches the network, and a request the recording does not hold fails);
 * `finish` stops it and throws when an interaction was not used.
 */
async function openHttpReplay(
  fixtureDir: string,
  connect: () => Promise<HypervisorAdapter>,
): Promise<OpenedSource> {
  const fixture = await readFixture(new URL(`../../../${fixtureDir}`, import.meta.url).pathname);
  const replay = cassetteHandlers((await fixture.readJson('demo-cassette.json')) as HttpCassette);
  const server = setupServer(...replay.handlers);
  server.listen({ onUnhandledRequest: 'error' });
  try {
    const adapter = await connect();
    return {
      adapter,
      finish() {
        server.close();
        replay.done();
      },
    };
  } catch (error) {
    server.close();
    throw error;
  }
}

/**
 * Every source the demo prints. Each adapter package adds one entry that replays its recorded fixtures;
 * until an adapter lands, the in-memory reference adapter from `@hvkit/core/testing` stands in.
 */
export const DEMO_SOURCES: DemoSource[] = [
  {
    name: 'in-memory',
    origin: '@hvkit/core/testing reference adapter (default dataset)',
    open: async () => ({ adapter: createInMemoryAdapter() }),
  },
  {
    name: 'vmware-vsphere (vcsim-vpx fixture)',
    origin:
      'packages/vmware-vsphere/test/fixtures/vcsim-vpx (govmomi vcsim, vCenter model), replayed with msw',
    // The demo's own calls, recorded by packages/vmware-vsphere/test/record.ts in this order.
    open: () =>
      openHttpReplay('packages/vmware-vsphere/test/fixtures/vcsim-vpx', () =>
        connectVsphere({
          url: VCSIM_REPLAY_URL,
          // A replay: nothing leaves the process, so plain http is fine (the opt-out still has to be named).
          insecureHttp: true,
          username: 'tester',
          password: 'not-recorded',
        }),
      ),
  },
  {
    name: 'kvm-libvirt (test driver fixture)',
    origin:
      'packages/kvm-libvirt/test/fixtures/libvirt-test-driver (libvirtd 9.0 test driver, node XML), replayed',
    open: async () => {
      const dir = new URL('../../../packages/kvm-libvirt/test/fixtures/libvirt-test-driver', import.meta.url);
      const fixture = await readFixture(dir.pathname);
      const transcript = (await fixture.readJson('demo-transcript.json')) as SocketTranscript;
      // The recorded libvirt RPC session (host, guests, then limits and labels of each guest) in place of
      // the daemon's socket; same settings as the recording (keepalive off, cgroup v1 conversions).
      const adapter = await connectLibvirt({
        dialer: replayDialer(transcript),
        openUri: 'test:///hvkit.invalid/test-node.xml',
        keepalive: false,
        cgroupVersion: 1,
      });
      return { adapter };
    },
  },
  {
    name: 'xen-xapi (XAPI simulator fixture)',
    origin:
      "packages/xen-xapi/test/fixtures/xapi-sim-demo (the package's XAPI simulator, seed database, JSON-RPC), replayed with msw",
    // The demo's own calls, recorded by packages/xen-xapi/test/record-demo.ts in this order.
    open: () =>
      openHttpReplay('packages/xen-xapi/test/fixtures/xapi-sim-demo', () =>
        connectXen({
          url: 'http://xen-xapi.replay.invalid',
          insecureHttp: true,
          username: 'root',
          password: 'not-recorded',
          transport: 'json-rpc',
          // The global fetch, looked up at each call: msw intercepts it, not the adapter's own client.
          fetch: (input, init) => globalThis.fetch(input, init),
        }),
      ),
  },
];
