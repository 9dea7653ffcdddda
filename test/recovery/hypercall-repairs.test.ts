/**
 * The repairs for hypercalls and the state they change, in both mechanisms (ReHype needed them
 * and NiLiHype kept them): hypercall retry, undo of logged partial updates, the frame-table pass,
 * and the release of heap locks. Each test stops UnixBench's CPU inside mmu_update at the point
 * where the inconsistency exists, lands a failstop there, and recovers with and without the step.
 * mmu_update holds its domain's page-table page page-locked while it logs and takes its steps, so
 * undo alone never saves a retry there: only the frame-table pass clears the lock.
 */
import { describe, expect, it } from 'vitest';
import { FRAMES_PER_DOMAIN, Hypercall, PAGE_TABLE_SLOTS, SCHEDOP_BLOCK, firstFrameOf } from '../../src/hypervisor/abi.js';
import { frameField } from '../../src/hypervisor/frames.js';
import { Domain, FRAME_TABLE_POINTER, MMU_LOG_GET_NEW, MMU_LOG_IDLE, MMU_LOG_PUT_OLD, MMU_LOG_WRITE_ENTRY, Vcpu } from '../../src/hypervisor/layout.js';
import { FLAG_INTERRUPT_ENABLE } from '../../src/machine/isa.js';
import {
  MS,
  ONE_APP_VM,
  UNIXBENCH_CPU,
  expectRecovered,
  expectRecoveryFailed,
  failstopAt,
  findPoint,
  findPoints,
  restoredSystem,
  recoverFrom,
  workOf,
  type MechanismChoice,
  type Point,
  type PointView,
} from './scenario.js';

const mechanisms: readonly MechanismChoice[] = ['microreset', 'microreboot'];

/** The first point, 100 ms into a 1AppVM run, where UnixBench's CPU is in do_mmu_update and `at` holds. */
function insideMmuUpdate(at: (view: PointView) => boolean): Point {
  return findPoint({ options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['do_mmu_update'], at });
}

/** The calling vCPU's domain, in do_mmu_update (r8 holds the vCPU). */
function domainOf({ cpu, words }: PointView): number {
  return words[cpu.registers[8] + Vcpu.offset.domain];
}

function useCountOf({ words }: PointView, frame: number): number {
  return words[frameField(words[FRAME_TABLE_POINTER], frame, 'useCount')];
}

function referencesTo(view: PointView, frame: number): number {
  const table = domainOf(view) + Domain.offset.pageTable;
  let count = 0;
  for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) if (view.words[table + slot] === frame) count++;
  return count;
}

/** The calling domain's guest frames whose use count is not the number of its page-table entries that reference them. */
function framesMiscounted(view: PointView): number {
  const id = view.words[domainOf(view) + Domain.offset.id];
  let miscounted = 0;
  for (let frame = firstFrameOf(id); frame < firstFrameOf(id) + FRAMES_PER_DOMAIN; frame++) {
    if (useCountOf(view, frame) !== referencesTo(view, frame)) miscounted++;
  }
  return miscounted;
}

/** The calling domain's page-table page is page-locked (by this update: the domain's big lock is held). */
function pageLocked(view: PointView): boolean {
  const frame = view.words[domainOf(view) + Domain.offset.pageTableFrame];
  return view.words[frameField(view.words[FRAME_TABLE_POINTER], frame, 'locked')] !== 0;
}

/** The system stopped at `point`, to look at. */
function viewAt(point: Point): PointView {
  const system = restoredSystem(point);
  return { system, cpu: system.machine.cpus[point.cpu], words: system.machine.memory.words };
}

/** mmu_update has logged its reference to the new frame (stage GET_NEW, with the count before it) and taken it. */
function newReferenceTaken(): Point {
  return insideMmuUpdate((view) => {
    const frame = view.cpu.registers[3];
    if (frame === 0 || view.words[view.cpu.registers[8] + Vcpu.offset.mmuLogStage] !== MMU_LOG_GET_NEW) return false;
    return useCountOf(view, frame) === referencesTo(view, frame) + 1;
  });
}

describe('retry-hypercalls', () => {
  // mmu_update (hypercall 0) mapping a frame has entered its handler and changed nothing yet.
  const point = () =>
    insideMmuUpdate((view) =>
      view.words[view.cpu.registers[8] + Vcpu.offset.hypercallNumber] === Hypercall.MmuUpdate &&
      view.cpu.registers[3] !== 0 &&
      view.words[domainOf(view) + Domain.offset.lock] === 0);

  it.each(mechanisms)('%s: without it the guest sees the hypercall number (0) as mmu_update\'s use count and fails', (mechanism) => {
    const at = point();
    const without = recoverFrom(failstopAt(at), mechanism, ['retry-hypercalls']);
    expectRecoveryFailed(without, 'appVmFailed', /^unixbench: mmu_update\(slot \d+, frame \d+\) returned use count 0, expected [1-9]/);
    expect(without.failedVms.map((vm) => vm.domainId)).toEqual([1]);

    const withIt = recoverFrom(failstopAt(at), mechanism);
    expectRecovered(withIt);
    expect(workOf(withIt, 'retry-hypercalls')).toEqual({ hypercallsRewound: 1 });
  });

  it.each(mechanisms)('%s: a sched_op(block) cut short returns the hypercall number (2), and the guest BUG()s as Linux\'s xen_safe_halt does', (mechanism) => {
    // UnixBench waits for its timer: sched_op(block) has entered its handler
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['do_sched_op'],
      at: ({ cpu, words }) => words[cpu.registers[8] + Vcpu.offset.hypercallNumber] === Hypercall.SchedOp && words[cpu.registers[8] + Vcpu.offset.hypercallArguments] === SCHEDOP_BLOCK,
    });
    const without = recoverFrom(failstopAt(at), mechanism, ['retry-hypercalls']);
    expectRecoveryFailed(without, 'appVmFailed', /^unixbench: crashed: BUG\(\) in xen_safe_halt: sched_op\(block\) returned 2$/);

    const withIt = recoverFrom(failstopAt(at), mechanism);
    expectRecovered(withIt);
    expect(workOf(withIt, 'retry-hypercalls')).toEqual({ hypercallsRewound: 1 });
  });
});

describe('undo-partial-updates', () => {
  const point = newReferenceTaken;

  it.each(mechanisms)('%s: it puts the half-done update back, leaving the frame-table pass only the page-table page; without it the pass recounts the guest frame too', (mechanism) => {
    const at = point();
    const withIt = recoverFrom(failstopAt(at), mechanism);
    expectRecovered(withIt);
    expect(workOf(withIt, 'undo-partial-updates')).toEqual({ updatesUndone: 1 });
    expect(workOf(withIt, 'frame-table-pass')).toMatchObject({ framesFixed: 1 });

    const without = recoverFrom(failstopAt(at), mechanism, ['undo-partial-updates']);
    expectRecovered(without);
    expect(workOf(without, 'frame-table-pass')).toMatchObject({ framesFixed: 2 });
  });

  it('the log is written ahead of each step: wherever under the page lock a failstop lands, undo puts every guest frame right, and the pass has only the page-table page left to fix', () => {
    // an update that maps a frame over a mapped one, so it takes all three steps; a point after
    // each of its instructions from the page lock taken to the page lock released
    const points = findPoints(
      {
        options: ONE_APP_VM,
        afterNs: 100 * MS,
        cpu: UNIXBENCH_CPU,
        routines: ['do_mmu_update'],
        at: (view) =>
          view.cpu.registers[3] !== 0 &&
          pageLocked(view) &&
          view.words[domainOf(view) + Domain.offset.pageTable + view.cpu.registers[2]] !== 0,
      },
      (view) => !pageLocked(view),
    );
    // the points cover every logged step, and at some the counts disagree with the page tables
    const views = points.map(viewAt);
    const stages = new Set(views.map((view) => view.words[view.cpu.registers[8] + Vcpu.offset.mmuLogStage]));
    expect([...stages].sort()).toEqual([MMU_LOG_IDLE, MMU_LOG_GET_NEW, MMU_LOG_WRITE_ENTRY, MMU_LOG_PUT_OLD]);
    expect(views.filter((view) => framesMiscounted(view) > 0).length).toBeGreaterThan(0);
    for (const at of points) {
      const record = recoverFrom(failstopAt(at), 'microreset');
      expectRecovered(record);
      expect(workOf(record, 'frame-table-pass')).toMatchObject({ framesFixed: 1 });
    }
  });
});

describe('frame-table-pass', () => {
  // the same half-done update as undo's: mmu_update holds the page lock on the domain's page-table page
  const point = newReferenceTaken;

  it('microreset: without it the retried update spins on the page lock the abandoned one left set, and the watchdog declares a hang', () => {
    const at = point();
    expect(pageLocked(viewAt(at))).toBe(true);
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['frame-table-pass']), 'secondFailure', /^watchdog hang on cpu 1$/);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'frame-table-pass')).toMatchObject({ framesFixed: 1 });
  });

  it('microreboot: the boot keeps the frame table as it is, so the page stays locked without it', () => {
    const at = point();
    // the same spin; as with a heap lock left held, UnixBench, kept off its CPU, times out first
    const without = recoverFrom(failstopAt(at), 'microreboot', ['frame-table-pass']);
    expectRecoveryFailed(without, 'appVmFailed', /^unixbench: timed out: no progress for more than 100 ms/);
    expectRecovered(recoverFrom(failstopAt(at), 'microreboot'));
  });
});

describe('release-heap-locks', () => {
  // mmu_update holds its domain's lock (owner = CPU index + 1).
  const point = () =>
    insideMmuUpdate((view) => view.words[domainOf(view) + Domain.offset.lock] === UNIXBENCH_CPU + 1);

  it('the lock mmu_update holds is the domain\'s big lock, taken with interrupts enabled as Xen\'s LOCK_BIGLOCK: an interrupt or the recovery IPI can stop its holder', () => {
    const at = point();
    expect(at.snapshot.machine.cpus[UNIXBENCH_CPU].flags & FLAG_INTERRUPT_ENABLE).not.toBe(0);
  });

  it('microreset: without it UnixBench\'s CPU spins on the lock on its way back to the guest, and the watchdog declares a hang', () => {
    const at = point();
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['release-heap-locks']), 'secondFailure', /^watchdog hang on cpu 1$/);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'release-heap-locks')).toEqual({ locksReleased: 1 });
  });

  it('microreboot: the boot keeps heap structures as they are, so the lock stays held without it', () => {
    const at = point();
    // The same spin; the liveness phase ends before the watchdog's third strike (the boot's
    // late recurring timers ran at once on release and moved the watchdog counter), but
    // UnixBench, kept off its CPU, times out.
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreboot', ['release-heap-locks']), 'appVmFailed', /^unixbench: timed out: no progress for more than 100 ms/);
    const withIt = recoverFrom(failstopAt(at), 'microreboot');
    expectRecovered(withIt);
    expect(workOf(withIt, 'release-heap-locks')).toEqual({ locksReleased: 1 });
  });
});

