/**
 * Connects to the pool master named by HVKIT_XAPI_URL (with HVKIT_XAPI_USERNAME, HVKIT_XAPI_PASSWORD and
 * optionally HVKIT_XAPI_PIN, the SHA-256 fingerprint of its self-signed certificate), or, when it is not
 * set, to an XAPI simulator started here with the package's seed database.
 */

import { connect, type XenXapiAdapter } from '@hvkit/xen-xapi';
import { startXapiSimulator } from '@hvkit/xen-xapi/simulator';

/** The adapter, and what to close when done. */
export async function open(): Promise<{ hv: XenXapiAdapter; close(): Promise<void> }> {
  const url = process.env.HVKIT_XAPI_URL;
  if (url) {
    const pin = process.env.HVKIT_XAPI_PIN;
    const hv = await connect({
      url,
      username: process.env.HVKIT_XAPI_USERNAME ?? 'root',
      password: process.env.HVKIT_XAPI_PASSWORD ?? '',
      ...(url.startsWith('http:') ? { insecureHttp: true } : pin ? { tls: { pinnedSha256: pin } } : {}),
    });
    return { hv, close: () => hv.close() };
  }
  const sim = await startXapiSimulator();
  console.log(`(no HVKIT_XAPI_URL: using an XAPI simulator at ${sim.url})`);
  const hv = await connect({
    url: sim.url,
    username: sim.username,
    password: sim.password,
    ...sim.connectOptions,
  });
  return {
    hv,
    close: async () => {
      await hv.close();
      await sim.close();
    },
  };
}
