/**
 * The wire client of the lvm adapter: LVM's commands run through a core `ExecTransport` as argv arrays,
 * never a shell string (locally without a shell; over `@hvkit/ssh` with every argument quoted). Names reach
 * a command only after `names.ts` checked them. Every command has a deadline and its output is bounded by
 * {@link MAX_OUTPUT_BYTES}; reports are read as JSON with `parseLvmReport`.
 */

import {
  abortError,
  type ExecProcess,
  type ExecTransport,
  hvkitError,
  type SignalOptions,
} from '@hvkit/core';
import { ADAPTER_ID, commandFailedToHvkitError } from '../errors';
import {
  type LvmLogicalVolume,
  type LvmReport,
  type LvmVolumeGroup,
  parseLvmReport,
} from '../mapping/report';
import { type LvId, lvIdString } from './names';

/** Largest stdout or stderr kept of one command, in bytes (16 MiB: reports of big hosts); more is `PROTOCOL`. */
export const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** The environment every command gets: C locale (stable messages and numbers), no fd-leak warnings. */
export const LVM_ENV: Readonly<Record<string, string>> = Object.freeze({
  LC_ALL: 'C',
  LVM_SUPPRESS_FD_WARNINGS: '1',
});

/** The command `hello` runs. */
export const HELLO_ARGV: readonly string[] = Object.freeze(['lvm', 'version']);

/** The `lvs` fields the adapter reads. */
export const LV_FIELDS: readonly string[] = Object.freeze([
  'lv_name',
  'vg_name',
  'lv_uuid',
  'lv_path',
  'lv_dm_path',
  'lv_size',
  'lv_attr',
  'origin',
  'pool_lv',
  'data_percent',
  'snap_percent',
  'metadata_percent',
  'lv_time',
  'lv_tags',
  'segtype',
  'thin_id',
  'transaction_id',
  'lv_snapshot_invalid',
]);

/** The `vgs` fields the adapter reads. */
export const VG_FIELDS: readonly string[] = Object.freeze([
  'vg_name',
  'vg_uuid',
  'vg_size',
  'vg_free',
  'vg_extent_size',
  'vg_attr',
  'lv_count',
  'pv_count',
  'vg_tags',
]);

/** Options every report command gets (JSON, sizes in bytes without a suffix). */
const REPORT_ARGS = ['--reportformat', 'json', '--units', 'b', '--nosuffix'] as const;

/** What the backend says about itself (`hello`). */
export interface BackendHello {
  product: string;
  /** `LVM version`, e.g. `2.03.16(2)`. */
  version: string;
  /** `Driver version` of device-mapper, when the kernel has it. */
  build?: string;
}

/** Runs LVM's commands. */
export class LvmClient {
  readonly #exec: ExecTransport;
  readonly #timeoutMs: number;

  constructor(exec: ExecTransport, timeoutMs: number) {
    this.#exec = exec;
    this.#timeoutMs = timeoutMs;
  }

  /** Where commands run (`local`, `ssh://user@host:22`). */
  get target(): string {
    return this.#exec.target;
  }

  /**
   * Runs `argv` (C locale) and returns its stdout as text.
   *
   * @throws HvkitError: the mapped error of a failed command (see `errors.ts`), `PROTOCOL` for output
   *   above {@link MAX_OUTPUT_BYTES}, `TIMEOUT`/`ABORTED`, or the transport's own errors.
   */
  async run(
    argv: readonly string[],
    options: SignalOptions & { stdin?: string; operation?: string } = {},
  ): Promise<string> {
    // An aborted call sends nothing (also keeps recordings and replays in step: no command is half-sent).
    if (options.signal?.aborted) {
      throw abortError(options.signal, {
        adapter: ADAPTER_ID,
        operation: options.operation ?? argv[0] ?? '',
      });
    }
    const result = await this.#exec.exec({
      argv,
      env: LVM_ENV,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      maxBuffer: MAX_OUTPUT_BYTES,
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
    });
    if (result.exitCode !== 0) {
      throw commandFailedToHvkitError(
        {
          program: argv[0] ?? '',
          exitCode: result.exitCode,
          signal: result.signal,
          stderr: result.stderr.toString('utf8'),
        },
        { operation: options.operation ?? argv[0] },
      );
    }
    return result.stdout.toString('utf8');
  }

  /**
   * Starts a streaming command (device reads and writes). The caller waits for it (and kills it when it gives
   * up). An abort of `signal` kills the process, and its `wait()` and stdout fail with `ABORTED`. `stdin`, when
   * given, is fed to the process; a source that fails kills it, and `wait()` rejects with the source's error.
   */
  spawn(
    argv: readonly string[],
    options: { signal?: AbortSignal; stdin?: AsyncIterable<Uint8Array> } = {},
  ): ExecProcess {
    return this.#exec.spawn({
      argv,
      env: LVM_ENV,
      maxBuffer: MAX_OUTPUT_BYTES,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.stdin ? { stdin: options.stdin } : {}),
    });
  }

  /** What the backend says about itself; connect calls it first, so a host without LVM fails fast. */
  async hello(options: SignalOptions = {}): Promise<BackendHello> {
    return parseHello(await this.run(HELLO_ARGV, { ...options, operation: 'connect' }));
  }

  /** Runs a report command and parses it. */
  async report(
    argv: readonly string[],
    options: SignalOptions & { operation?: string } = {},
  ): Promise<LvmReport> {
    const text = await this.run(argv, options);
    return parseLvmReport(text);
  }

  /** Every logical volume (internal ones too, `-a`), of one group or of all. */
  async lvs(vg?: string, options: SignalOptions & { operation?: string } = {}): Promise<LvmLogicalVolume[]> {
    const argv = ['lvs', '-a', ...REPORT_ARGS, '-o', LV_FIELDS.join(','), ...(vg === undefined ? [] : [vg])];
    return (await this.report(argv, options)).logicalVolumes;
  }

  /** One logical volume, or `undefined` when the group has no such volume. */
  async lv(
    id: LvId,
    options: SignalOptions & { operation?: string } = {},
  ): Promise<LvmLogicalVolume | undefined> {
    const all = await this.lvs(id.vg, options);
    return all.find((lv) => lv.name === id.lv && lv.vgName === id.vg);
  }

  /** Every volume group. */
  async vgs(options: SignalOptions & { operation?: string } = {}): Promise<LvmVolumeGroup[]> {
    return (await this.report(['vgs', ...REPORT_ARGS, '-o', VG_FIELDS.join(',')], options)).volumeGroups;
  }

  /** `lvremove -y vg/lv` (also `-f` so an inactive thin snapshot with the skip flag goes too). */
  async lvremove(id: LvId, options: SignalOptions & { operation?: string } = {}): Promise<void> {
    await this.run(['lvremove', '-y', '-f', lvIdString(id)], options);
  }

  /**
   * `lvremove -y -f @tag`: every logical volume carrying `tag`, in one command (none is not an error; LVM
   * exits 0). `tag` must be an LVM tag (`A-Z a-z 0-9 _ + . -`), else TypeError: an empty or odd tag must
   * never reach lvremove.
   */
  async lvremoveByTag(tag: string, options: SignalOptions & { operation?: string } = {}): Promise<void> {
    if (typeof tag !== 'string' || !/^[A-Za-z0-9_+.-]{1,128}$/.test(tag) || tag.startsWith('-')) {
      throw new TypeError(`lvremoveByTag: ${JSON.stringify(tag)} is not an LVM tag.`);
    }
    await this.run(['lvremove', '-y', '-f', `@${tag}`], options);
  }
}

/**
 * Reads the output of `lvm version`:
 *
 * ```text
 *   LVM version:     2.03.16(2) (2022-05-18)
 *   Library version: 1.02.185 (2022-05-18)
 *   Driver version:  4.47.0
 * ```
 *
 * @throws HvkitError `PROTOCOL` when there is no `LVM version` line.
 */
export function parseHello(stdout: string): BackendHello {
  const version = /^\s*LVM version:\s*(\S+)/m.exec(stdout)?.[1];
  if (!version) {
    throw hvkitError('PROTOCOL', '`lvm version` printed no "LVM version:" line.', {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  const driver = /^\s*Driver version:\s*(\S+)/m.exec(stdout)?.[1];
  return { product: 'LVM', version, ...(driver ? { build: driver } : {}) };
}
