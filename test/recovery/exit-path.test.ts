/**
 * The way back to a guest takes the domain's pending events without a lock, as Xen's
 * test_all_events reads the guest's pending bits (their senders set them with an atomic set_bit,
 * under the event lock that orders the senders): a thread abandoned there leaves no lock behind.
 */
import { describe, expect, it } from 'vitest';
import { MAX_DOMAINS } from '../../src/hypervisor/abi.js';
import { CPU_LOCKS_POINTER, DOMAIN_TABLE, cpuHeapLocks, domainHeapLocks } from '../../src/hypervisor/layout.js';
import { System } from '../../src/trial/system.js';
import { MS, ONE_APP_VM, UNIXBENCH_CPU, expectRecovered, failstopAt, findPoint, findPoints, recoverFrom, type PointView } from './scenario.js';

/** The first instruction of the exit path's exchange of the pending events with 0. */
const TAKE_EVENTS = new System(ONE_APP_VM).hypervisor.label('return_to_guest.take_events');

/** The locks `cpu` holds: any CPU's schedule or timer lock, any live domain's big or event lock. */
function locksHeldBy({ system, words }: PointView, cpu: number): string[] {
  const domains = Array.from({ length: MAX_DOMAINS }, (_, id) => ({ id, domain: words[DOMAIN_TABLE + id] })).filter(({ domain }) => domain !== 0);
  const locks = [...cpuHeapLocks(words[CPU_LOCKS_POINTER], system.machine.cpus.length), ...domainHeapLocks(domains)];
  return locks.filter(({ address }) => words[address] === cpu + 1).map(({ name }) => name);
}

describe('the exit path', () => {
  it('holds no lock at any instruction of UnixBench\'s CPU on its way back to the guest, taking the events included', () => {
    const views: { programCounter: number; held: string[] }[] = [];
    findPoints(
      { options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['return_to_guest'], at: () => true },
      (view) => {
        views.push({ programCounter: view.cpu.programCounter, held: locksHeldBy(view, UNIXBENCH_CPU) });
        return views.length >= 300;
      },
    );
    expect(views.filter(({ held }) => held.length > 0)).toEqual([]);
    // the walk went through the events' exchange, more than once
    expect(views.filter(({ programCounter }) => programCounter === TAKE_EVENTS).length).toBeGreaterThan(1);
  });

  it('a fail-stop while it takes the events is recovered without releasing heap locks', () => {
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['return_to_guest'],
      at: (view) => view.cpu.programCounter === TAKE_EVENTS + 1,
    });
    expectRecovered(recoverFrom(failstopAt(at), 'microreset', ['release-heap-locks']));
    expectRecovered(recoverFrom(failstopAt(at), 'microreboot', ['release-heap-locks']));
  });
});
