/**
 * The vcsim peer (scripts/peers/vcsim.sh) as seen by the live tests of the SOAP client.
 */

import { readFileSync } from 'node:fs';
import { livePeer } from '@hvkit/conformance';
import type { FetchLike } from '@hvkit/core';
import { methodOf } from './soap-server';

export const VCSIM_VARS = [
  'HVKIT_VCSIM_URL',
  'HVKIT_VCSIM_HTTP_URL',
  'HVKIT_VCSIM_ESX_URL',
  'HVKIT_VCSIM_USER',
  'HVKIT_VCSIM_PASSWORD',
  'HVKIT_VCSIM_THUMBPRINT',
  'HVKIT_VCSIM_CA',
  'HVKIT_VCSIM_VMS',
  'HVKIT_VCSIM_BIN',
] as const;

export const vcsim = livePeer('vcsim', VCSIM_VARS);

/** `describe` title with the skip reason. */
export function liveTitle(what: string): string {
  return `live vcsim: ${what}${vcsim.available ? '' : ` (skipped: ${vcsim.reason})`}`;
}

/** The peer's variables (only inside a suite that runs). */
export function env(): Record<(typeof VCSIM_VARS)[number], string> {
  if (!vcsim.available) throw new Error(vcsim.reason);
  return vcsim.env;
}

/** The peer's CA certificate (PEM). */
export function peerCa(): string {
  return readFileSync(env().HVKIT_VCSIM_CA, 'utf8');
}

/** One request seen by {@link tappedFetch}. */
export interface TappedCall {
  method: string;
  hadCookie: boolean;
}

/** Controls of {@link tappedFetch}: what it does to the requests it passes to the real server. */
export interface Tap {
  readonly calls: TappedCall[];
  /** Drop the Cookie header of every call except Login (the server then sees no session). */
  stripCookies: boolean;
  /** Hold the server's answer to these methods this long before returning it. */
  delay: Partial<Record<string, number>>;
}

/**
 * The global fetch with a tap in front of it: records the method of each SOAP call and can inject
 * faults into the real exchange (a lost cookie, a slow answer). The server is real; nothing is mocked.
 */
export function tappedFetch(): [FetchLike, Tap] {
  const tap: Tap = { calls: [], stripCookies: false, delay: {} };
  const tapped: FetchLike = async (input, init) => {
    const method = typeof init?.body === 'string' ? methodOf(init.body) : '';
    const headers = { ...(init?.headers as Record<string, string> | undefined) };
    if (tap.stripCookies && method !== 'Login') delete headers.cookie;
    tap.calls.push({ method, hadCookie: headers.cookie !== undefined });
    const response = await fetch(input, { ...init, headers });
    const wait = tap.delay[method];
    if (wait) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, wait);
        init?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(init.signal?.reason);
        });
      });
    }
    return response;
  };
  return [tapped, tap];
}
