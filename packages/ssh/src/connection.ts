/**
 * One SSH connection (ssh2 `Client`): connecting with verified host keys, channel slots, the shared
 * SFTP session, and failing every pending call with CONNECTION_LOST when the connection goes away.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import {
  checkOptionKeys,
  checkSignal,
  type HvkitError,
  hvkitError,
  type Logger,
  type OptionKeysOf,
} from '@hvkit/core';
import ssh2, {
  type AnyAuthMethod,
  type ClientChannel,
  type ConnectConfig,
  type ParsedKey,
  type SFTPWrapper,
  type Client as Ssh2Client,
} from 'ssh2';
import { checkTimeout, Deadline, errnoCode, messageOf, recordExit, requireString } from './internal';
import {
  checkHostKey,
  fingerprintOf,
  type KnownHosts,
  keyTypeOf,
  knownKeyTypes,
  normalizeFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
} from './known-hosts';

/**
 * How to log in. Give one or more methods; they are tried in the order public key, agent, password
 * (the password also answers a single hidden keyboard-interactive prompt).
 */
export interface SshAuth {
  /** A private key: its text (OpenSSH or PEM), its bytes, or the path of a key file. */
  privateKey?: string | Buffer;
  /** Passphrase of an encrypted `privateKey`. */
  passphrase?: string | Buffer;
  /** An ssh-agent socket path, or `true` for `$SSH_AUTH_SOCK`. */
  agent?: string | true;
  /** Password. */
  password?: string;
}

/**
 * How the server's host key is verified. Verification is required: either known_hosts entries, a pinned
 * SHA256 fingerprint, or the explicit opt-out `insecureAcceptAnyHostKey: true`.
 */
export type SshHostKeyPolicy =
  | {
      /** known_hosts file(s) in OpenSSH format (missing files count as empty). */
      knownHostsFile: string | readonly string[];
      /** Look the host up under this name instead of `host` (OpenSSH `HostKeyAlias`). */
      hostKeyAlias?: string;
      /** See {@link SshKnownHostsOptions.insecureAcceptUnknownHosts}. */
      insecureAcceptUnknownHosts?: boolean;
    }
  | {
      /** known_hosts content in OpenSSH format. */
      knownHosts: string;
      /** Look the host up under this name instead of `host` (OpenSSH `HostKeyAlias`). */
      hostKeyAlias?: string;
      /** See {@link SshKnownHostsOptions.insecureAcceptUnknownHosts}. */
      insecureAcceptUnknownHosts?: boolean;
    }
  | {
      /** Accepted fingerprint(s), `SHA256:<base64>` as `ssh-keygen -l` prints them. */
      fingerprint: string | readonly string[];
    }
  | {
      /** Accept any host key. Exposes the connection to a man in the middle; for throw-away test hosts only. */
      insecureAcceptAnyHostKey: true;
    };

/** Options shared by the known_hosts policies of {@link SshHostKeyPolicy}. */
export interface SshKnownHostsOptions {
  /**
   * Accept a host that has **no** key in the known_hosts entries (OpenSSH's `StrictHostKeyChecking=no`
   * without writing the key, libvirt's `no_verify=1` for SSH). A host that is listed must still present a
   * listed key: a changed or revoked key is refused as always. The first connection to an unlisted host is
   * open to a man in the middle.
   */
  insecureAcceptUnknownHosts?: boolean;
}

/** The known_hosts files read when no `hostKey` policy is given: `~/.ssh/known_hosts`, `/etc/ssh/ssh_known_hosts`. */
export function defaultKnownHostsFiles(): string[] {
  return [`${homedir()}/.ssh/known_hosts`, '/etc/ssh/ssh_known_hosts'];
}

/** Options of {@link connectSsh}. */
export interface SshConnectOptions {
  /** Host name or IP address. */
  host: string;
  /** TCP port (default 22). */
  port?: number;
  /** User to log in as. */
  username: string;
  /** Credentials. */
  auth: SshAuth;
  /**
   * Host key verification (default: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`). A changed,
   * revoked or unknown key refuses the connection with AUTH_FAILED and backendCode `HOST_KEY_MISMATCH`,
   * `HOST_KEY_REVOKED` or `HOST_KEY_UNKNOWN`.
   */
  hostKey?: SshHostKeyPolicy;
  /** Milliseconds allowed for TCP connect, handshake and authentication (default 20000). */
  readyTimeout?: number;
  /** Milliseconds between keepalive probes (default 15000; 0 disables). */
  keepaliveInterval?: number;
  /** Unanswered keepalives before the connection counts as lost (default 3). */
  keepaliveCountMax?: number;
  /**
   * Channels open at once (exec, SFTP, dialed streams); more wait for a free slot. Keep it at or below
   * the server's `MaxSessions` (OpenSSH default 10). Default 10.
   */
  maxChannels?: number;
  /** Timeout of `exec.exec()` calls that give no `timeoutMs` (default 600000). `spawn()` has none by default. */
  execTimeoutMs?: number;
  /** Timeout of one SFTP request, and of opening a channel for `dial()`, when no `timeoutMs` is given (default 60000). */
  sftpTimeoutMs?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Debug logging of connection events (no secrets are logged). */
  logger?: Logger;
}

/**
 * The secrets among SSH credentials (password, key passphrase), as `redact()` and `redactError()` of
 * `@hvkit/core` take them. Whatever is not a non-empty string or Buffer is left out.
 */
export function sshAuthSecrets(auth: SshAuth | undefined): string[] {
  if (typeof auth !== 'object' || auth === null) return [];
  return [auth.password, auth.passphrase].flatMap((secret) =>
    typeof secret === 'string' && secret !== ''
      ? [secret]
      : Buffer.isBuffer(secret) && secret.length > 0
        ? [secret.toString('utf8')]
        : [],
  );
}

type KeysOfUnion<T> = T extends unknown ? keyof T : never;

/**
 * The keys {@link SshConnectOptions} accepts, nested levels included (`auth`, every form of `hostKey`), as
 * `checkOptionKeys()` of `@hvkit/core` takes them; `connectSsh()` refuses any other key.
 */
export const SSH_CONNECT_OPTION_KEYS = {
  host: true,
  port: true,
  username: true,
  auth: { privateKey: true, passphrase: true, agent: true, password: true } satisfies OptionKeysOf<SshAuth>,
  hostKey: {
    knownHostsFile: true,
    knownHosts: true,
    hostKeyAlias: true,
    fingerprint: true,
    insecureAcceptAnyHostKey: true,
    insecureAcceptUnknownHosts: true,
  } satisfies Record<KeysOfUnion<SshHostKeyPolicy>, true>,
  readyTimeout: true,
  keepaliveInterval: true,
  keepaliveCountMax: true,
  maxChannels: true,
  execTimeoutMs: true,
  sftpTimeoutMs: true,
  signal: true,
  logger: true,
} as const satisfies OptionKeysOf<SshConnectOptions>;

/** Facts about the verified server key. */
export interface SshHostKeyInfo {
  /** Key type, e.g. `ssh-ed25519`. */
  type: string;
  /** `SHA256:<base64>`. */
  fingerprint: string;
}

type HostKeyFailure = { code: string; message: string };

class ChannelSlots {
  private used = 0;
  private readonly waiters: { resolve: (release: () => void) => void; reject: (e: HvkitError) => void }[] =
    [];
  constructor(private readonly max: number) {}

  acquire(deadline: Deadline): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (deadline.error) return reject(deadline.error);
      if (this.used < this.max) {
        this.used++;
        return resolve(this.releaser());
      }
      const waiter = {
        resolve: (release: () => void) => {
          off();
          resolve(release);
        },
        reject: (e: HvkitError) => {
          off();
          reject(e);
        },
      };
      this.waiters.push(waiter);
      const off = deadline.onFire((e) => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(e);
      });
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next.resolve(this.releaser());
      else this.used--;
    };
  }

  failAll(error: HvkitError): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }
}

function loadPrivateKey(auth: SshAuth): ParsedKey | undefined {
  if (auth.privateKey === undefined) return undefined;
  let material: string | Buffer = auth.privateKey;
  if (typeof material === 'string' && !material.includes('-----BEGIN') && !material.includes('\n')) {
    try {
      material = readFileSync(material);
    } catch (e) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `cannot read private key file ${auth.privateKey}: ${errnoCode(e)}`,
        {
          operation: 'ssh.connect',
          cause: e,
          backendCode: errnoCode(e),
        },
      );
    }
  } else if (typeof material !== 'string' && !Buffer.isBuffer(material)) {
    throw new TypeError('auth.privateKey must be a string or a Buffer');
  }
  const parsed = ssh2.utils.parseKey(material, auth.passphrase);
  if (parsed instanceof Error) {
    const passphraseProblem = /passphrase|decrypt|bad decrypt|encrypted/i.test(parsed.message);
    throw hvkitError(
      passphraseProblem ? 'AUTH_FAILED' : 'INVALID_ARGUMENT',
      passphraseProblem
        ? `cannot decrypt the private key (${auth.passphrase === undefined ? 'no passphrase given' : 'wrong passphrase?'})`
        : `cannot parse the private key: ${parsed.message}`,
      { operation: 'ssh.connect', backendMessage: parsed.message, retryable: false },
    );
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key?.isPrivateKey() !== true) {
    throw hvkitError('INVALID_ARGUMENT', 'auth.privateKey does not contain a private key', {
      operation: 'ssh.connect',
    });
  }
  return key;
}

function readKnownHosts(files: readonly string[]): { known: KnownHosts; read: string[] } {
  const known: KnownHosts = { entries: [], skipped: [] };
  const read: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue;
      throw hvkitError(
        'INVALID_ARGUMENT',
        `cannot read known_hosts file ${file}: ${errnoCode(e) ?? messageOf(e)}`,
        {
          operation: 'ssh.connect',
          cause: e,
        },
      );
    }
    const parsed = parseKnownHosts(text, file);
    known.entries.push(...parsed.entries);
    known.skipped.push(...parsed.skipped);
    read.push(file);
  }
  return { known, read };
}

/** The host key check a connection runs, built from the policy. */
interface HostKeyVerifier {
  /** Host key algorithms to offer, when the policy knows which key types to expect. */
  algorithms?: string[];
  /** Returns a failure, or undefined to accept. */
  verify(key: Buffer): HostKeyFailure | undefined;
}

function buildVerifier(options: SshConnectOptions, port: number): HostKeyVerifier {
  const policy: SshHostKeyPolicy = options.hostKey ?? { knownHostsFile: defaultKnownHostsFiles() };
  if (typeof policy !== 'object' || policy === null) throw new TypeError('hostKey must be an object');
  const where = `${options.host}:${port}`;
  if ('insecureAcceptAnyHostKey' in policy) {
    if (policy.insecureAcceptAnyHostKey !== true) {
      throw new TypeError('hostKey.insecureAcceptAnyHostKey must be true when given');
    }
    return { verify: () => undefined };
  }
  if ('fingerprint' in policy) {
    const list = typeof policy.fingerprint === 'string' ? [policy.fingerprint] : policy.fingerprint;
    if (!Array.isArray(list) || list.length === 0) {
      throw new TypeError('hostKey.fingerprint must be a fingerprint string or a non-empty array of them');
    }
    const pinned = list.map((f) => {
      const n = typeof f === 'string' ? normalizeFingerprint(f) : undefined;
      if (!n) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `hostKey.fingerprint ${JSON.stringify(f)} is not a SHA256:<base64> fingerprint`,
          {
            operation: 'ssh.connect',
          },
        );
      }
      return n;
    });
    return {
      verify(key) {
        const offered = fingerprintOf(key);
        if (pinned.includes(offered)) return undefined;
        return {
          code: 'HOST_KEY_MISMATCH',
          message: `host key of ${where} does not match the pinned fingerprint: the server offered ${keyTypeOf(key) ?? 'a'} key ${offered}, expected ${pinned.join(' or ')}`,
        };
      },
    };
  }
  let known: KnownHosts;
  let source: string;
  if ('knownHostsFile' in policy) {
    const files = typeof policy.knownHostsFile === 'string' ? [policy.knownHostsFile] : policy.knownHostsFile;
    if (!Array.isArray(files) || files.some((f) => typeof f !== 'string')) {
      throw new TypeError('hostKey.knownHostsFile must be a path or an array of paths');
    }
    const r = readKnownHosts(files);
    known = r.known;
    source = r.read.length > 0 ? r.read.join(', ') : `${files.join(', ')} (none exists)`;
  } else if ('knownHosts' in policy) {
    if (typeof policy.knownHosts !== 'string') throw new TypeError('hostKey.knownHosts must be a string');
    known = parseKnownHosts(policy.knownHosts);
    source = 'the given known_hosts text';
  } else {
    throw new TypeError(
      'hostKey must have one of knownHostsFile, knownHosts, fingerprint or insecureAcceptAnyHostKey: true',
    );
  }
  const acceptUnknown = policy.insecureAcceptUnknownHosts;
  if (acceptUnknown !== undefined && typeof acceptUnknown !== 'boolean') {
    throw new TypeError('hostKey.insecureAcceptUnknownHosts must be a boolean');
  }
  const lookupHost = policy.hostKeyAlias ?? options.host;
  const lookupPort = policy.hostKeyAlias !== undefined ? 22 : port;
  const types = knownKeyTypes(known, lookupHost, lookupPort);
  const verifier: HostKeyVerifier = {
    verify(key) {
      const check = checkHostKey(known, lookupHost, lookupPort, key);
      if (check.ok) return undefined;
      // Only a host with no listed key at all: one listed with other key types is still refused.
      if (acceptUnknown === true && check.reason === 'HOST_KEY_UNKNOWN' && check.knownTypes.length === 0) {
        return undefined;
      }
      const offered = `${keyTypeOf(key) ?? 'unknown'} key ${fingerprintOf(key)}`;
      const at = check.entry ? ` (${check.entry.source ?? 'known_hosts'} line ${check.entry.line})` : '';
      switch (check.reason) {
        case 'HOST_KEY_REVOKED':
          return {
            code: check.reason,
            message: `host key of ${where} is revoked${at}: the server offered ${offered}`,
          };
        case 'HOST_KEY_MISMATCH':
          return {
            code: check.reason,
            message: `HOST KEY OF ${where} HAS CHANGED: the server offered ${offered}, which differs from the ${check.entry?.keyType} key ${check.entry ? fingerprintOf(check.entry.key) : ''} in ${source}${at}; someone may be intercepting the connection`,
          };
        default:
          return {
            code: check.reason,
            message: `host ${where} is unknown: the server offered ${offered}, not listed in ${source}${
              check.knownTypes.length > 0
                ? ` (known there only with ${check.knownTypes.join(', ')} keys)`
                : ''
            }`,
          };
      }
    },
  };
  if (types.length > 0) verifier.algorithms = preferredHostKeyAlgorithms(types);
  return verifier;
}

function buildAuth(options: SshConnectOptions, key: ParsedKey | undefined): AnyAuthMethod[] {
  const { auth, username } = options;
  const methods: AnyAuthMethod[] = [];
  if (key) {
    const m: AnyAuthMethod = { type: 'publickey', username, key };
    methods.push(m);
  }
  if (auth.agent !== undefined) {
    let agent: string | undefined;
    if (auth.agent === true) agent = process.env.SSH_AUTH_SOCK;
    else if (typeof auth.agent === 'string' && auth.agent.length > 0) agent = auth.agent;
    else throw new TypeError('auth.agent must be a socket path or true');
    if (!agent) {
      throw hvkitError('INVALID_ARGUMENT', 'auth.agent is true but SSH_AUTH_SOCK is not set', {
        operation: 'ssh.connect',
      });
    }
    methods.push({ type: 'agent', username, agent });
  }
  if (auth.password !== undefined) {
    if (typeof auth.password !== 'string') throw new TypeError('auth.password must be a string');
    const password = auth.password;
    methods.push({ type: 'password', username, password });
    methods.push({
      type: 'keyboard-interactive',
      username,
      prompt(_name, _instructions, _lang, prompts, finish) {
        // Only a single hidden prompt is taken to be the password.
        if (prompts.length === 1 && prompts[0]?.echo !== true) finish([password]);
        else finish([]);
      },
    });
  }
  if (methods.length === 0) {
    throw new TypeError('auth needs at least one of privateKey, agent or password');
  }
  return methods;
}

function checkPositiveInt(value: unknown, what: string, allowZero = false): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new TypeError(`${what} must be ${allowZero ? 'a non-negative' : 'a positive'} integer`);
  }
}

/**
 * The live connection shared by exec, files, dialers and sinks. Internal: users hold an `SshClient`.
 */
export class SshConnection {
  readonly target: string;
  readonly execTimeoutMs: number;
  readonly sftpTimeoutMs: number;
  /** Set once the connection is gone; pending and future calls fail with it. */
  closedError: HvkitError | undefined;
  private readonly pending = new Set<(error: HvkitError) => void>();
  private readonly closeListeners = new Set<(error: HvkitError) => void>();
  private readonly slots: ChannelSlots;
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private closedPromise: Promise<void>;

  constructor(
    readonly client: Ssh2Client,
    readonly host: string,
    readonly port: number,
    readonly username: string,
    readonly hostKey: SshHostKeyInfo,
    options: SshConnectOptions,
  ) {
    const h = host.includes(':') ? `[${host}]` : host;
    this.target = `ssh://${username}@${h}:${port}`;
    this.slots = new ChannelSlots(options.maxChannels ?? 10);
    this.execTimeoutMs = options.execTimeoutMs ?? 600_000;
    this.sftpTimeoutMs = options.sftpTimeoutMs ?? 60_000;
    let lastError: unknown;
    client.on('error', (e) => {
      lastError = e;
      options.logger?.debug('ssh connection error', { target: this.target, message: messageOf(e) });
    });
    this.closedPromise = new Promise((resolve) => {
      client.once('close', () => {
        const why =
          (lastError as { level?: string } | undefined)?.level === 'client-timeout'
            ? 'keepalive timeout'
            : lastError
              ? messageOf(lastError)
              : 'closed by the server';
        this.markClosed(
          hvkitError('CONNECTION_LOST', `connection to ${this.target} lost (${why})`, {
            operation: 'ssh.connection',
            cause: lastError,
          }),
        );
        resolve();
      });
    });
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  private markClosed(error: HvkitError): void {
    if (this.closedError) return;
    this.closedError = error;
    this.sftpSession = undefined;
    this.slots.failAll(error);
    for (const fail of [...this.pending]) fail(error);
    this.pending.clear();
    for (const listener of [...this.closeListeners]) {
      try {
        listener(error);
      } catch {
        // A listener's failure changes nothing here.
      }
    }
    this.closeListeners.clear();
  }

  /**
   * Calls `listener` once when the connection closes or is lost (in a microtask when it already is);
   * returns the function that unregisters it.
   */
  onClose(listener: (error: HvkitError) => void): () => void {
    const closedError = this.closedError;
    if (closedError) {
      let active = true;
      queueMicrotask(() => {
        if (active) listener(closedError);
      });
      return () => {
        active = false;
      };
    }
    this.closeListeners.add(listener);
    return () => {
      this.closeListeners.delete(listener);
    };
  }

  /**
   * Registers a pending call's failure callback; returns the unregister function. On a closed
   * connection the callback runs in a microtask (never before `track` has returned).
   */
  track(fail: (error: HvkitError) => void): () => void {
    const closedError = this.closedError;
    if (closedError) {
      let active = true;
      queueMicrotask(() => {
        if (active) fail(closedError);
      });
      return () => {
        active = false;
      };
    }
    this.pending.add(fail);
    return () => this.pending.delete(fail);
  }

  /** Throws CONNECTION_LOST when the connection is gone. */
  ensureOpen(operation: string): void {
    if (this.closedError) {
      throw hvkitError('CONNECTION_LOST', `${operation}: connection to ${this.target} is closed`, {
        operation,
        cause: this.closedError,
      });
    }
  }

  /**
   * Opens an exec channel for `command` (already quoted), waiting for a free channel slot. The slot is
   * held until the channel closes. When the deadline fires first, the call rejects at once; a channel
   * that still opens later (its command then runs) goes to `adoptLate`, or is closed. The channel's exit
   * status is recorded from the moment it opens; read it with `exitOf(channel)`, never with an 'exit'
   * listener of your own (that one would miss a status that came with the channel's first packets).
   */
  async openExec(
    command: string,
    deadline: Deadline,
    operation: string,
    adoptLate?: (channel: ClientChannel) => void,
  ): Promise<ClientChannel> {
    this.ensureOpen(operation);
    const release = await this.slots.acquire(deadline);
    return new Promise<ClientChannel>((resolve, reject) => {
      let settled = false;
      const giveUp = (error: HvkitError) => {
        if (settled) return;
        settled = true;
        untrack();
        offDeadline();
        reject(error);
      };
      const untrack = this.track(giveUp);
      const offDeadline = deadline.onFire(giveUp);
      if (settled) {
        release();
        return;
      }
      try {
        this.client.exec(command, (err, ch) => {
          if (err) {
            release();
            giveUp(
              this.closedError ??
                hvkitError(
                  'REMOTE',
                  `${operation}: ${this.target} refused to open a channel: ${err.message}`,
                  {
                    operation,
                    cause: err,
                    backendMessage: err.message,
                    retryable: true,
                  },
                ),
            );
            return;
          }
          // Before anything else: the exit status may be in the packets ssh2 parses right after this.
          recordExit(ch);
          ch.once('close', release);
          if (settled) {
            if (adoptLate) adoptLate(ch);
            else ch.close();
            return;
          }
          settled = true;
          untrack();
          offDeadline();
          resolve(ch);
        });
      } catch (e) {
        release();
        giveUp(
          hvkitError('CONNECTION_LOST', `${operation}: ${this.target}: ${messageOf(e)}`, {
            operation,
            cause: e,
          }),
        );
      }
    });
  }

  /** The shared SFTP session (opened on first use, reopened if the server closed it). */
  sftp(deadline: Deadline, operation: string): Promise<SFTPWrapper> {
    this.ensureOpen(operation);
    if (!this.sftpSession) {
      const session = (async () => {
        const opening = new Deadline(operation, this.target, undefined, this.sftpTimeoutMs);
        try {
          const release = await this.slots.acquire(opening);
          try {
            const sftp = await opening.race(
              new Promise<SFTPWrapper>((resolve, reject) => {
                const untrack = this.track(reject);
                try {
                  this.client.sftp((err, s) => {
                    untrack();
                    if (err) {
                      reject(
                        this.closedError ??
                          hvkitError(
                            'UNSUPPORTED',
                            `${operation}: ${this.target} has no SFTP subsystem: ${err.message}`,
                            {
                              operation,
                              cause: err,
                              backendMessage: err.message,
                            },
                          ),
                      );
                    } else resolve(s);
                  });
                } catch (e) {
                  untrack();
                  reject(
                    hvkitError('CONNECTION_LOST', `${operation}: ${messageOf(e)}`, { operation, cause: e }),
                  );
                }
              }),
            );
            sftp.once('close', () => {
              release();
              if (this.sftpSession === session) this.sftpSession = undefined;
            });
            return sftp;
          } catch (e) {
            release();
            throw e;
          }
        } finally {
          opening.dispose();
        }
      })();
      this.sftpSession = session;
      session.catch(() => {
        if (this.sftpSession === session) this.sftpSession = undefined;
      });
    }
    return deadline.race(this.sftpSession);
  }

  /** Ends the connection; resolves once it is closed (forcibly after `timeoutMs`). */
  async close(timeoutMs = 5000): Promise<void> {
    if (!this.closedError) {
      this.markClosed(
        hvkitError('CONNECTION_LOST', `connection to ${this.target} was closed by the client`, {
          operation: 'ssh.close',
          retryable: false,
        }),
      );
    }
    this.client.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.client.destroy();
          resolve();
        }, timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  }
}

/**
 * Connects and authenticates. Rejects with AUTH_FAILED (bad credentials, or a refused host key with
 * backendCode `HOST_KEY_*`), CONNECTION_LOST (unreachable), TIMEOUT, ABORTED, PROTOCOL or
 * INVALID_ARGUMENT. Internal: {@link connectSsh} wraps the result in an `SshClient`.
 */
export async function openConnection(options: SshConnectOptions): Promise<SshConnection> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  checkOptionKeys(options, SSH_CONNECT_OPTION_KEYS, 'connectSsh');
  requireString(options.host, 'host');
  requireString(options.username, 'username');
  if (typeof options.auth !== 'object' || options.auth === null)
    throw new TypeError('auth must be an object');
  checkSignal(options.signal);
  checkTimeout(options.readyTimeout, 'readyTimeout');
  checkPositiveInt(options.keepaliveInterval, 'keepaliveInterval', true);
  checkPositiveInt(options.keepaliveCountMax, 'keepaliveCountMax');
  checkPositiveInt(options.maxChannels, 'maxChannels');
  checkTimeout(options.execTimeoutMs, 'execTimeoutMs');
  checkTimeout(options.sftpTimeoutMs, 'sftpTimeoutMs');
  const port = options.port ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw hvkitError('INVALID_ARGUMENT', `port ${String(port)} is not a TCP port number`, {
      operation: 'ssh.connect',
    });
  }
  const target = `ssh://${options.username}@${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  const key = loadPrivateKey(options.auth);
  const authHandler = buildAuth(options, key);
  const verifier = buildVerifier(options, port);
  const readyTimeout = options.readyTimeout ?? 20_000;

  const deadline = new Deadline('ssh.connect', target, options.signal, undefined);
  deadline.throwIfFired();
  const client = new ssh2.Client();
  let hostKeyFailure: HostKeyFailure | undefined;
  let hostKey: SshHostKeyInfo | undefined;
  const config: ConnectConfig = {
    host: options.host,
    port,
    username: options.username,
    readyTimeout,
    keepaliveInterval: options.keepaliveInterval ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 3,
    authHandler,
    hostVerifier: (k: Buffer) => {
      hostKeyFailure = verifier.verify(k);
      if (!hostKeyFailure) hostKey = { type: keyTypeOf(k) ?? 'unknown', fingerprint: fingerprintOf(k) };
      return hostKeyFailure === undefined;
    },
  };
  if (verifier.algorithms) {
    config.algorithms = {
      serverHostKey: verifier.algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
    };
  }
  try {
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (error?: HvkitError) => {
        if (done) return;
        done = true;
        offDeadline();
        client.removeListener('ready', onReady);
        client.removeListener('error', onError);
        client.removeListener('close', onClose);
        if (error) {
          // ssh2 may still report the teardown; nobody listens any more.
          client.on('error', () => {});
          client.destroy();
          reject(error);
        } else resolve();
      };
      const onReady = () => finish();
      const onError = (e: Error & { level?: string }) => finish(connectError(e, target, hostKeyFailure));
      const onClose = () =>
        finish(
          hvkitError('CONNECTION_LOST', `connection to ${target} closed before it was ready`, {
            operation: 'ssh.connect',
          }),
        );
      const offDeadline = deadline.onFire((e) => finish(e));
      client.on('ready', onReady);
      client.on('error', onError);
      client.on('close', onClose);
      try {
        client.connect(config);
      } catch (e) {
        finish(
          hvkitError('INVALID_ARGUMENT', `cannot connect to ${target}: ${messageOf(e)}`, {
            operation: 'ssh.connect',
            cause: e,
          }),
        );
      }
    });
  } finally {
    deadline.dispose();
  }
  return new SshConnection(
    client,
    options.host,
    port,
    options.username,
    hostKey ?? { type: 'unknown', fingerprint: 'unknown' },
    options,
  );
}

function connectError(
  e: Error & { level?: string },
  target: string,
  hostKeyFailure?: HostKeyFailure,
): HvkitError {
  const operation = 'ssh.connect';
  if (hostKeyFailure) {
    return hvkitError('AUTH_FAILED', hostKeyFailure.message, {
      operation,
      backendCode: hostKeyFailure.code,
      backendMessage: e.message,
      retryable: false,
    });
  }
  const code = errnoCode(e);
  switch (e.level) {
    case 'client-authentication':
      return hvkitError(
        'AUTH_FAILED',
        `authentication to ${target} failed (all offered methods were refused)`,
        {
          operation,
          cause: e,
          backendMessage: e.message,
          retryable: false,
        },
      );
    case 'agent':
      return hvkitError('AUTH_FAILED', `authentication to ${target} failed: ssh-agent error: ${e.message}`, {
        operation,
        cause: e,
        backendCode: 'AGENT',
        backendMessage: e.message,
        retryable: false,
      });
    case 'client-timeout':
      return hvkitError('TIMEOUT', `connecting to ${target} timed out (${e.message})`, {
        operation,
        cause: e,
        backendMessage: e.message,
      });
    case 'client-socket':
    case 'client-dns':
      return hvkitError('CONNECTION_LOST', `cannot reach ${target}: ${code ?? e.message}`, {
        operation,
        cause: e,
        backendCode: code,
        backendMessage: e.message,
      });
    case 'handshake':
      return hvkitError('PROTOCOL', `SSH handshake with ${target} failed: ${e.message}`, {
        operation,
        cause: e,
        backendMessage: e.message,
        retryable: false,
      });
    default:
      return hvkitError('CONNECTION_LOST', `connection to ${target} failed: ${e.message}`, {
        operation,
        cause: e,
        backendCode: code,
        backendMessage: e.message,
      });
  }
}
