/**
 * The handshake of a new libvirt connection: authentication (AUTH_LIST; NONE, or POLKIT → AUTH_POLKIT;
 * SASL is refused with UNSUPPORTED), the feature probe (SUPPORTS_FEATURE(keepalive): `startKeepalive` runs
 * when the daemon has it) and CONNECT_OPEN of the driver URI.
 */

import { HvkitError, hvkitError, type Logger } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import type { CallOptions } from './calls';
import { AUTH_TYPE, CONNECT_RO, DRV_FEATURE } from './constants';
import { type RemoteProcedure, remoteProcedures } from './remote-protocol';

/** What the handshake needs to know about the connection. */
export interface HandshakeSettings {
  target: string;
  openUri: string | null;
  readOnly: boolean;
  logger: Logger | undefined;
}

/** Calls on the connection being set up (the client's first one, or a reconnect's new one). */
export interface HandshakeChannel {
  call<A, R>(procedure: RemoteProcedure<A, R>, args: A, options: CallOptions): Promise<R>;
  /** True once that connection is closed or lost. */
  readonly closed: boolean;
}

/**
 * Authenticates and opens the driver on a freshly dialed connection.
 *
 * @throws HvkitError AUTH_FAILED (polkit refused), UNSUPPORTED (SASL), and whatever the calls throw.
 */
export async function handshake(
  client: HandshakeChannel,
  settings: HandshakeSettings,
  call: CallOptions,
  startKeepalive: () => void,
): Promise<void> {
  const types = await client.call(remoteProcedures.AUTH_LIST, undefined, call);
  if (types.length > 0 && !types.includes(AUTH_TYPE.NONE)) {
    if (types.includes(AUTH_TYPE.POLKIT)) {
      const polkit = await client
        .call(remoteProcedures.AUTH_POLKIT, undefined, call)
        .catch((error: unknown) => {
          // A daemon-side polkit failure (no D-Bus, no rule) means: not authorised.
          if (
            !HvkitError.isInstance(error) ||
            ['CONNECTION_LOST', 'TIMEOUT', 'ABORTED'].includes(error.code)
          ) {
            throw error;
          }
          throw hvkitError(
            'AUTH_FAILED',
            `polkit authentication with ${settings.target} failed: ${error.message}`,
            {
              adapter: ADAPTER_ID,
              operation: 'connect',
              cause: error,
              backendCode: error.backendCode,
              backendMessage: error.backendMessage,
              retryable: false,
              details: error.details,
            },
          );
        });
      if (polkit.complete !== 1) {
        throw hvkitError('AUTH_FAILED', `polkit did not authorise the connection to ${settings.target}.`, {
          adapter: ADAPTER_ID,
          operation: 'connect',
          retryable: false,
        });
      }
    } else {
      throw hvkitError(
        'UNSUPPORTED',
        `${settings.target} requires SASL authentication (auth types ${types.join(', ')}), which hvkit does not implement; configure auth_* = "none" or "polkit", or use TLS client certificates or SSH.`,
        { adapter: ADAPTER_ID, operation: 'connect', retryable: false, details: { authTypes: types } },
      );
    }
  }
  let keepaliveSupported = false;
  try {
    keepaliveSupported = await client.call(
      remoteProcedures.CONNECT_SUPPORTS_FEATURE,
      { feature: DRV_FEATURE.PROGRAM_KEEPALIVE },
      call,
    );
  } catch (error) {
    if (client.closed) throw error;
    settings.logger?.debug('libvirt: SUPPORTS_FEATURE(keepalive) failed', { error: String(error) });
  }
  if (keepaliveSupported) startKeepalive();
  await client.call(
    remoteProcedures.CONNECT_OPEN,
    { name: settings.openUri, flags: settings.readOnly ? CONNECT_RO : 0 },
    call,
  );
}
