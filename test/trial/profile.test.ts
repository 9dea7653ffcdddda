/**
 * The golden run's profile counts what the machine executed: every hypervisor instruction once,
 * by routine, and under the locks the executing CPU held.
 */
import { describe, expect, it } from 'vitest';
import { getConfiguration } from '../../src/guests/configurations.js';
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
    // each share is rounded to four decimals
    expect(perCpuLocks.any).toBeLessThanOrEqual(perCpuLocks.schedule + perCpuLocks.timers + 0.0002);
    expect(staticLocks.any).toBeLessThan(0.01);
  });

  it('says what a fail-stop on each instruction would leave for the repairs: a hypercall, a lock, an interrupt, or nothing', () => {
    if (profile === undefined) throw new Error('no profile');
    const { exposure, perCpuLocks, routines } = profile;
    // mmu_update runs inside a hypercall and under the domain's big lock
    expect(exposure.hypercall).toBeGreaterThanOrEqual(routines.do_mmu_update);
    expect(exposure.lockHeld).toBeGreaterThanOrEqual(perCpuLocks.any);
    for (const share of Object.values(exposure)) expect(share).toBeGreaterThanOrEqual(0);
    // the idle loop holds nothing: at least its instructions leave nothing behind
    expect(exposure.none).toBeGreaterThanOrEqual(routines.idle_loop);
    expect(exposure.none).toBeLessThanOrEqual(1 - Math.max(exposure.hypercall, exposure.lockHeld, exposure.interruptInService) + 0.0002);
  });

  it('measures the share of the CPUs\' time spent in the hypervisor: a small one, the guests run most of it', () => {
    if (profile === undefined) throw new Error('no profile');
    const cpus = getConfiguration('1AppVM').cpuCount;
    expect(profile.hypervisorTimeShare).toBeCloseTo(report.hypervisorInstructions / (report.simulatedNs * cpus), 5);
    expect(profile.hypervisorTimeShare).toBeGreaterThan(0);
    expect(profile.hypervisorTimeShare).toBeLessThan(0.01);
  });

  it('is only measured when asked for, as it slows the run', () => {
    expect(runGolden({ configuration: '1AppVM', seed: 3, runLengthNs: 10_000_000 }).profile).toBeUndefined();
  });
});
