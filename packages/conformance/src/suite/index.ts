/**
 * The hvkit conformance suite: `runAdapterConformance` registers it with a test runner; a collector runs
 * it without one.
 */
export { ConformanceFailure, ConformanceSkip, deepEqual, firstDifference } from './assert';
export { type CapturedWrite, CapturingSink } from './capturing-sink';
export { serviceOnlyOnCallersConnection } from './checks-service';
export {
  type ConformanceCollector,
  type ConformanceReport,
  type ConformanceResult,
  createConformanceCollector,
  formatConformanceReport,
  runConformanceReport,
} from './collector';
export { type BadLimitValue, badLimitValues, DEFAULT_LIMIT_VALUES, type HostLimitFacts } from './context';
export { listConformanceChecks, runAdapterConformance } from './run';
export type {
  ConformanceOptions,
  ConformancePeerControl,
  ConformanceProbe,
  ConformanceTestApi,
  ConformanceTestContext,
  ConformanceTestFn,
  LimitTestValues,
  MaybePromise,
  ProbeGuest,
  ProbeGuestFacts,
} from './types';
