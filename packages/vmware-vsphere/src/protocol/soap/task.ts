/**
 * Waiting for vSphere tasks: poll `info.state` (with core's backoff) until success or error; a task error
 * becomes a typed error carrying the fault type; aborting the wait cancels the task (CancelTask).
 */

import { hvkitError, waitFor } from '@hvkit/core';
import { ADAPTER_ID, methodFaultToError } from '../../errors';
import { retrieveProperties } from './property-collector';
import type { LocalizedMethodFault, MoRef } from './schema';
import type { VimSession } from './session';

/** Default longest wait for a task: 30 minutes. */
export const DEFAULT_TASK_TIMEOUT_MS = 30 * 60_000;

/** The task fields a wait reads. */
export interface TaskState {
  state: 'queued' | 'running' | 'success' | 'error' | (string & {});
  progress?: number;
  cancelable?: boolean;
  result?: unknown;
  error?: LocalizedMethodFault;
}

/** Options of {@link waitForTask}. */
export interface WaitForTaskOptions {
  signal?: AbortSignal;
  /** Longest wait (default {@link DEFAULT_TASK_TIMEOUT_MS}); then `TIMEOUT` (the task is not cancelled). */
  timeoutMs?: number;
  /** First delay between polls (default 200 ms); it grows up to `maxPollMs`. */
  minPollMs?: number;
  /** Longest delay between polls (default 5 s). */
  maxPollMs?: number;
  /** Called after each poll of a task that is still queued or running. */
  onProgress?: (state: TaskState) => void;
  /** Cancel the task (CancelTask, in the background) when `signal` aborts (default true). */
  cancelOnAbort?: boolean;
  /** Source of randomness for the backoff jitter (tests). */
  random?: () => number;
}

const TASK_PATHS = ['info.state', 'info.progress', 'info.cancelable', 'info.result', 'info.error'] as const;

function checkTask(task: unknown): asserts task is MoRef {
  const t = task as MoRef | undefined;
  if (typeof t?.type !== 'string' || typeof t.value !== 'string' || t.value === '') {
    throw new TypeError('task must be a managed object reference { type: "Task", value }.');
  }
}

/**
 * Reads a task's state, progress, result and error.
 *
 * @throws HvkitError `NOT_FOUND` when the task no longer exists; others as the session's calls.
 */
export async function readTaskState(
  session: VimSession,
  task: MoRef,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<TaskState> {
  checkTask(task);
  const [content] = await retrieveProperties(
    session,
    [{ propSet: [{ type: 'Task', pathSet: TASK_PATHS }], objectSet: [{ obj: task }] }],
    options,
  );
  if (!content) {
    throw hvkitError('NOT_FOUND', `Task ${task.value} was not found.`, {
      adapter: ADAPTER_ID,
      operation: 'task.read',
      details: { task: task.value },
    });
  }
  const missing = content.missing.find((m) => m.path === 'info.state');
  if (missing) throw missing.error;
  const p = content.props;
  if (typeof p['info.state'] !== 'string') {
    throw hvkitError('PROTOCOL', `Task ${task.value} has no info.state.`, {
      adapter: ADAPTER_ID,
      operation: 'task.read',
    });
  }
  return {
    state: p['info.state'] as TaskState['state'],
    progress: typeof p['info.progress'] === 'number' ? p['info.progress'] : undefined,
    cancelable: typeof p['info.cancelable'] === 'boolean' ? p['info.cancelable'] : undefined,
    result: p['info.result'],
    error: p['info.error'] as LocalizedMethodFault | undefined,
  };
}

/** Asks the server to cancel a task (`CancelTask`). Tasks that cannot be cancelled fault (see the error). */
export async function cancelTask(
  session: VimSession,
  task: MoRef,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<void> {
  checkTask(task);
  await session.call('CancelTask', task, undefined, options);
}

/**
 * Waits until `task` finishes and returns its result (`info.result`: e.g. the snapshot reference of
 * CreateSnapshot_Task; `undefined` for tasks without one).
 *
 * @throws HvkitError from the task's error, typed by its fault type (`InvalidPowerState` → `CONFLICT`;
 *   `backendCode` = fault type, `details.faultSource` = `task`); `TIMEOUT` after `timeoutMs` (the task
 *   keeps running); `ABORTED` when `signal` aborts (the task is cancelled unless `cancelOnAbort: false`).
 */
export async function waitForTask<T = unknown>(
  session: VimSession,
  task: MoRef,
  options: WaitForTaskOptions = {},
): Promise<T> {
  checkTask(task);
  const context = { adapter: ADAPTER_ID, operation: 'task.wait' };
  try {
    return await waitFor<T>(
      async (signal) => {
        const state = await readTaskState(session, task, { signal });
        if (state.state === 'success') return { done: true, value: state.result as T };
        if (state.state === 'error') {
          throw methodFaultToError(state.error, { source: 'task', task: task.value, operation: 'task.wait' });
        }
        options.onProgress?.(state);
        return {
          done: false,
          reason: `${state.state}${state.progress !== undefined ? ` ${state.progress}%` : ''}`,
        };
      },
      {
        ...context,
        signal: options.signal,
        maxWaitTimeMs: options.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS,
        minDelayMs: options.minPollMs ?? 200,
        maxDelayMs: options.maxPollMs ?? 5_000,
        random: options.random,
        description: `task ${task.value}`,
      },
    );
  } catch (error) {
    if (options.signal?.aborted && options.cancelOnAbort !== false && !session.closed) {
      cancelTask(session, task, { timeoutMs: 10_000 }).catch(() => {});
    }
    throw error;
  }
}
