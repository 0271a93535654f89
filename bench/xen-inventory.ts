/// <reference path="../packages/xen-xapi/test/xen-api.d.ts" />
/**
 * Benchmark: an inventory of a pool of COUNT VMs (default 1000) in the XAPI simulator of @hvkit/xen-xapi.
 * hvkit's `connect()` + `inventory.listGuests()` + `close()` against Xen Orchestra's `xen-api` client
 * (4.x) doing `connect()` (login) + the same `get_all_records` calls listGuests makes + `disconnect()`, on
 * the same simulator in the same run, once over JSON-RPC and once over XML-RPC.
 *
 *   node --conditions=@hvkit/source --import tsx bench/xen-inventory.ts [COUNT] [RUNS]
 *
 * The pool database is generated here (deterministic, in XAPI's `/pool/xmldbdump` format: pool, hosts and
 * their metrics, SRs, networks, PIFs, VLANs, and for each VM its metrics, guest metrics, two VIFs, a disk
 * or two with their VDIs and a CD drive; plus templates, a snapshot and the control domains, which
 * listGuests leaves out). The simulator runs in this process; each client runs in its own child process
 * (forked with this file's Node options), so the clients' heaps, garbage collection and peak RSS are
 * apart from the simulator's and from each other's. Runs alternate between the two children (one warm-up
 * each first, not counted; which side goes first alternates too); each child times its own run, from
 * before login to after logout. Prints per side min and median, the ratio of medians hvkit / xen-api
 * (target <= 1.0), each child's CPU time per run and peak RSS, and the simulator's CPU time per run (it
 * serves both sides the same calls, and is most of the time over JSON-RPC).
 */

import { type ChildProcess, fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

type Transport = 'json-rpc' | 'xml-rpc';

/** What the parent sends a worker. */
interface Job {
  url: string;
  username: string;
  password: string;
  transport: Transport;
  /** The `<class>.get_all_records` calls listGuests makes (the xen-api worker makes the same). */
  methods: string[];
}

/** What a worker answers per run. */
interface RunResult {
  ms: number;
  /** CPU time the worker process used during the run (user + system), in ms. */
  cpuMs: number;
  /** Guests (VMs that are not templates, snapshots or control domains) the run saw. */
  guests: number;
  /** The worker's peak RSS so far, in bytes. */
  maxRss: number;
}

interface Ready {
  /** RSS after loading the client's modules, before any run. */
  rss: number;
}

// ---------------------------------------------------------------------------------------------------------
// The pool database
// ---------------------------------------------------------------------------------------------------------

/** A deterministic UUID: class tag (8 hex digits) and index. */
const uuidOf = (tag: number, i: number) =>
  `${tag.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const refOf = (tag: number, i: number) => `OpaqueRef:${uuidOf(tag, i)}`;
const NULL = 'OpaqueRef:NULL';

/** An S-expression set. */
const set = (xs: readonly string[]) => `(${xs.map((x) => `'${x}'`).join(' ')})`;
/** An S-expression map. */
const map = (m: Readonly<Record<string, string>>) =>
  `(${Object.entries(m)
    .map(([k, v]) => `('${k}' '${v}')`)
    .join(' ')})`;
const esc = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&#x27;');

function row(ref: string, fields: Readonly<Record<string, string | number | boolean>>): string {
  const attrs = Object.entries(fields)
    .map(([k, v]) => ` ${k}="${esc(String(v))}"`)
    .join('');
  return `<row ref="${ref}" _ref="${ref}" uuid="${ref.slice('OpaqueRef:'.length)}"${attrs}/>`;
}

// Class tags for refs and UUIDs.
const T = {
  pool: 0xbe01,
  host: 0xbe02,
  hostMetrics: 0xbe03,
  sr: 0xbe04,
  network: 0xbe05,
  pif: 0xbe06,
  vlan: 0xbe07,
  vm: 0xbe08,
  vmMetrics: 0xbe09,
  guestMetrics: 0xbe0a,
  vif: 0xbe0b,
  vdi: 0xbe0c,
  vbd: 0xbe0d,
};

/** What XAPI keeps in a VM's `recommendations` (a string field real records carry; about 400 bytes). */
const RECOMMENDATIONS =
  '<restrictions><restriction field="memory-static-max" max="1649267441664"/><restriction field="vcpus-max" max="32"/>' +
  '<restriction field="has-vendor-device" value="false"/><restriction field="allow-gpu-passthrough" value="1"/>' +
  '<restriction field="allow-vgpu" value="1"/><restriction field="allow-network-sriov" value="1"/>' +
  '<restriction max="255" property="number-of-vbds"/><restriction max="7" property="number-of-vifs"/></restrictions>';

/**
 * A pool of `count` guests on 4 hosts, in the /pool/xmldbdump format. Every 10th VM is halted, every 25th
 * paused, every 40th suspended, the rest running; every 3rd has a second disk. 10 templates, one snapshot
 * and the 4 control domains are in the VM table too.
 */
export function generatePoolDb(count: number): string {
  const hosts = 4;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<database>',
    '<manifest><pair key="schema_major_vsn" value="5"/><pair key="schema_minor_vsn" value="602"/><pair key="generation_count" value="1"/></manifest>',
  ];
  const table = (name: string, rows: string[]) => out.push(`<table name="${name}">`, ...rows, '</table>');
  const common = { other_config: '()', tags: '()' };

  table('pool', [
    row(refOf(T.pool, 1), {
      name__label: 'bench-pool',
      name__description: `${count} guests`,
      master: refOf(T.host, 1),
      default_SR: refOf(T.sr, 2),
      ...common,
    }),
  ]);
  const sw = map({
    product_brand: 'XCP-ng',
    product_version: '8.2.1',
    platform_name: 'XCP',
    platform_version: '3.2.1',
    build_number: 'release/yangtze/master/58',
    xapi: '1.20',
    xen: '4.13.5-9.40',
  });
  const cpu = map({
    cpu_count: '32',
    socket_count: '2',
    vendor: 'GenuineIntel',
    speed: '2399.998',
    modelname: 'Intel(R) Xeon(R) CPU E5-2630 v3 @ 2.40GHz',
  });
  const hostRows: string[] = [];
  const metricsRows: string[] = [];
  for (let h = 1; h <= hosts; h++) {
    hostRows.push(
      row(refOf(T.host, h), {
        name__label: `bench-host-${h}`,
        name__description: 'Simulated XCP-ng host',
        address: `127.0.0.${h}`,
        hostname: `bench-host-${h}`,
        software_version: sw,
        API_version__major: 2,
        API_version__minor: 16,
        API_version__vendor: 'XenSource',
        sched_policy: 'credit',
        cpu_info: cpu,
        metrics: refOf(T.hostMetrics, h),
        enabled: true,
        guest_VCPUs_params: '()',
        memory__overhead: 0,
        ...common,
      }),
    );
    metricsRows.push(
      row(refOf(T.hostMetrics, h), {
        memory__total: 549755813888,
        memory__free: 137438953472,
        live: true,
        last_updated: '20240301T10:00:00Z',
      }),
    );
  }
  table('host', hostRows);
  table('host_metrics', metricsRows);
  table('SR', [
    row(refOf(T.sr, 1), {
      name__label: 'Local storage',
      name__description: '',
      type: 'ext',
      content_type: 'user',
      shared: false,
      physical_size: 4398046511104,
      physical_utilisation: 1099511627776,
      virtual_allocation: 2199023255552,
      ...common,
    }),
    row(refOf(T.sr, 2), {
      name__label: 'NFS VM storage',
      name__description: '',
      type: 'nfs',
      content_type: '',
      shared: true,
      physical_size: 70368744177664,
      physical_utilisation: 17592186044416,
      virtual_allocation: 35184372088832,
      ...common,
    }),
  ]);

  // Networks: 1 = management (untagged), 2 and 3 = VLAN 100 and 200 on each host's eth0.
  const vlans = [undefined, 100, 200];
  table(
    'network',
    vlans.map((tag, n) =>
      row(refOf(T.network, n + 1), {
        name__label: tag === undefined ? 'Pool-wide network associated with eth0' : `VLAN ${tag}`,
        name__description: '',
        bridge: tag === undefined ? 'xenbr0' : `xapi${n}`,
        MTU: 1500,
        managed: true,
        ...common,
      }),
    ),
  );
  const pifRows: string[] = [];
  const vlanRows: string[] = [];
  for (let h = 1; h <= hosts; h++) {
    vlans.forEach((tag, n) => {
      const i = (h - 1) * vlans.length + n + 1;
      pifRows.push(
        row(refOf(T.pif, i), {
          device: 'eth0',
          host: refOf(T.host, h),
          network: refOf(T.network, n + 1),
          MAC: `00:16:3e:00:0${h}:01`,
          MTU: 1500,
          VLAN: tag ?? -1,
          physical: tag === undefined,
          management: tag === undefined,
          IP: tag === undefined ? `127.0.0.${h}` : '',
          currently_attached: true,
          VLAN_master_of: tag === undefined ? NULL : refOf(T.vlan, i),
          other_config: '()',
        }),
      );
      if (tag !== undefined)
        vlanRows.push(
          row(refOf(T.vlan, i), {
            tag,
            tagged_PIF: refOf(T.pif, (h - 1) * vlans.length + 1),
            untagged_PIF: refOf(T.pif, i),
            other_config: '()',
          }),
        );
    });
  }
  table('PIF', pifRows);
  table('VLAN', vlanRows);

  const vmRows: string[] = [];
  const vmMetricsRows: string[] = [];
  const guestMetricsRows: string[] = [];
  const vifRows: string[] = [];
  const vbdRows: string[] = [];
  const vdiRows: string[] = [];
  const platform = map({ acpi: '1', apic: 'true', pae: 'true', nx: 'true', viridian: 'false' });
  let vif = 0;
  let vbd = 0;
  let vdi = 0;
  const vm = (
    i: number,
    name: string,
    o: { state: string; template?: boolean; dom0?: number; snapshotOf?: number; vcpus: number; mib: number },
  ) => {
    const running = o.state === 'Running' || o.state === 'Paused';
    const host = o.dom0 ?? (i % hosts) + 1;
    const bytes = o.mib * 1024 * 1024;
    vmRows.push(
      row(refOf(T.vm, i), {
        name__label: name,
        name__description: o.template ? 'Template' : `Guest ${i}`,
        power_state: o.state,
        is_a_template: o.template === true || o.snapshotOf !== undefined,
        is_control_domain: o.dom0 !== undefined,
        is_a_snapshot: o.snapshotOf !== undefined,
        snapshot_of: o.snapshotOf === undefined ? NULL : refOf(T.vm, o.snapshotOf),
        snapshot_time: o.snapshotOf === undefined ? '19700101T00:00:00Z' : '20240301T02:00:00Z',
        VCPUs__max: o.vcpus,
        VCPUs__at_startup: o.vcpus,
        VCPUs__params: i % 7 === 0 ? map({ weight: '512', cap: '200' }) : '()',
        memory__static_min: Math.min(bytes, 268435456),
        memory__dynamic_min: bytes / 2,
        memory__dynamic_max: bytes,
        memory__static_max: bytes,
        memory__target: running ? bytes : 0,
        memory__overhead: 20971520,
        resident_on: running ? refOf(T.host, host) : NULL,
        affinity: NULL,
        domid: o.dom0 !== undefined ? 0 : running ? i : -1,
        metrics: o.template ? NULL : refOf(T.vmMetrics, i),
        guest_metrics: running && o.dom0 === undefined ? refOf(T.guestMetrics, i) : NULL,
        tags: i % 5 === 0 ? set(['prod', `team-${i % 3}`]) : '()',
        other_config:
          i % 4 === 0
            ? map({ 'hvkit.tag.security-domain': `tenant-${i % 4}`, 'xo:backup': 'nightly' })
            : map({ default_template: String(o.template === true) }),
        blocked_operations: '()',
        platform,
        xenstore_data: map({ 'vm-data': '', 'vm-data/mmio-hole-size': '268435456' }),
        HVM__boot_policy: 'BIOS order',
        HVM__boot_params: map({ order: 'cd', firmware: 'bios' }),
        PV__bootloader: '',
        PV__args: '',
        domarch: '',
        user_version: 1,
        recommendations: RECOMMENDATIONS,
        allowed_operations: running
          ? set(['snapshot', 'clone', 'pause', 'clean_shutdown', 'clean_reboot', 'hard_shutdown'])
          : set(['start', 'export', 'copy', 'clone', 'destroy']),
      }),
    );
    if (!o.template)
      vmMetricsRows.push(
        row(refOf(T.vmMetrics, i), {
          memory__actual: running ? bytes : 0,
          VCPUs__number: running ? o.vcpus : 0,
          VCPUs__utilisation: running ? `(('0' '0.04'))` : '()',
          start_time: running ? '20240301T09:00:00Z' : '19700101T00:00:00Z',
          install_time: '20240101T00:00:00Z',
          state: '()',
          last_updated: '19700101T00:00:00Z',
          current_domain_type: running ? 'hvm' : 'unspecified',
        }),
      );
    if (running && o.dom0 === undefined)
      guestMetricsRows.push(
        row(refOf(T.guestMetrics, i), {
          os_version: map({ name: 'Debian GNU/Linux 12 (bookworm)', distro: 'debian', major: '12' }),
          networks: map({
            '0/ip': `10.${(i >> 8) & 255}.${i & 255}.11`,
            '0/ipv4/0': `10.${(i >> 8) & 255}.${i & 255}.11`,
          }),
          PV_drivers_version: map({ major: '8', minor: '2', micro: '1' }),
          PV_drivers_up_to_date: true,
          memory: '()',
          disks: '()',
          other: map({ 'has-vendor-device': '0', 'feature-balloon': '1' }),
          live: true,
          last_updated: '20240301T10:00:00Z',
        }),
      );
    if (o.template || o.dom0 !== undefined) return;
    for (const [device, network] of [
      ['0', (i % 2) + 2],
      ['1', 1],
    ] as const) {
      vif++;
      vifRows.push(
        row(refOf(T.vif, vif), {
          device,
          network: refOf(T.network, network),
          VM: refOf(T.vm, i),
          MAC: `ae:${(vif >> 16).toString(16).padStart(2, '0')}:${((vif >> 8) & 255).toString(16).padStart(2, '0')}:${(vif & 255).toString(16).padStart(2, '0')}:00:01`,
          MTU: 1500,
          currently_attached: running,
          locking_mode: 'network_default',
          qos__algorithm_type: i % 6 === 0 ? 'ratelimit' : '',
          qos__algorithm_params: i % 6 === 0 ? map({ kbps: '10240' }) : '()',
          qos__supported_algorithms: set(['ratelimit']),
          other_config: '()',
          MAC_autogenerated: true,
        }),
      );
    }
    const disks = i % 3 === 0 ? 2 : 1;
    for (let d = 0; d < disks; d++) {
      vdi++;
      vbd++;
      vdiRows.push(
        row(refOf(T.vdi, vdi), {
          name__label: `${name} ${d === 0 ? 'root' : 'data'}`,
          name__description: '',
          SR: refOf(T.sr, (vdi % 2) + 1),
          virtual_size: (d === 0 ? 20 : 100) * 1073741824,
          physical_utilisation: (d === 0 ? 6 : 30) * 1073741824,
          type: 'user',
          sharable: false,
          read_only: false,
          is_a_snapshot: false,
          snapshot_of: NULL,
          snapshot_time: '19700101T00:00:00Z',
          sm_config: map({ vdi_type: 'vhd' }),
          cbt_enabled: false,
          location: uuidOf(T.vdi, vdi),
          ...common,
        }),
      );
      vbdRows.push(
        row(refOf(T.vbd, vbd), {
          VM: refOf(T.vm, i),
          VDI: refOf(T.vdi, vdi),
          userdevice: String(d),
          device: running ? `xvd${'ab'[d]}` : '',
          type: 'Disk',
          mode: 'RW',
          empty: false,
          bootable: d === 0,
          currently_attached: running,
          qos__algorithm_type: '',
          qos__algorithm_params: '()',
          other_config: '()',
        }),
      );
    }
    vbd++;
    vbdRows.push(
      row(refOf(T.vbd, vbd), {
        VM: refOf(T.vm, i),
        VDI: NULL,
        userdevice: '3',
        device: running ? 'xvdd' : '',
        type: 'CD',
        mode: 'RO',
        empty: true,
        bootable: false,
        currently_attached: running,
        qos__algorithm_type: '',
        qos__algorithm_params: '()',
        other_config: '()',
      }),
    );
  };
  let i = 0;
  for (let h = 1; h <= hosts; h++)
    vm(++i, `Control domain on host: bench-host-${h}`, { state: 'Running', dom0: h, vcpus: 8, mib: 4096 });
  for (let t = 1; t <= 10; t++)
    vm(++i, `Template ${t}`, { state: 'Halted', template: true, vcpus: 1, mib: 1024 });
  const firstGuest = i + 1;
  for (let g = 1; g <= count; g++) {
    const state = g % 40 === 0 ? 'Suspended' : g % 25 === 0 ? 'Paused' : g % 10 === 0 ? 'Halted' : 'Running';
    vm(++i, `bench-vm-${String(g).padStart(4, '0')}`, {
      state,
      vcpus: 1 + (g % 4),
      mib: 512 * (1 + (g % 8)),
    });
  }
  vm(++i, 'bench-vm-0001 nightly', { state: 'Halted', snapshotOf: firstGuest, vcpus: 2, mib: 1024 });
  table('VM', vmRows);
  table('VM_metrics', vmMetricsRows);
  table('VM_guest_metrics', guestMetricsRows);
  table('VIF', vifRows);
  table('VDI', vdiRows);
  table('VBD', vbdRows);
  out.push('<table name="task"/>', '</database>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Workers: one client each, in its own process
// ---------------------------------------------------------------------------------------------------------

async function hvkitWorker(): Promise<(job: Job) => Promise<number>> {
  const { connect } = await import('@hvkit/xen-xapi');
  return async (job) => {
    const adapter = await connect({
      url: job.url,
      username: job.username,
      password: job.password,
      insecureHttp: true,
      transport: job.transport,
    });
    try {
      return (await adapter.inventory.listGuests()).length;
    } finally {
      await adapter.close();
    }
  };
}

async function xenApiWorker(): Promise<(job: Job) => Promise<number>> {
  const { Xapi } = await import('xen-api');
  return async (job) => {
    const xapi = new Xapi({
      url: job.url,
      auth: { user: job.username, password: job.password },
      transport: job.transport,
      watchEvents: false,
      allowUnauthorized: true,
    });
    // connect(): session.login_with_password, pool.get_all_records and system.listMethods.
    await xapi.connect();
    try {
      let vms: Record<string, Record<string, unknown>> = {};
      for (const method of job.methods) {
        const records = (await xapi.call(method)) as Record<string, Record<string, unknown>>;
        if (method === 'VM.get_all_records') vms = records;
      }
      return Object.values(vms).filter(
        (vm) => !vm.is_a_template && !vm.is_a_snapshot && !vm.is_control_domain,
      ).length;
    } finally {
      // session.logout (xen-api sends it without waiting for the reply).
      await xapi.disconnect();
    }
  };
}

async function worker(role: string): Promise<void> {
  const run = role === 'hvkit' ? await hvkitWorker() : await xenApiWorker();
  const send = (m: unknown) => process.send?.(m);
  process.on('message', async (message: { job?: Job; exit?: true }) => {
    if (message.exit) process.exit(0);
    const job = message.job as Job;
    try {
      const cpu = process.cpuUsage();
      const started = performance.now();
      const guests = await run(job);
      const ms = performance.now() - started;
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      send({ ms, cpuMs, guests, maxRss: process.resourceUsage().maxRSS * 1024 } satisfies RunResult);
    } catch (error) {
      send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  send({ rss: process.memoryUsage().rss } satisfies Ready);
}

// ---------------------------------------------------------------------------------------------------------
// The parent: simulator, workers, runs, report
// ---------------------------------------------------------------------------------------------------------

interface Worker {
  name: string;
  child: ChildProcess;
  baseRss: number;
  run(job: Job): Promise<RunResult>;
}

function startWorker(role: 'hvkit' | 'xen-api'): Promise<Worker> {
  // fork() reuses this process's Node options (--conditions, --import tsx).
  const child = fork(fileURLToPath(import.meta.url), ['--worker', role], { stdio: 'inherit' });
  let pending: { resolve(m: Record<string, unknown>): void; reject(e: Error): void } | undefined;
  child.on('message', (m: Record<string, unknown>) => {
    const p = pending;
    pending = undefined;
    p?.resolve(m);
  });
  child.on('exit', (code) => pending?.reject(new Error(`${role} worker exited (${code})`)));
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      pending = { resolve, reject };
    });
  return next().then((ready) => ({
    name: role,
    child,
    baseRss: Number(ready.rss),
    async run(job) {
      const answer = next();
      child.send({ job });
      const m = await answer;
      if (typeof m.error === 'string') throw new Error(`${role}: ${m.error}`);
      return m as unknown as RunResult;
    },
  }));
}

function stats(xs: number[]): { min: number; median: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { min: s[0] as number, median };
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1000);
  const runs = Number(process.argv[3] ?? 9);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(runs) || runs < 1)
    throw new Error('usage: xen-inventory.ts [COUNT>=1] [RUNS>=1]');
  const { startXapiSimulator } = await import('@hvkit/xen-xapi/simulator');
  const { connect } = await import('@hvkit/xen-xapi');

  let t0 = performance.now();
  const dbText = generatePoolDb(count);
  const genMs = performance.now() - t0;
  t0 = performance.now();
  const sim = await startXapiSimulator({ db: dbText });
  console.log(
    `pool database: ${count} guests, ${(dbText.length / 1048576).toFixed(1)} MiB of /pool/xmldbdump ` +
      `(generated in ${genMs.toFixed(0)} ms, loaded in ${(performance.now() - t0).toFixed(0)} ms)`,
  );
  const workers: Worker[] = [];
  try {
    // The calls hvkit makes, seen through a fetch that notes each JSON-RPC method.
    const calls: string[] = [];
    const probe = await connect({
      url: sim.url,
      username: sim.username,
      password: sim.password,
      ...sim.connectOptions,
      transport: 'json-rpc',
      fetch: (input, init) => {
        calls.push(String(JSON.parse(String(init?.body)).method));
        return fetch(input, init);
      },
    });
    const connectCalls = calls.splice(0);
    await probe.inventory.listGuests();
    const methods = calls.splice(0);
    await probe.close();
    if (!methods.every((m) => m.endsWith('.get_all_records')))
      throw new Error(`listGuests made calls other than get_all_records: ${methods.join(', ')}`);
    console.log(`hvkit connect: login, ${connectCalls.slice(1).join(', ')}; close: ${calls.join(', ')}`);
    console.log(`listGuests (both clients make these): ${methods.join(', ')}`);
    console.log(
      'xen-api connect: login, pool.get_all_records, system.listMethods; disconnect: session.logout (not awaited)',
    );

    workers.push(await startWorker('hvkit'), await startWorker('xen-api'));
    const [hv, xo] = workers as [Worker, Worker];
    for (const transport of ['json-rpc', 'xml-rpc'] as const) {
      const job: Job = { url: sim.url, username: sim.username, password: sim.password, transport, methods };
      const times: Record<string, number[]> = { hvkit: [], 'xen-api': [] };
      const clientCpu: Record<string, number[]> = { hvkit: [], 'xen-api': [] };
      const simCpu: Record<string, number[]> = { hvkit: [], 'xen-api': [] };
      const runOne = async (w: Worker, counted: boolean) => {
        const cpu = process.cpuUsage();
        const r = await w.run(job);
        const used = process.cpuUsage(cpu);
        if (r.guests !== count)
          throw new Error(`${w.name} saw ${r.guests} guests over ${transport}, not ${count}`);
        if (counted) {
          times[w.name]?.push(r.ms);
          clientCpu[w.name]?.push(r.cpuMs);
          simCpu[w.name]?.push((used.user + used.system) / 1000);
        }
        return r;
      };
      // One warm-up each (JIT, the simulator's first encodings), not counted.
      await runOne(hv, false);
      await runOne(xo, false);
      const rss: Record<string, number> = {};
      for (let i = 0; i < runs; i++) {
        // Alternate which side goes first, so neither always follows the other's garbage.
        const order = i % 2 === 0 ? [hv, xo] : [xo, hv];
        for (const w of order) rss[w.name] = (await runOne(w, true)).maxRss;
      }
      const h = stats(times.hvkit as number[]);
      const x = stats(times['xen-api'] as number[]);
      const fmt = (n: number) => n.toFixed(0);
      console.log(
        `\n${transport}: ${runs} runs per side, alternating; load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
      );
      console.log(
        `  hvkit   connect + listGuests + close:        min ${fmt(h.min)} ms, median ${fmt(h.median)} ms  [${(times.hvkit as number[]).map(fmt).join(' ')}]`,
      );
      console.log(
        `  xen-api connect + ${methods.length} get_all_records + disconnect: min ${fmt(x.min)} ms, median ${fmt(x.median)} ms  [${(times['xen-api'] as number[]).map(fmt).join(' ')}]`,
      );
      const hc = stats(clientCpu.hvkit as number[]);
      const xc = stats(clientCpu['xen-api'] as number[]);
      console.log(
        `  client CPU per run (median): hvkit ${fmt(hc.median)} ms, xen-api ${fmt(xc.median)} ms (ratio ${(hc.median / xc.median).toFixed(2)})`,
      );
      console.log(
        `  simulator CPU per run (median): ${fmt(stats(simCpu.hvkit as number[]).median)} ms serving hvkit, ${fmt(stats(simCpu['xen-api'] as number[]).median)} ms serving xen-api`,
      );
      console.log(
        `  peak RSS so far: hvkit ${mib(rss.hvkit as number)} (${mib(hv.baseRss)} after loading), xen-api ${mib(rss['xen-api'] as number)} (${mib(xo.baseRss)} after loading)`,
      );
      console.log(`  ratio (hvkit / xen-api, medians): ${(h.median / x.median).toFixed(2)}  (target <= 1.0)`);
    }
  } finally {
    for (const w of workers) if (w.child.connected) w.child.send({ exit: true });
    await sim.close();
  }
}

// Run as a script (the parent, or a worker it forked); imported, it only provides generatePoolDb.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf('--worker');
  if (at >= 0) await worker(String(process.argv[at + 1]));
  else await main();
}
