/**
 * The procedure rediscovers known repairs: for each of five microreset repairs (a sixth is not
 * shown on this model: see notShown), a small campaign with that one step switched off, triaged,
 * finds the step its largest finding: the clusters with the step in their `repairedBy` hold more
 * failed recoveries than any other cluster does, and a restoring set of those clusters names state the
 * step declares it repairs (the step definition's own `repairs`, not a pinned outcome). Campaigns
 * are as small as shows it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runCampaign } from '../../src/campaign/runner.js';
import { campaignOf } from '../../src/campaign/spec.js';
import { stepRepairs } from '../../src/campaign/triage/cluster.js';
import { triageDirectory } from '../../src/campaign/triage/run.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import { removeTemporaryDirectories, temporaryDirectory } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

/**
 * The configuration and fail-stop trials that show each step (fail-stop faults are all detected).
 * Since recovery starts in the machine (issue 15), some failures come with every step on (a
 * scheduler left mid-switch, a corrupted resume token), and a held lock shows as several causes
 * (a watchdog hang, a guest timed out, the PrivVM's timer), each its own cluster: what the step
 * repairs is counted over its clusters, and the campaigns are large enough for that to lead.
 */
const cases = [
  { step: 'clear-irq-count', configuration: '1AppVM', trials: 8 },
  // the per-CPU schedule and timer locks are in the heap now, beside the domains' locks
  { step: 'release-heap-locks', configuration: '1AppVM', trials: 150 },
  { step: 'retry-hypercalls', configuration: '1AppVM', trials: 20 },
  { step: 'reprogram-timers', configuration: '1AppVM', trials: 150 },
  // 1AppVM's fail-stop faults rarely leave the scheduler's views disagreeing; 3AppVM's do
  { step: 'scheduler-consistency', configuration: '3AppVM', trials: 110 },
] as const;

/**
 * Not shown on the current model: the static locks are only the domain list's (taken by domctl,
 * which no configuration calls before recovery) and the time lock (held for three instructions
 * of the 50 ms time sync), so no small campaign's fault leaves one held (300 register and 200
 * fail-stop trials of 1AppVM, 80 fail-stop of 3AppVM: no failure repaired by the step). The
 * schedule and timer locks it used to release moved to the heap with issue 15.
 */
const notShown = ['release-static-locks'] as const;

describe('triage rediscovers known repairs', () => {
  for (const { step, configuration, trials } of cases) {
    it(`${step}: switched off, the failed recoveries it repairs outnumber any other cluster, and restore the state it repairs`, async () => {
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
      const { failed, clusters } = triaged.triage;
      expect(failed, 'no failed recovery to triage').toBeGreaterThan(0);
      const repaired = clusters.filter((cluster) => cluster.repairedBy.includes(step));
      const largestOther = Math.max(0, ...clusters.filter((cluster) => !repaired.includes(cluster)).map((cluster) => cluster.count));
      expect(repaired.reduce((sum, cluster) => sum + cluster.count, 0)).toBeGreaterThan(largestOther);
      const restoring = repaired.flatMap((cluster) => cluster.restoring);
      expect(restoring.some((kind) => stepRepairs(definition, kind)), `restoring sets ${restoring.join(', ')}`).toBe(true);
    }, 300_000);
  }
  for (const step of notShown) it.todo(`${step}: no small campaign leaves a static lock held on this model (see notShown)`);
});
