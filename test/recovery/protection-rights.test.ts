/**
 * Recovery of a hypervisor built with protection keys: a thread discarded while it held a lock
 * leaves its CPU's rights open to that lock's domain, and a microreboot's fresh instance zeroes
 * every CPU's counts (its own data closed to it); reset-protection-rights sets both right.
 */
import { describe, expect, it } from 'vitest';
import { perCpuAddress } from '../../src/hypervisor/layout.js';
import { BOOT_SEED, OPEN_COUNTS_OFFSET, idleCounts, pkruForCounts } from '../../src/hypervisor/protection-domains.js';
import { MS, UNIXBENCH_CPU, expectRecovered, expectRecoveryFailed, failstopAt, findPoint, recoverFrom, workOf, type Point } from './scenario.js';

const KEYED = { configuration: '1AppVM', seed: 5, runLengthNs: 600 * MS, protectionKeys: true };

/** UnixBench's CPU inside a routine that holds a lock: its counts open more than its own domain. */
function holdingALock(): Point {
  return findPoint({
    options: KEYED,
    afterNs: 30 * MS,
    cpu: UNIXBENCH_CPU,
    routines: ['do_mmu_update', 'do_sched_op', 'set_timer', 'kill_timer', 'evtchn_send', 'vcpu_wake', 'schedule', 'timer_softirq'],
    at: ({ words }) => words[perCpuAddress(UNIXBENCH_CPU) + OPEN_COUNTS_OFFSET] !== idleCounts(UNIXBENCH_CPU, BOOT_SEED),
  });
}

describe('reset-protection-rights', () => {
  const at = holdingALock();

  it('microreset: the discarded thread\'s open domain is closed again, and the system recovers', () => {
    const detected = failstopAt(at);
    const record = recoverFrom(detected, 'microreset');
    expectRecovered(record);
    expect(workOf(record, 'reset-protection-rights')).toEqual({ cpusCorrected: 1 });
  });

  it('microreset without it: recovery still succeeds, but the CPU keeps the lock\'s domain open (a weaker detector, not a failure)', () => {
    const detected = failstopAt(at);
    const record = recoverFrom(detected, 'microreset', ['reset-protection-rights']);
    expectRecovered(record);
    expect(workOf(record, 'reset-protection-rights')).toBeUndefined();
    const cpu = detected.system.machine.cpus[UNIXBENCH_CPU];
    expect(cpu.pkru).not.toBe(pkruForCounts(idleCounts(UNIXBENCH_CPU, BOOT_SEED)));
  });

  it('microreboot: the fresh instance\'s counts are set to each CPU\'s own domain, and the system recovers', () => {
    const record = recoverFrom(failstopAt(at), 'microreboot');
    expectRecovered(record);
    expect(workOf(record, 'reset-protection-rights')?.cpusCorrected).toBeGreaterThanOrEqual(1);
  });

  it('microreboot without it: a CPU\'s own data is closed to it, and its next write there traps', () => {
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreboot', ['reset-protection-rights']), 'secondFailure', /protectionKey/);
  });
});
