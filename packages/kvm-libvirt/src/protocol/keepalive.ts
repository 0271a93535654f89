/**
 * Client-side keepalive (program 0x6b656570): PING when the connection has been quiet for one interval,
 * declare the peer dead when nothing at all arrived for `intervalMs × countMax`.
 */

import { MESSAGE_STATUS, MESSAGE_TYPE, PROGRAM, PROTOCOL_VERSION } from './constants';
import type { PacketHeader } from './packet';

/** Keepalive settings of a connection. */
export interface KeepaliveOptions {
  /** Milliseconds of silence before a PING is sent, and between PINGs (default 5000, like libvirt). */
  intervalMs?: number;
  /**
   * Unanswered intervals before the peer counts as dead (default 5): the connection is closed with
   * `CONNECTION_LOST` after `intervalMs × countMax` without any incoming packet.
   */
  countMax?: number;
}

/** Keepalive counters, for diagnostics and tests. */
export interface KeepaliveStats {
  pingsSent: number;
  pongsReceived: number;
  pingsReceived: number;
  pongsSent: number;
}

/** Default keepalive interval: 5 s. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 5000;
/** Default keepalive count: 5. */
export const DEFAULT_KEEPALIVE_COUNT_MAX = 5;

/** The header of a keepalive PING or PONG (type MESSAGE, serial 0, status OK, empty payload). */
export function keepaliveHeader(procedure: number): PacketHeader {
  return {
    program: PROGRAM.KEEPALIVE,
    version: PROTOCOL_VERSION,
    procedure,
    type: MESSAGE_TYPE.MESSAGE,
    serial: 0,
    status: MESSAGE_STATUS.OK,
  };
}

/** Validates keepalive options; returns the settings in force. */
export function resolveKeepalive(
  options: KeepaliveOptions | false | undefined,
): Required<KeepaliveOptions> | false {
  if (options === false) return false;
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('keepalive must be an object or false.');
  }
  const intervalMs = options?.intervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
  const countMax = options?.countMax ?? DEFAULT_KEEPALIVE_COUNT_MAX;
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 10) {
    throw new TypeError('keepalive.intervalMs must be a finite number of at least 10 ms.');
  }
  if (!Number.isInteger(countMax) || countMax < 1) {
    throw new TypeError('keepalive.countMax must be a positive integer.');
  }
  return { intervalMs, countMax };
}

/** What the monitor needs from its connection. */
export interface KeepaliveHooks {
  /** Writes a PING. */
  sendPing(): void;
  /** Called once when the peer is considered dead; the connection must close. */
  onDead(silentMs: number): void;
  /**
   * True while the client deliberately stopped reading (stream backpressure): silence is then expected,
   * so PINGs keep the daemon's own keepalive satisfied but the peer is not declared dead.
   */
  isPaused(): boolean;
}

/** Runs the keepalive timer of one connection. */
export class KeepaliveMonitor {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastReceived = Date.now();
  private readonly stats: KeepaliveStats = { pingsSent: 0, pongsReceived: 0, pingsReceived: 0, pongsSent: 0 };
  private dead = false;

  constructor(
    private readonly settings: Required<KeepaliveOptions>,
    private readonly hooks: KeepaliveHooks,
  ) {}

  /** Starts the timer (unref'd: it never keeps the process alive by itself). */
  start(): void {
    if (this.timer !== undefined || this.dead) return;
    this.lastReceived = Date.now();
    // Ticking at a fraction of the interval keeps detection close to interval × countMax.
    const tick = Math.max(5, Math.floor(this.settings.intervalMs / 4));
    let lastPing = 0;
    this.timer = setInterval(() => {
      const now = Date.now();
      const silent = now - this.lastReceived;
      if (this.hooks.isPaused()) {
        this.lastReceived = Math.max(this.lastReceived, now - this.settings.intervalMs);
      } else if (silent >= this.settings.intervalMs * this.settings.countMax) {
        this.dead = true;
        this.stop();
        this.hooks.onDead(silent);
        return;
      }
      if (silent >= this.settings.intervalMs && now - lastPing >= this.settings.intervalMs) {
        lastPing = now;
        this.stats.pingsSent++;
        this.hooks.sendPing();
      }
    }, tick);
    this.timer.unref?.();
  }

  /** Stops the timer. Idempotent. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Records incoming traffic (any packet proves the peer alive). */
  received(): void {
    this.lastReceived = Date.now();
  }

  /** Records a PONG. */
  pongReceived(): void {
    this.stats.pongsReceived++;
  }

  /** Records a PING from the server (answered by the caller). */
  pingReceived(): void {
    this.stats.pingsReceived++;
    this.stats.pongsSent++;
  }

  /** A copy of the counters. */
  snapshot(): KeepaliveStats {
    return { ...this.stats };
  }

  /** The settings in force. */
  get options(): Readonly<Required<KeepaliveOptions>> {
    return this.settings;
  }
}
