import {
  type HttpCassette,
  readFixture,
  replayDialer,
  replayFetch,
  type SocketTranscript,
} from '@hvkit/conformance/fixtures';
import type { HypervisorAdapter } from '@hvkit/core';
import { createInMemoryAdapter } from '@hvkit/core/testing';
import { connect as connectLibvirt } from '@hvkit/kvm-libvirt';
import { connect as connectVsphere } from '@hvkit/vmware-vsphere';

/** One backend the demo shows: an adapter opened on embedded data, so no server is needed. */
export interface DemoSource {
  /** Short label printed as the section title. */
  name: string;
  /** Where the data comes from (recorded fixture folder, or the in-memory reference adapter). */
  origin: string;
  open(): Promise<HypervisorAdapter>;
}

/**
 * Every source the demo prints. Each adapter package adds one entry that replays its recorded fixtures;
 * until an adapter lands, the in-memory reference adapter from `@hvkit/core/testing` stands in.
 */
export const DEMO_SOURCES: DemoSource[] = [
  {
    name: 'in-memory',
    origin: '@hvkit/core/testing reference adapter (default dataset)',
    open: async () => createInMemoryAdapter(),
  },
  {
    name: 'vmware-vsphere (vcsim-vpx fixture)',
    origin: 'packages/vmware-vsphere/test/fixtures/vcsim-vpx (govmomi vcsim, vCenter model), replayed',
    open: async () => {
      const dir = new URL('../../../packages/vmware-vsphere/test/fixtures/vcsim-vpx', import.meta.url);
      const fixture = await readFixture(dir.pathname);
      const cassette = (await fixture.readJson('cassette.json')) as HttpCassette;
      return connectVsphere({
        url: 'http://vcsim.invalid/sdk',
        // A replay: nothing leaves the process, so plain http is fine (the opt-out still has to be named).
        insecureHttp: true,
        username: 'tester',
        password: 'REDACTED',
        fetch: replayFetch(cassette, { exhausted: 'repeat-last' }),
      });
    },
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
      return connectLibvirt({
        dialer: replayDialer(transcript),
        openUri: 'test:///work/main/.peers/libvirtd/test-node.xml',
        keepalive: false,
        cgroupVersion: 1,
      });
    },
  },
];
