/**
 * Measures the failure timings docs/architecture.md reports ("Running as a service") against a private
 * libvirtd and a private vcsim: hang detection, connect to a hung peer, close against a hung peer, and the
 * time from a restart to the adapter answering again. Run:
 *   node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/measure-service.ts
 */
import { createServer } from 'node:net';
import { connect as vsConnect } from '../../vmware-vsphere/src/connect';
import { VCSIM_MODELS } from '../../vmware-vsphere/test/probe';
import { startVcsim } from '../../vmware-vsphere/test/vcsim-instance';
import { connect as kvmConnect } from '../src/connect';
import { ThrowawayLibvirtd } from './throwaway-libvirtd';

const until = async (f: () => boolean, ms = 120_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 10));
  }
};
const time = async (f: () => Promise<unknown>) => {
  const t = Date.now();
  const r = await f().then(
    (v) => ({ ok: v }),
    (e) => ({ error: `${e.code}` }),
  );
  return { ms: Date.now() - t, ...r };
};
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const out: Record<string, unknown> = {};
const d = await ThrowawayLibvirtd.start();
try {
  // Hang detection with the default keepalive (5 s x 5).
  const hv = await kvmConnect({ uri: d.uri });
  d.signal('SIGSTOP');
  let t = Date.now();
  await until(() => hv.connection.state === 'reconnecting');
  out.kvmHangDetectionDefaultMs = Date.now() - t;
  d.signal('SIGCONT');
  t = Date.now();
  await until(() => hv.connection.state === 'open');
  out.kvmReconnectAfterResumeMs = Date.now() - t;
  await d.kill();
  await until(() => hv.connection.state === 'reconnecting');
  t = Date.now();
  await d.restart();
  out.kvmDaemonRestartMs = Date.now() - t;
  await until(() => hv.connection.state === 'open');
  out.kvmOpenAfterRestartMs = Date.now() - t;
  d.signal('SIGSTOP');
  out.kvmCloseHung = await time(() => hv.close());
  out.kvmConnectHungDefault = await time(() => kvmConnect({ uri: d.uri }));
  d.signal('SIGCONT');
} finally {
  await d.dispose();
}

const sim = await startVcsim({
  bin: process.env.HVKIT_VCSIM_BIN as string,
  args: VCSIM_MODELS.vpx,
  port: await freePort(),
});
try {
  const opts = { url: sim.url, insecureHttp: true, username: sim.username, password: sim.password };
  const hv = await vsConnect({ ...opts, timeoutMs: 5000 });
  await hv.inventory.listGuests();
  sim.signal('SIGSTOP');
  let t = Date.now();
  out.vsCallHung5s = await time(() => hv.inventory.listGuests());
  await until(() => hv.connection.state === 'reconnecting');
  out.vsHangDetectionWithTimeout5sMs = Date.now() - t;
  sim.signal('SIGCONT');
  t = Date.now();
  await until(() => hv.connection.state === 'open');
  out.vsOpenAfterResumeMs = Date.now() - t;
  await sim.kill();
  await hv.inventory.host({ timeoutMs: 2000 }).catch(() => {});
  t = Date.now();
  await sim.restart();
  out.vsSimRestartMs = Date.now() - t;
  await until(() => hv.connection.state === 'open');
  out.vsOpenAfterRestartMs = Date.now() - t;
  const hv2 = await vsConnect(opts);
  await hv2.inventory.listGuests();
  sim.signal('SIGSTOP');
  out.vsCloseHungDefault = await time(() => hv2.close());
  out.vsConnectHung3s = await time(() => vsConnect({ ...opts, timeoutMs: 3000 }));
  sim.signal('SIGCONT');
  await hv.close();
} finally {
  await sim.stop();
}
console.log(JSON.stringify(out, null, 2));
