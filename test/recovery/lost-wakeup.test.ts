/**
 * What no repair gives back: a wake-up. UnixBench blocks until its one-shot timer fires; the
 * timer softirq takes the timer off its list and sends the timer event, which sets the port
 * pending and calls vcpu_wake. A thread abandoned in vcpu_wake before the vCPU is made runnable
 * leaves the event pending on a vCPU that stays blocked: neither mechanism re-arms a one-shot
 * timer that has fired or wakes a blocked vCPU because an event is pending (Xen's `vcpu_block`
 * checks for events only as the vCPU blocks), so UnixBench waits for a timer that never comes, as a
 * Linux guest whose one-shot timer event is lost stalls.
 */
import { describe, expect, it } from 'vitest';
import { PORT_TIMER } from '../../src/hypervisor/abi.js';
import { DOMAIN_TABLE, Domain, RUN_STATE_BLOCKED, Vcpu } from '../../src/hypervisor/layout.js';
import { MS, ONE_APP_VM, UNIXBENCH_CPU, expectRecoveryFailed, failstopAt, findPoint, recoverFrom, type MechanismChoice, type PointView } from './scenario.js';

/** UnixBench's domain id in 1AppVM (the PrivVM is 0). */
const UNIXBENCH_DOMAIN = 1;

function unixBench({ system, words }: Pick<PointView, 'system' | 'words'>): { domain: number; vcpu: number } {
  return { domain: words[DOMAIN_TABLE + UNIXBENCH_DOMAIN], vcpu: system.hypervisor.layout.vcpus[UNIXBENCH_DOMAIN] };
}

/** vcpu_wake has been called for UnixBench's vCPU, blocked, with its timer event already pending. */
function wakingOnTimer(view: PointView): boolean {
  const { domain, vcpu } = unixBench(view);
  const argument = view.cpu.registers[0];
  const timerPending = (view.words[domain + Domain.offset.pendingEvents] & (1 << PORT_TIMER)) !== 0;
  return argument === vcpu && view.words[vcpu + Vcpu.offset.runState] === RUN_STATE_BLOCKED && timerPending;
}

describe('a wake-up lost with its thread', () => {
  const at = findPoint({ options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['vcpu_wake'], at: wakingOnTimer });

  it.each<MechanismChoice>(['microreset', 'microreboot'])('%s with every repair: UnixBench stays blocked with its timer event pending and fails on the timer that never fires', (mechanism) => {
    const detected = failstopAt(at);
    expectRecoveryFailed(recoverFrom(detected, mechanism), 'appVmFailed', /^unixbench: set_timer_op never fired: no PORT_TIMER within 50 ms of its deadline/);
    const words = detected.system.machine.memory.words;
    const { domain, vcpu } = unixBench({ system: detected.system, words });
    expect(words[vcpu + Vcpu.offset.runState]).toBe(RUN_STATE_BLOCKED);
    expect(words[domain + Domain.offset.pendingEvents] & (1 << PORT_TIMER)).not.toBe(0);
  });

  it('the same fail-stop a few instructions later, once the vCPU is runnable, is recovered: only the window before the run state changes loses the wake-up', () => {
    const later = findPoint({
      options: ONE_APP_VM,
      afterNs: at.timeNs - 1_000,
      cpu: UNIXBENCH_CPU,
      routines: ['vcpu_wake'],
      at: (view) => {
        const { vcpu } = unixBench(view);
        return view.cpu.registers[0] === vcpu && view.words[vcpu + Vcpu.offset.runState] !== RUN_STATE_BLOCKED;
      },
    });
    expect(later.timeNs).toBeGreaterThan(at.timeNs);
    expect(recoverFrom(failstopAt(later), 'microreset').result).toBe('recovered');
  });
});
