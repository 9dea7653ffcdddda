/**
 * The procedure rediscovers known repairs: for each of six microreset repairs, a small campaign
 * with that one step switched off, triaged, has the step in the `repairedBy` of its largest
 * cluster, and that cluster's restoring set names state the step declares it repairs (the step
 * definition's own `repairs`, not a pinned outcome). Campaigns are as small as shows it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runCampaign } from '../../src/campaign/runner.js';
import { campaignOf } from '../../src/campaign/spec.js';
import { stepRepairs } from '../../src/campaign/triage/cluster.js';
import { triageDirectory } from '../../src/campaign/triage/run.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import { removeTemporaryDirectories, temporaryDirectory } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

/** The configuration and fail-stop trials that show each step (fail-stop faults are all detected). */
const cases = [
  { step: 'clear-irq-count', configuration: '1AppVM', trials: 8 },
  { step: 'release-heap-locks', configuration: '1AppVM', trials: 40 },
  { step: 'retry-hypercalls', configuration: '1AppVM', trials: 20 },
  { step: 'reprogram-timers', configuration: '1AppVM', trials: 40 },
  { step: 'release-static-locks', configuration: '1AppVM', trials: 30 },
  // 1AppVM's fail-stop faults rarely leave the scheduler's views disagreeing; 3AppVM's do
  { step: 'scheduler-consistency', configuration: '3AppVM', trials: 60 },
] as const;

describe('triage rediscovers known repairs', () => {
  for (const { step, configuration, trials } of cases) {
    it(`${step}: switched off, the largest cluster is repaired by it and restores the state it repairs`, async () => {
      const definition = recoverySteps.find((candidate) => candidate.name === step);
      if (definition === undefined) throw new Error(`no step ${step}`);
      expect(definition.repairs?.length).toBeGreaterThan(0);
      const campaign = campaignOf(
        { name: `without-${step}`, seed: 7, configurations: [configuration], faults: { failstop: trials }, mechanisms: [{ name: 'microreset', disable: [step] }] },
        'test',
      );
      const out = temporaryDirectory();
      const ran = await runCampaign(campaign, { outDirectory: out, workers: 1, resume: false });
      expect(ran.kind).toBe('completed');
      const triaged = await triageDirectory(out, { workers: 1 });
      if (triaged.kind !== 'completed') throw new Error('triage was interrupted');
      const largest = triaged.triage.clusters[0];
      expect(largest, 'no failed recovery to triage').toBeDefined();
      expect(largest.repairedBy).toContain(step);
      expect(largest.restoring.some((kind) => stepRepairs(definition, kind)), `restoring set ${largest.restoring.join(', ')}`).toBe(true);
    }, 120_000);
  }
});
