/**
 * A trial found to follow the golden run stops there and takes the golden run's end state with
 * its own code words (src/trial/follow.ts). Running such trials to the end must give the same
 * record and the same final state, byte for byte.
 */
import { describe, expect, it } from 'vitest';
import type { TrialSpec } from '../../src/trial/record.js';
import { builtApi, runBuiltCli } from '../check/built.js';

const SEARCHED = 80;
const CHECKED = 4;

describe('following the golden run', () => {
  it('gives the record and final state that running to the end gives', async () => {
    const { runTrial } = await builtApi();
    const specOf = (trialIndex: number): TrialSpec => ({ configuration: '1AppVM', seed: 11, trialIndex, faultType: 'code', mechanism: 'microreset' });
    const followed: number[] = [];
    for (let trialIndex = 0; trialIndex < SEARCHED && followed.length < CHECKED; trialIndex++) {
      if (runTrial(specOf(trialIndex)).followedGoldenFromNs !== undefined) followed.push(trialIndex);
    }
    expect(followed.length).toBe(CHECKED);
    for (const trialIndex of followed) {
      const finalDigest = (followGolden: boolean): { record: string; digest: string } => {
        let digest = '';
        const result = runTrial(specOf(trialIndex), { followGolden, onFinished: (system) => (digest = system.digest()) });
        return { record: JSON.stringify(result.record), digest };
      };
      expect(finalDigest(true)).toEqual(finalDigest(false));
    }
  });

  it('is reported by `ninelives inject`, and --run-to-end simulates instead with the same record', async () => {
    // the first of 1AppVM seed 11's code faults that flips a word the run never executes again
    const { runTrial } = await builtApi();
    const trialIndex = Array.from({ length: SEARCHED }, (_, index) => index).find(
      (index) => runTrial({ configuration: '1AppVM', seed: 11, trialIndex: index, faultType: 'code', mechanism: 'none' }).followedGoldenFromNs !== undefined,
    );
    expect(trialIndex).toBeDefined();
    const args = ['inject', '--config', '1AppVM', '--fault', 'code', '--seed', '11', '--trial', String(trialIndex)];
    const derived = runBuiltCli(args);
    const simulated = runBuiltCli([...args, '--run-to-end']);
    expect(derived.exitCode).toBe(0);
    expect(derived.stderr).toMatch(/^from \d+ ms the trial followed the golden run .*--run-to-end simulates it\n$/);
    expect(simulated).toEqual({ ...derived, stderr: '' });
  });
});
