/**
 * Process-end stops for test helpers (not published). A module of its own, without vitest, so that helper
 * scripts run outside vitest (a recorder, a child process of a test) can use it.
 */

/** The synchronous stops {@link stopWithProcess} runs when the process ends. */
const processEndStops = new Set<() => void>();
const ENDING_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function runProcessEndStops(): void {
  for (const stop of [...processEndStops]) {
    processEndStops.delete(stop);
    try {
      stop();
    } catch {
      // the others still run
    }
  }
}

function onEndingSignal(signal: NodeJS.Signals): void {
  runProcessEndStops();
  process.off(signal, onEndingSignal);
  // Ends the process as the signal would have when no one else listens for it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Registers (`on`) or removes the process hooks that run the stops. */
function processEndHooks(on: boolean): void {
  process.off('exit', runProcessEndStops);
  process.off('disconnect', runProcessEndStops);
  for (const signal of ENDING_SIGNALS) process.off(signal, onEndingSignal);
  if (!on) return;
  process.on('exit', runProcessEndStops);
  // Only a process started with an IPC channel (a vitest worker) has a parent to lose this way.
  if (process.connected) process.on('disconnect', runProcessEndStops);
  for (const signal of ENDING_SIGNALS) process.on(signal, onEndingSignal);
}

/**
 * Runs `stop` (synchronous: kill a child process, remove its folder) when this process ends before the
 * returned function is called: at `exit`, on SIGTERM (how vitest ends its workers), SIGINT or SIGHUP (the
 * process then ends as the signal would have), or when it loses the IPC channel to its parent (a vitest
 * worker whose main process was ended goes on running its file). For a server or folder a test file starts
 * that must not outlive it even when its `afterAll` does not run. Call the returned function once it is
 * stopped the normal way; the hooks go with the last registered stop.
 */
export function stopWithProcess(stop: () => void): () => void {
  processEndStops.add(stop);
  processEndHooks(true);
  return () => {
    processEndStops.delete(stop);
    if (processEndStops.size === 0) processEndHooks(false);
  };
}
