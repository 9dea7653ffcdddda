/** Each guest notices when the (fake) hypervisor or the I/O path gives a wrong answer. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_NO_DOMAIN, ERROR_NO_MEMORY, Hypercall } from '../../src/hypervisor/abi.js';
import { Disk, Nic, type DiskCompletion } from '../../src/guests/devices.js';
import type { GuestVerdict } from '../../src/guests/kernel.js';
import type { CallInfo } from './fake-hypervisor.js';
import { TestSystem } from './system.js';

const MS = 1_000_000;
const seeds = fc.integer({ min: 0, max: 0x7fffffff });

function expectFailed(verdict: GuestVerdict, reason: RegExp): { reason: string; atNs: number } {
  expect(verdict.kind).toBe('failed');
  if (verdict.kind !== 'failed') throw new Error('unreachable');
  expect(verdict.reason).toMatch(reason);
  return verdict;
}

/** Alters the answer of the `ordinal`-th call (1-based) that `matches`, and remembers when. */
function alterOnce(matches: (call: CallInfo) => boolean, ordinal: number, alter: (value: number) => number) {
  let seen = 0;
  const altered: { atNs: number | null } = { atNs: null };
  const hook = (call: CallInfo, value: number): number => {
    if (!matches(call) || ++seen !== ordinal) return value;
    altered.atNs = call.nowNs;
    return alter(value);
  };
  return { hook, altered };
}

describe('UnixBench detects', () => {
  it('any wrong use count returned by one mmu_update, at the time of that answer', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: -3, max: 3 }).filter((delta) => delta !== 0), (seed, ordinal, delta) => {
        const { hook, altered } = alterOnce((call) => call.domainId === 1 && call.hypercall === Hypercall.MmuUpdate, ordinal, (value) => value + delta);
        const system = new TestSystem({ configuration: '1AppVM', seed, tamper: { returnValue: hook } });
        system.run();
        expect(altered.atNs).not.toBeNull();
        const failure = expectFailed(system.kernelOfKind('unixbench').verdict(system.runLengthNs), /^mmu_update\(slot \d+, frame \d+\) returned (use count|error)/);
        expect(failure.atNs - altered.atNs!).toBeLessThanOrEqual(2_000);
        expect(system.kernelOfKind('privvm').verdict(system.runLengthNs)).toEqual({ kind: 'correct' });
      }),
      { numRuns: 20 },
    );
  });

  it('a multicall entry whose result was altered', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 1, max: 300 }), (seed, ordinal) => {
        let seen = 0;
        const system = new TestSystem({
          configuration: '1AppVM',
          seed,
          tamper: { multicallResult: (call, value) => (call.index === 1 && ++seen === ordinal ? value + 1 : value) },
        });
        system.run();
        expectFailed(system.kernelOfKind('unixbench').verdict(system.runLengthNs), /^multicall entry 1 mmu_update\(slot \d+, frame \d+\) result \d+, expected \d+/);
      }),
      { numRuns: 10 },
    );
  });

  it('an error code where success was due', () => {
    const { hook } = alterOnce((call) => call.domainId === 1 && call.hypercall === Hypercall.SchedOp, 10, () => -22);
    const system = new TestSystem({ configuration: '1AppVM', seed: 11, tamper: { returnValue: hook } });
    system.run();
    expectFailed(system.kernelOfKind('unixbench').verdict(system.runLengthNs), /^sched_op\([01], 0, 0\) returned error -22$/);
  });

  it('a timer that never fires', () => {
    const system = new TestSystem({ configuration: '1AppVM', seed: 12, tamper: { dropTimer: (domainId, nowNs) => domainId === 1 && nowNs > 200 * MS } });
    system.run();
    const failure = expectFailed(system.kernelOfKind('unixbench').verdict(system.runLengthNs), /^set_timer_op never fired: no PORT_TIMER within 50 ms/);
    expect(failure.atNs).toBeGreaterThan(200 * MS);
    expect(failure.atNs).toBeLessThan(260 * MS);
  });
});

/** A disk that returns wrong data for its `ordinal`-th read. */
class LyingDisk extends Disk {
  reads = 0;
  lied = false;
  ordinal = 1;

  override completed(nowNs: number): DiskCompletion[] {
    return super.completed(nowNs).map((completion) => {
      if (completion.operation !== 'read' || ++this.reads !== this.ordinal) return completion;
      this.lied = true;
      return { ...completion, data: completion.data ^ 0x100 };
    });
  }
}

/** A disk that loses one completion (the request never comes back). */
class LosingDisk extends Disk {
  override completed(nowNs: number): DiskCompletion[] {
    return super.completed(nowNs).filter((completion) => completion.id !== 40);
  }
}

describe('BlkBench detects', () => {
  it('a read that returns wrong data', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 1, max: 60 }), (seed, ordinal) => {
        let disk: LyingDisk | undefined;
        const system = new TestSystem({
          configuration: '1AppVM-blk',
          seed,
          makeDisk: (options) => {
            disk = new LyingDisk(options);
            disk.ordinal = ordinal;
            return disk;
          },
        });
        system.run();
        expect(disk!.lied).toBe(true);
        expectFailed(system.kernelOfKind('blkbench').verdict(system.runLengthNs), /^read block \d+ \(request \d+\): read -?\d+, expected -?\d+$/);
      }),
      { numRuns: 10 },
    );
  });

  it('a lost request: it waits for the response until it times out, a progress window after its last step', () => {
    const system = new TestSystem({ configuration: '1AppVM-blk', seed: 21, makeDisk: (options) => new LosingDisk(options) });
    system.run();
    const failure = expectFailed(system.kernelOfKind('blkbench').verdict(system.runLengthNs), /^timed out: no progress for more than 100 ms/);
    expect(failure.atNs).toBeLessThan(system.runLengthNs);
    expect(system.kernelOfKind('blkbench').summary().finished).toBe(0);
  });

  it('an error returned by its ring notification', () => {
    const { hook } = alterOnce((call) => call.domainId === 1 && call.hypercall === Hypercall.EventChannelOp, 5, () => ERROR_NO_DOMAIN);
    const system = new TestSystem({ configuration: '1AppVM-blk', seed: 23, tamper: { returnValue: hook } });
    system.run();
    expectFailed(system.kernelOfKind('blkbench').verdict(system.runLengthNs), /^event_channel_op\(0, 9, 0\) returned error -3$/);
  });

  it('a crash of its context', () => {
    const system = new TestSystem({ configuration: '1AppVM-blk', seed: 22 });
    system.run(10 * MS);
    system.kernelOfKind('blkbench').crash('resume token mismatch', 10 * MS);
    system.run();
    const verdict = system.kernelOfKind('blkbench').verdict(system.runLengthNs);
    expect(verdict).toEqual({ kind: 'failed', reason: 'crashed: resume token mismatch', atNs: 10 * MS });
  });
});

/** A NIC whose replies for some pings never leave. */
function droppingNic(dropped: (pingId: number) => boolean) {
  return (options: ConstructorParameters<typeof Nic>[0]): Nic =>
    new (class extends Nic {
      override transmit(pingId: number, data: number, nowNs: number): void {
        if (!dropped(pingId)) super.transmit(pingId, data, nowNs);
      }
    })(options);
}

describe('NetBench', () => {
  it('fails when more than 10% of a window is lost', () => {
    const system = new TestSystem({ configuration: '3AppVM', seed: 31, makeNic: droppingNic((pingId) => pingId >= 1200 && pingId < 1350) });
    system.run();
    const failure = expectFailed(system.netBench().verdict(system.runLengthNs), /^window 1 .*150 of 1000 pings/);
    expect(failure.atNs).toBe(1301 * MS + 10 * MS);
    expect(system.netBench().summary()).toMatchObject({ window1Lost: 150, window0Lost: 0, window2Lost: 0 });
  });

  it('passes with 10% lost', () => {
    const system = new TestSystem({ configuration: '3AppVM', seed: 32, makeNic: droppingNic((pingId) => pingId >= 1200 && pingId < 1300) });
    system.run();
    expect(system.netBench().verdict(system.runLengthNs)).toEqual({ kind: 'correct' });
  });

  it('excludes a service interruption as downtime, but strict mode counts it', () => {
    const interruption = { startNs: 1_200 * MS, endNs: 1_400 * MS };
    const build = (): TestSystem => new TestSystem({ configuration: '3AppVM', seed: 33, pauses: [interruption] });

    const lenient = build();
    lenient.run();
    lenient.netBench().setServiceInterruptions([interruption]);
    expect(lenient.netBench().verdict(lenient.runLengthNs)).toEqual({ kind: 'correct' });
    const summary = lenient.netBench().summary();
    expect(summary.downtimeLosses).toBe(200);
    expect(summary.window1Lost).toBeLessThanOrEqual(2);

    const strict = build();
    strict.run();
    strict.netBench().setServiceInterruptions([interruption], true);
    expectFailed(strict.netBench().verdict(strict.runLengthNs), /^window 1 /);
    // The other guests were only paused, and told so as a recovery tells them: nothing else failed.
    for (const domain of [0, 1]) {
      strict.kernel(domain).setServiceInterruptions([interruption]);
      expect(strict.kernel(domain).verdict(strict.runLengthNs)).toEqual({ kind: 'correct' });
    }
  });
});

describe('PrivVM', () => {
  it('fails when the toolstack cannot create a domain', () => {
    const system = new TestSystem({ configuration: '3AppVM', seed: 41, createDomainError: ERROR_NO_MEMORY, runLengthNs: 100 * MS });
    system.run(50 * MS);
    system.privVm.requestCreateDomain(3);
    system.run();
    expectFailed(system.privVm.verdict(system.runLengthNs), /^domctl\(create, cpu 3\) failed: returned -12$/);
    expect(system.createdDomains).toEqual([]);
  });

  it('fails when its periodic timer is lost', () => {
    const system = new TestSystem({ configuration: '1AppVM', seed: 42, tamper: { dropTimer: (domainId, nowNs) => domainId === 0 && nowNs > 500 * MS } });
    system.run();
    expectFailed(system.privVm.verdict(system.runLengthNs), /^periodic timer never fired/);
  });
});
