/**
 * A trial spec read back from a results file is the user's input like any other: `replay` runs
 * it, so its sizes are bounded as a campaign file's are (a run length, a host, steps that
 * exist) before the simulator sees it. Campaign runs never run a stored spec: they run their
 * own plan and only compare.
 */
import { z } from 'zod';
import { faultTypes } from '../faults/fault.js';
import { configurationNames } from '../guests/configurations.js';
import { mechanismNamed, unknownSteps } from '../recovery/mechanisms.js';
import { MAX_CHECKPOINT_MS, MAX_KV_IMBALANCE, MAX_LIST_LENGTH, MAX_REPLICATION_PERIOD_MS, MAX_SEED, MAX_TRIALS, MIN_CHECKPOINT_MS, MIN_REPLICATION_PERIOD_MS } from './limits.js';

const MS = 1_000_000;

const storedSpec = z.object({
  configuration: z.enum(configurationNames() as [string, ...string[]]),
  seed: z.number().int().min(0).max(MAX_SEED),
  trialIndex: z.number().int().min(0).max(MAX_TRIALS),
  faultType: z.enum(faultTypes),
  runLengthNs: z.number().int().min(10 * MS).max(60_000 * MS).optional(),
  strictNetBench: z.boolean().optional(),
  pkeys: z.boolean().optional(),
  mechanism: z.enum(['none', 'microreset', 'microreboot', 'failover', 'replay-failover']).optional(),
  replication: z
    .strictObject({
      epochMs: z.number().int().min(MIN_REPLICATION_PERIOD_MS).max(MAX_REPLICATION_PERIOD_MS).optional(),
      heartbeatMs: z.number().int().min(MIN_REPLICATION_PERIOD_MS).max(MAX_REPLICATION_PERIOD_MS).optional(),
    })
    .optional(),
  replay: z
    .strictObject({
      checkpointMs: z.number().int().min(MIN_CHECKPOINT_MS).max(MAX_CHECKPOINT_MS).optional(),
      ordering: z.enum(['log', 'deterministic', 'none']).optional(),
      timingAdjustment: z.boolean().optional(),
    })
    .optional(),
  kvServer: z.strictObject({ raceRate: z.number().min(0).max(1).optional(), imbalance: z.number().min(0).max(MAX_KV_IMBALANCE).optional() }).optional(),
  disabledSteps: z.array(z.string()).max(MAX_LIST_LENGTH).optional(),
  host: z.object({ cpus: z.number().int().min(1).max(1024), memoryGiB: z.number().int().min(1).max(65_536) }).optional(),
  faults: z.array(z.unknown()).max(16).optional(),
});

/** The problem with a stored spec, or undefined when it may be run. */
export function storedSpecProblem(spec: unknown): string | undefined {
  const parsed = storedSpec.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `spec.${issue.path.map(String).join('.')}: ${issue.message}`;
  }
  const { mechanism = 'none', disabledSteps = [] } = parsed.data;
  if (disabledSteps.length > 0 && mechanism === 'none') return 'spec.disabledSteps: mechanism none has no steps';
  if (parsed.data.replication !== undefined && mechanism !== 'failover') return `spec.replication: ${mechanism} has no epoch or heartbeat`;
  if (parsed.data.replay !== undefined && mechanism !== 'replay-failover') return `spec.replay: ${mechanism} has no checkpoint interval, ordering or timing adjustment`;
  if (parsed.data.kvServer !== undefined && parsed.data.configuration !== '3AppVM-mt') return `spec.kvServer: ${parsed.data.configuration} runs no key-value server`;
  const unknown = mechanism === 'none' ? [] : unknownSteps(mechanismNamed(mechanism), disabledSteps);
  if (unknown.length > 0) return `spec.disabledSteps: ${mechanism} has no step ${unknown.map((name) => `"${name}"`).join(', ')}`;
  return undefined;
}
