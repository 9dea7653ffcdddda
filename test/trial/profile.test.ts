/**
 * The golden run's profile counts what the machine executed: every hypervisor instruction once,
 * by routine, and under the locks the executing CPU held.
 */
import { describe, expect, it } from 'vitest';
import { runGolden } from '../../src/trial/golden.js';

describe('the hypervisor profile of a golden run', () => {
  const report = runGolden({ configuration: '1AppVM', seed: 3, runLengthNs: 100_000_000 }, { profile: true });
  const profile = report.profile;

  it('counts every hypervisor instruction, once, in some routine', () => {
    if (profile === undefined) throw new Error('no profile');
    expect(profile.instructions).toBe(report.hypervisorInstructions);
    const total = Object.values(profile.routines).reduce((sum, share) => sum + share, 0);
    expect(total).toBeCloseTo(1, 2);
    // UnixBench is hypercall heavy: mmu_update is where most of the time goes
    expect(Object.keys(profile.routines)[0]).toBe('do_mmu_update');
  });

  it('finds the per-CPU schedule and timer locks held for a share of it, and the static locks hardly ever', () => {
    if (profile === undefined) throw new Error('no profile');
    const { perCpuLocks, staticLocks } = profile;
    expect(perCpuLocks.schedule).toBeGreaterThan(0);
    expect(perCpuLocks.timers).toBeGreaterThan(0);
    expect(perCpuLocks.any).toBeGreaterThanOrEqual(Math.max(perCpuLocks.schedule, perCpuLocks.timers));
    expect(perCpuLocks.any).toBeLessThanOrEqual(perCpuLocks.schedule + perCpuLocks.timers);
    expect(staticLocks.any).toBeLessThan(0.01);
  });

  it('is only measured when asked for, as it slows the run', () => {
    expect(runGolden({ configuration: '1AppVM', seed: 3, runLengthNs: 10_000_000 }).profile).toBeUndefined();
  });
});
