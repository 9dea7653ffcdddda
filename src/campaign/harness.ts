/**
 * When the harness, not the model, fails: a trial that throws inside the simulator, or a worker
 * thread that dies. The campaign goes on: the fault's trials are retried once, each on its own
 * (runner.ts), and a trial that fails again is recorded with outcome `harnessError` and the
 * message (results/harness-error.ts), so that the summary counts it and the run's exit code says
 * the campaign had errors.
 *
 * Test hook: NINELIVES_TEST_HARNESS_FAULT makes the worker misbehave on one trial, so that tests
 * can show the above. It is honoured only under vitest (VITEST=true, set by the test runner) and
 * reads `<kind>:<trial id>`, where kind is
 *   throw          the trial throws every time it runs
 *   throw-once     it throws the first time, in any thread (a marker file remembers: set
 *                  NINELIVES_TEST_HARNESS_MARKER to a path that does not exist yet)
 *   exit           the worker thread running it exits (a dead worker), every time
 *   nondeterminism the trial's record differs when it runs outside the main thread
 */
import { existsSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { TrialRecord } from '../trial/record.js';
import type { TrialJob } from './plan.js';

const HOOK = 'NINELIVES_TEST_HARNESS_FAULT';
const MARKER = 'NINELIVES_TEST_HARNESS_MARKER';

/** The test hook, applied before a trial runs (see the top of this file). */
export function beforeTrialHook(job: TrialJob): void {
  const hook = testHook();
  if (hook === undefined || hook.id !== job.id) return;
  if (hook.kind === 'throw') throw new Error(`injected harness fault in ${job.id}`);
  if (hook.kind === 'throw-once') {
    const marker = process.env[MARKER];
    if (marker === undefined || existsSync(marker)) return;
    writeFileSync(marker, job.id);
    throw new Error(`injected harness fault in ${job.id} (once)`);
  }
  if (hook.kind === 'exit' && !isMainThread) process.exit(3);
}

/** The test hook, applied to a trial's record (see the top of this file). */
export function afterTrialHook(job: TrialJob, record: TrialRecord): TrialRecord {
  const hook = testHook();
  if (hook?.kind !== 'nondeterminism' || hook.id !== job.id || isMainThread) return record;
  return { ...record, trialSeed: record.trialSeed + 1 };
}

function testHook(): { kind: string; id: string } | undefined {
  const value = process.env[HOOK];
  if (value === undefined || process.env.VITEST !== 'true') return undefined;
  const colon = value.indexOf(':');
  return colon < 0 ? undefined : { kind: value.slice(0, colon), id: value.slice(colon + 1) };
}
