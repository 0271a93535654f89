import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvkitError } from '@hvkit/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTempDir } from '../../../core/src/__test-utils__';
import { localSocketPath, parseLibvirtUri, redactLibvirtUri, sshRemoteArgv } from './uri';

function expectInvalid(uri: string): void {
  let caught: unknown;
  try {
    parseLibvirtUri(uri);
  } catch (error) {
    caught = error;
  }
  expect(HvkitError.isInstance(caught, 'INVALID_ARGUMENT'), `${uri}: ${String(caught)}`).toBe(true);
}

describe('parseLibvirtUri', () => {
  it.each([
    ['qemu:///system', 'unix', 'qemu:///system'],
    ['qemu:///session', 'unix', 'qemu:///session'],
    ['test:///default', 'unix', 'test:///default'],
    ['test+unix:///default', 'unix', 'test:///default'],
    ['test+unix:///default?socket=/tmp/x/libvirt-sock', 'unix', 'test:///default'],
    [
      'test+unix:///work/main/.peers/libvirtd/test-node.xml',
      'unix',
      'test:///work/main/.peers/libvirtd/test-node.xml',
    ],
    ['qemu+ssh://root@kvm1.example.net/system', 'ssh', 'qemu:///system'],
    [
      'qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k&known_hosts=/kh&proxy=native',
      'ssh',
      'qemu:///system',
    ],
    ['qemu+libssh2://u@h/system?sshauth=privkey', 'libssh2', 'qemu:///system'],
    ['qemu+tcp://10.0.0.1/system', 'tcp', 'qemu:///system'],
    ['qemu+tls://host.example:16514/system?pkipath=/etc/pki/x&no_verify=1', 'tls', 'qemu:///system'],
    ['qemu://host.example/system', 'tls', 'qemu:///system'],
    ['qemu:///system?foo=bar&mode=legacy', 'unix', 'qemu:///system?foo=bar'],
    ['qemu+ssh://h/system?name=qemu:///session', 'ssh', 'qemu:///session'],
    ['qemu+tcp://[::1]:16509/system', 'tcp', 'qemu:///system'],
  ])('%s -> %s, opens %s', (uri, transport, openUri) => {
    const u = parseLibvirtUri(uri);
    expect(u.transport).toBe(transport);
    expect(u.openUri).toBe(openUri);
  });

  it('reads user, host, port and the remote-driver parameters', () => {
    const u = parseLibvirtUri(
      'qemu+ssh://root@127.0.0.1:45052/system?keyfile=/root/key&known_hosts=/root/kh&netcat=/bin/nc&no_verify=0',
    );
    expect(u).toMatchObject({
      driver: 'qemu',
      user: 'root',
      host: '127.0.0.1',
      port: 45052,
      path: '/system',
      keyfile: '/root/key',
      knownHosts: '/root/kh',
      netcat: '/bin/nc',
      noVerify: false,
      mode: 'auto',
      proxy: 'auto',
      explicitTransport: true,
    });
    expect(parseLibvirtUri('qemu+tcp://[::1]:1/system').host).toBe('::1');
    expect(parseLibvirtUri('remote:///').openUri).toBeNull();
  });

  it.each([
    'nonsense',
    'qemu:/system',
    'qemu+bogus:///system',
    'qemu+ssh:///system',
    'qemu+tcp:///system',
    'qemu+unix://host/system',
    'qemu:///system?mode=fast',
    'qemu+ssh://h/system?proxy=telnet',
    'qemu+tls://h/system?no_verify=yes',
    'qemu+tcp://h:99999/system',
    'qemu+tcp://h/sys%zztem',
  ])('refuses %s with INVALID_ARGUMENT', (uri) => {
    expectInvalid(uri);
  });

  it('rejects a non-string with TypeError', () => {
    expect(() => parseLibvirtUri(5 as unknown as string)).toThrow(TypeError);
  });

  it('redacts secret-looking parameters for display', () => {
    expect(redactLibvirtUri('qemu+ssh://h/system?password=hunter2&x=1')).toBe(
      'qemu+ssh://h/system?password=***&x=1',
    );
  });
});

describe('localSocketPath', () => {
  const none = () => false;
  const all = () => true;

  it('uses ?socket= as given', () => {
    expect(localSocketPath(parseLibvirtUri('test+unix:///default?socket=/tmp/s'))).toBe('/tmp/s');
  });

  it('picks the monolithic socket, or the modular one in auto mode when it exists', () => {
    const u = parseLibvirtUri('qemu:///system');
    expect(localSocketPath(u, { exists: none })).toBe('/var/run/libvirt/libvirt-sock');
    expect(localSocketPath(u, { exists: all })).toBe('/var/run/libvirt/virtqemud-sock');
    expect(localSocketPath(u, { exists: all, readOnly: true })).toBe('/var/run/libvirt/virtqemud-sock-ro');
    expect(localSocketPath(u, { exists: none, readOnly: true })).toBe('/var/run/libvirt/libvirt-sock-ro');
    expect(localSocketPath(parseLibvirtUri('qemu:///system?mode=legacy'), { exists: all })).toBe(
      '/var/run/libvirt/libvirt-sock',
    );
    expect(localSocketPath(parseLibvirtUri('qemu:///system?mode=direct'), { exists: none })).toBe(
      '/var/run/libvirt/virtqemud-sock',
    );
    expect(localSocketPath(parseLibvirtUri('libxl:///system?mode=direct'))).toBe(
      '/var/run/libvirt/virtxend-sock',
    );
  });

  it('puts session sockets in the runtime directory, else ~/.cache/libvirt', () => {
    const u = parseLibvirtUri('qemu:///session');
    expect(localSocketPath(u, { runtimeDir: '/run/user/1000', exists: none })).toBe(
      '/run/user/1000/libvirt/libvirt-sock',
    );
    expect(localSocketPath(u, { runtimeDir: '/run/user/1000', exists: all })).toBe(
      '/run/user/1000/libvirt/virtqemud-sock',
    );
    const saved = process.env.XDG_RUNTIME_DIR;
    delete process.env.XDG_RUNTIME_DIR;
    try {
      expect(localSocketPath(u, { home: '/home/ann', exists: none })).toBe(
        '/home/ann/.cache/libvirt/libvirt-sock',
      );
    } finally {
      if (saved !== undefined) process.env.XDG_RUNTIME_DIR = saved;
    }
  });
});

describe('sshRemoteArgv', () => {
  // Made in beforeAll, not while the file is collected (a filtered-out block runs no hook to remove it).
  const bin = testTempDir('hvkit-sshcmd-');
  beforeAll(() => {
    for (const tool of ['sh', 'grep']) {
      symlinkSync(
        execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(),
        join(bin(), tool),
      );
    }
  });

  /** Runs the generated `sh -c` script with fake helper/netcat programs that print their arguments. */
  function run(argv: string[], programs: string[]): string {
    for (const p of ['virt-ssh-helper', 'nc', 'ncat']) rmSync(join(bin(), p), { force: true });
    for (const p of programs) {
      writeFileSync(join(bin(), p), `#!/bin/sh\necho "${p}" "$@"\n`);
      chmodSync(join(bin(), p), 0o755);
    }
    // PATH holds only the fakes plus sh and grep, so the real helpers on this machine stay invisible.
    return execFileSync(argv[0] as string, argv.slice(1), {
      env: { PATH: bin(), HOME: '/root' },
      encoding: 'utf8',
    }).trim();
  }

  it('auto mode runs virt-ssh-helper with the driver URI when it exists', () => {
    const argv = sshRemoteArgv(parseLibvirtUri('qemu+ssh://root@h/system'));
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(run(argv, ['virt-ssh-helper', 'nc'])).toBe('virt-ssh-helper qemu:///system');
  });

  it('auto mode falls back to netcat on the system socket', () => {
    const argv = sshRemoteArgv(parseLibvirtUri('qemu+ssh://root@h/system'));
    expect(run(argv, ['nc'])).toBe('nc -U /var/run/libvirt/libvirt-sock');
  });

  it('read-only uses virt-ssh-helper -r and the -ro socket', () => {
    const argv = sshRemoteArgv(parseLibvirtUri('qemu+ssh://root@h/system'), { readOnly: true });
    expect(run(argv, ['virt-ssh-helper'])).toBe('virt-ssh-helper -r qemu:///system');
    expect(run(argv, ['nc'])).toBe('nc -U /var/run/libvirt/libvirt-sock-ro');
  });

  it('proxy=native runs only the helper, proxy=netcat / ?socket= / ?netcat= only netcat', () => {
    expect(
      run(sshRemoteArgv(parseLibvirtUri('qemu+ssh://h/system?proxy=native')), ['virt-ssh-helper', 'nc']),
    ).toBe('virt-ssh-helper qemu:///system');
    expect(
      run(sshRemoteArgv(parseLibvirtUri('qemu+ssh://h/system?proxy=netcat')), ['virt-ssh-helper', 'nc']),
    ).toBe('nc -U /var/run/libvirt/libvirt-sock');
    expect(
      run(sshRemoteArgv(parseLibvirtUri("qemu+ssh://h/system?socket=/tmp/a b'c")), ['virt-ssh-helper', 'nc']),
    ).toBe("nc -U /tmp/a b'c");
    expect(
      run(sshRemoteArgv(parseLibvirtUri('qemu+ssh://h/system?netcat=ncat')), ['virt-ssh-helper', 'ncat']),
    ).toBe('ncat -U /var/run/libvirt/libvirt-sock');
  });

  it('passes the test driver node XML URI to the helper, and the session socket path to netcat', () => {
    expect(run(sshRemoteArgv(parseLibvirtUri('test+ssh://h/tmp/node.xml')), ['virt-ssh-helper'])).toBe(
      'virt-ssh-helper test:///tmp/node.xml',
    );
    expect(run(sshRemoteArgv(parseLibvirtUri('qemu+ssh://h/session?proxy=netcat')), ['nc'])).toBe(
      'nc -U /root/.cache/libvirt/libvirt-sock',
    );
  });

  it('refuses mode=direct like virsh', () => {
    let caught: unknown;
    try {
      sshRemoteArgv(parseLibvirtUri('qemu+ssh://h/system?mode=direct'));
    } catch (error) {
      caught = error;
    }
    expect(HvkitError.isInstance(caught, 'INVALID_ARGUMENT')).toBe(true);
  });
});
