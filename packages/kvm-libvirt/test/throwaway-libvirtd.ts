/**
 * Test helper: a private libvirtd for tests that kill, stop or reconfigure the daemon without disturbing
 * the shared peer. It runs in the foreground of a child process with its own config, socket directory,
 * pid file and log under a temporary directory, and with `LIBVIRT_DRIVER_DIR` pointing at an empty
 * directory so that no hypervisor driver (qemu, network, storage...) loads: it serves only the built-in
 * test driver (`test:///default`), optionally on TCP and TLS loopback ports.
 *
 * A started daemon does not outlive the process that started it: {@link ThrowawayLibvirtd.dispose} stops
 * it, and so do a process `exit` (also without dispose), SIGTERM (how vitest ends its workers), SIGINT and
 * SIGHUP, and the loss of the IPC channel to the parent (a vitest worker whose main process was ended goes
 * on running its file), which also remove its directory; where `setpriv` exists the daemon runs with a
 * parent-death signal, so that it is killed even when the process that started it is killed with SIGKILL
 * (its directory is left then). Start one in `beforeAll` or in a test, never while a file is collected: the `describe`
 * body of a skipped suite runs, its hooks do not.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopWithProcess } from '../../core/src/__test-utils__/process-end';

/** TLS files of a throwaway PKI. */
export interface TestPki {
  dir: string;
  /** Directory usable as `?pkipath=`: cacert.pem, clientcert.pem, clientkey.pem. */
  clientDir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A client directory whose certificate is signed by another CA. */
  untrustedClientDir: string;
}

/** Options of {@link ThrowawayLibvirtd.start}. */
export interface ThrowawayOptions {
  /** Listen on this TCP loopback port without authentication (`listen_tcp`). */
  tcpPort?: number;
  /** Listen on this TLS loopback port with these files (`listen_tls`). */
  tls?: { port: number; pki: TestPki };
  /** The daemon's own keepalive interval in seconds (default 5). */
  keepaliveInterval?: number;
  /** `auth_unix_rw` (default `none`). */
  authUnixRw?: 'none' | 'sasl' | 'polkit';
  /** Let every user reach the read-write socket (for tests running a client as another user). */
  openToAllUsers?: boolean;
}

/** True when the libvirtd binary is present (the fault tests need it). */
export function libvirtdAvailable(): boolean {
  try {
    execFileSync('libvirtd', ['--version'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

let pdeathsig: boolean | undefined;
/** True when `setpriv --pdeathsig` works here (util-linux 2.33 and later, Linux only). */
function setprivPdeathsig(): boolean {
  if (pdeathsig === undefined) {
    try {
      execFileSync('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
      pdeathsig = true;
    } catch {
      pdeathsig = false;
    }
  }
  return pdeathsig;
}

const CA_CONFIG = `[req]
distinguished_name=dn
prompt=no
[dn]
CN=hvkit throwaway CA
[v3_ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[v3_server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
[v3_client]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
`;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore', timeout: 30_000 });
}

/** Creates a CA, a server certificate for 127.0.0.1 and client certificates with `openssl`. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'hvkit-pki-'));
  writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);
  const ca = (name: string) => {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}key.pem`,
        '-out',
        `${name}cert.pem`,
      ].concat(['-days', '2', '-config', 'ca.cnf', '-extensions', 'v3_ca']),
      dir,
    );
  };
  const leaf = (name: string, cn: string, caName: string, ext: string) => {
    openssl(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}key.pem`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${cn}`,
      ],
      dir,
    );
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}cert.pem`, '-CAkey', `${caName}key.pem`].concat(
        [
          '-CAcreateserial',
          '-out',
          `${name}cert.pem`,
          '-days',
          '2',
          '-extfile',
          'ca.cnf',
          '-extensions',
          ext,
        ],
      ),
      dir,
    );
  };
  ca('ca');
  ca('otherca');
  leaf('server', '127.0.0.1', 'ca', 'v3_server');
  leaf('client', 'hvkit-client', 'ca', 'v3_client');
  leaf('evil', 'hvkit-untrusted', 'otherca', 'v3_client');
  const clientDir = join(dir, 'client');
  const untrustedClientDir = join(dir, 'untrusted');
  mkdirSync(clientDir);
  mkdirSync(untrustedClientDir);
  const copy = (from: string, to: string) => execFileSync('cp', [join(dir, from), to]);
  copy('cacert.pem', join(clientDir, 'cacert.pem'));
  copy('clientcert.pem', join(clientDir, 'clientcert.pem'));
  copy('clientkey.pem', join(clientDir, 'clientkey.pem'));
  copy('cacert.pem', join(untrustedClientDir, 'cacert.pem'));
  copy('evilcert.pem', join(untrustedClientDir, 'clientcert.pem'));
  copy('evilkey.pem', join(untrustedClientDir, 'clientkey.pem'));
  return {
    dir,
    clientDir,
    untrustedClientDir,
    caCert: join(dir, 'cacert.pem'),
    serverCert: join(dir, 'servercert.pem'),
    serverKey: join(dir, 'serverkey.pem'),
  };
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A private libvirtd serving the test driver. */
export class ThrowawayLibvirtd {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Disposed of, or stopped by the process hooks: it may not start again. */
  private ended = false;
  /** Removes the process hooks' stop of this daemon ({@link stopWithProcess}). */
  private unhook: (() => void) | undefined;

  private constructor(
    /** Its temporary directory. */
    readonly dir: string,
    private readonly options: ThrowawayOptions,
  ) {}

  /** The read-write unix socket. */
  get socketPath(): string {
    return join(this.dir, 'sock', 'libvirt-sock');
  }

  /** `test+unix:///default?socket=<its socket>`. */
  get uri(): string {
    return `test+unix:///default?socket=${this.socketPath}`;
  }

  /** The daemon's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Writes the config and starts the daemon; resolves when its socket accepts connections. */
  static async start(options: ThrowawayOptions = {}): Promise<ThrowawayLibvirtd> {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-libvirtd-'));
    mkdirSync(join(dir, 'sock'));
    mkdirSync(join(dir, 'no-drivers'));
    if (options.openToAllUsers) {
      chmodSync(dir, 0o755);
      chmodSync(join(dir, 'sock'), 0o755);
    }
    const lines = [
      `unix_sock_dir = "${join(dir, 'sock')}"`,
      `unix_sock_rw_perms = "${options.openToAllUsers ? '0777' : '0700'}"`,
      `auth_unix_rw = "${options.authUnixRw ?? 'none'}"`,
      'auth_unix_ro = "none"',
      `listen_tcp = ${options.tcpPort ? 1 : 0}`,
      `listen_tls = ${options.tls ? 1 : 0}`,
      'listen_addr = "127.0.0.1"',
      `log_outputs = "3:file:${join(dir, 'libvirtd.log')}"`,
      `keepalive_interval = ${options.keepaliveInterval ?? 5}`,
      'keepalive_count = 5',
    ];
    if (options.tcpPort) lines.push(`tcp_port = "${options.tcpPort}"`, 'auth_tcp = "none"');
    if (options.tls) {
      lines.push(
        `tls_port = "${options.tls.port}"`,
        'auth_tls = "none"',
        `key_file = "${options.tls.pki.serverKey}"`,
        `cert_file = "${options.tls.pki.serverCert}"`,
        `ca_file = "${options.tls.pki.caCert}"`,
      );
    }
    writeFileSync(join(dir, 'libvirtd.conf'), `${lines.join('\n')}\n`);
    const daemon = new ThrowawayLibvirtd(dir, options);
    await daemon.restart();
    return daemon;
  }

  /** Starts the daemon again (after a kill); resolves when it accepts connections (10 s at most). */
  async restart(): Promise<void> {
    if (this.ended) throw new Error(`throwaway libvirtd in ${this.dir} was stopped for good`);
    if (this.pid !== undefined) return;
    const args = ['-f', join(this.dir, 'libvirtd.conf'), '-p', join(this.dir, 'libvirtd.pid')];
    if (this.options.tcpPort || this.options.tls) args.unshift('--listen');
    // setpriv sets the parent-death signal and execs libvirtd (same pid): the daemon is SIGKILLed when the
    // thread that started it ends, even by SIGKILL. Without setpriv the exit and signal hooks remain.
    const [command, argv] = setprivPdeathsig()
      ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', 'libvirtd', ...args]]
      : ['libvirtd', args];
    const child = spawn(command, argv, {
      cwd: this.dir,
      env: { ...process.env, LIBVIRT_DRIVER_DIR: join(this.dir, 'no-drivers') },
      stdio: 'ignore',
    });
    this.child = child;
    this.unhook ??= stopWithProcess(() => this.stopNow());
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`libvirtd exited with ${child.exitCode}; see ${this.dir}/libvirtd.log`);
      if (await canConnect(this.socketPath)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`libvirtd did not come up in 10 s; see ${this.dir}/libvirtd.log`);
  }

  /** Sends a signal to the daemon (SIGKILL, SIGSTOP, SIGCONT...). */
  signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) throw new Error('throwaway libvirtd is not running');
    process.kill(pid, signal);
  }

  /** Kills the daemon with SIGKILL and waits for it to exit. */
  async kill(): Promise<void> {
    if (this.pid === undefined) return;
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Stops the daemon (SIGCONT first, in case it is stopped, then SIGKILL) and removes its directory. */
  async dispose(): Promise<void> {
    if (this.pid !== undefined) {
      try {
        this.signal('SIGCONT');
      } catch {
        // already gone
      }
      await this.kill();
    }
    this.forget();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Synchronous stop for the process's exit and signal hooks: SIGCONT and SIGKILL to the daemon (it dies
   * at once, not waited for) and removal of its directory.
   * @internal
   */
  stopNow(): void {
    const pid = this.pid;
    if (pid !== undefined) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    }
    this.forget();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** No longer stopped by the process hooks; they go with the last daemon. */
  private forget(): void {
    this.ended = true;
    this.unhook?.();
    this.unhook = undefined;
  }
}
