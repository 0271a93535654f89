/**
 * Runs the XAPI simulator as a process (for scripts/peers/xapi-sim.sh): loads the seed database (or
 * --db PATH), listens on 127.0.0.1 (--port N, default any), writes `url=...` to --ready FILE once it
 * answers, and stops on SIGTERM/SIGINT. Credentials come from HVKIT_XAPI_USERNAME / HVKIT_XAPI_PASSWORD.
 */

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startXapiSimulator } from '../src/simulator';

const { values } = parseArgs({
  options: { db: { type: 'string' }, port: { type: 'string' }, ready: { type: 'string' } },
});
const sim = await startXapiSimulator({
  ...(values.db ? { db: values.db } : {}),
  port: values.port ? Number(values.port) : 0,
  ...(process.env.HVKIT_XAPI_USERNAME ? { username: process.env.HVKIT_XAPI_USERNAME } : {}),
  ...(process.env.HVKIT_XAPI_PASSWORD ? { password: process.env.HVKIT_XAPI_PASSWORD } : {}),
});
if (values.ready) await writeFile(values.ready, `url=${sim.url}\n`);
console.log(`xapi simulator listening on ${sim.url}`);
const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
