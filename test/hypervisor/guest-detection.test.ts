/**
 * Each guest notices when the real hypervisor's answers go wrong: the state behind an answer is
 * altered by hand in the running system, and the wrong result reaches the guest through the
 * hypervisor (a use count, a resume token, a ring response, a wake-up that never comes). The
 * hypervisor itself detects none of it: these are the silent corruptions a trial must catch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAMES_PER_DOMAIN, PRIVILEGED_DOMAIN_ID, RING_WORDS, firstFrameOf } from '../../src/hypervisor/abi.js';
import { BLOCK_READ, RingView } from '../../src/guests/protocol.js';
import type { SharedRegion } from '../../src/guests/kernel.js';
import { Domain, PerCpu, RUN_STATE_BLOCKED, Vcpu, perCpuAddress } from '../../src/hypervisor/layout.js';
import { frameField } from '../../src/hypervisor/frames.js';
import type { System } from '../../src/trial/system.js';
import { MS, US, auditInvariants, expectFailed, runToQuiescence, runUntilQuiescentWhere, startedSystem, verdictOf } from './system-helpers.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });

function runToEnd(system: System, untilNs: number): void {
  expect(system.machine.run(untilNs).kind).toBe('timeReached');
}

/** A domain's ring page in hypervisor memory, as the guests see it. */
function ringOf(system: System, domainId: number): RingView {
  const words = system.machine.memory.words;
  const base = system.hypervisor.layout.rings[domainId];
  const region: SharedRegion = {
    sizeWords: RING_WORDS,
    read: (offset) => words[base + offset],
    write: (offset, value) => {
      words[base + offset] = value;
    },
  };
  return new RingView(region);
}

describe('UnixBench', () => {
  it('reports the wrong use count when it next maps a frame whose count was bumped in the frame table', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 0, max: FRAMES_PER_DOMAIN - 1 }), (seed, index) => {
        const system = startedSystem({ configuration: '1AppVM', seed, runLengthNs: 400 * MS });
        runToQuiescence(system, 50 * MS);
        const bumpedNs = system.machine.nowNs;
        const frame = firstFrameOf(1) + index;
        system.machine.memory.words[frameField(system.hypervisor.layout.frameTable, frame, 'useCount')]++;
        runToEnd(system, system.runLengthNs);

        const failure = expectFailed(verdictOf(system, 1), /mmu_update\(slot \d+, frame \d+\) (returned use count|result) -?\d+, expected \d+$/);
        const [, failedFrame, got, expected] = /frame (\d+)\) (?:returned use count|result) (-?\d+), expected (\d+)$/.exec(failure.reason) ?? [];
        expect(Number(failedFrame)).toBe(frame);
        expect(Number(got)).toBe(Number(expected) + 1);
        expect(failure.atNs).toBeGreaterThan(bumpedNs);
        expect(system.hypervisor.detections).toEqual([]);
        expect(verdictOf(system, PRIVILEGED_DOMAIN_ID)).toEqual({ kind: 'correct' });
      }),
      { numRuns: 8 },
    );
  });

  it('BUG()s, as a Linux PV guest does, when mmu_update refuses to map a frame whose type it cannot validate', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 0, max: FRAMES_PER_DOMAIN - 1 }), (seed, index) => {
        const system = startedSystem({ configuration: '1AppVM', seed, runLengthNs: 400 * MS });
        runToQuiescence(system, 50 * MS);
        const brokenNs = system.machine.nowNs;
        const words = system.machine.memory.words;
        const field = (frame: number, name: 'useCount' | 'type'): number => frameField(system.hypervisor.layout.frameTable, frame, name);
        // a frame not mapped now (an unmap would retype a mapped one), from `index` on
        const unmapped = Array.from({ length: FRAMES_PER_DOMAIN }, (_, offset) => firstFrameOf(1) + ((index + offset) % FRAMES_PER_DOMAIN));
        const frame = unmapped.find((candidate) => words[field(candidate, 'useCount')] === 0);
        fc.pre(frame !== undefined);
        if (frame === undefined) return;
        // neither untyped nor writable: get_page_type cannot make it a writable page
        words[field(frame, 'type')] = 7;
        runToEnd(system, system.runLengthNs);

        const failure = expectFailed(verdictOf(system, 1), /mmu_update\(slot \d+, frame \d+\) (returned error|result) -22(, expected \d+)?$/);
        expect(Number(/frame (\d+)\)/.exec(failure.reason)?.[1])).toBe(frame);
        expect(failure.atNs).toBeGreaterThan(brokenNs);
        // the hypervisor refused cleanly: it detected nothing, and the halted guest asks for nothing more
        expect(system.hypervisor.detections).toEqual([]);
        expect(verdictOf(system, PRIVILEGED_DOMAIN_ID)).toEqual({ kind: 'correct' });
      }),
      { numRuns: 6 },
    );
  });
});

describe('a guest whose saved resume token was corrupted crashes when it is next entered', () => {
  const cases = [
    { configuration: '1AppVM', domainId: 1, workload: 'unixbench', otherDomain: 0 },
    { configuration: '1AppVM-blk', domainId: 1, workload: 'blkbench', otherDomain: undefined },
    { configuration: '3AppVM', domainId: 2, workload: 'netbench', otherDomain: 1 },
    { configuration: '3AppVM', domainId: 0, workload: 'privvm', otherDomain: 1 },
  ] as const;

  it.each(cases)('$workload in $configuration', ({ configuration, domainId, workload, otherDomain }) => {
    const system = startedSystem({ configuration, seed: 17 });
    expect(system.host.kernel(domainId)?.name).toBe(workload);
    const words = system.machine.memory.words;
    const vcpu = system.hypervisor.layout.vcpus[domainId];
    // While the vCPU runs, its next exit overwrites the saved token; corrupt it while blocked.
    runUntilQuiescentWhere(system, () => words[vcpu + Vcpu.offset.runState] === RUN_STATE_BLOCKED, 50 * US, 200 * MS);
    const corruptedNs = system.machine.nowNs;
    words[vcpu + Vcpu.offset.resumeToken] ^= 1 << 4;
    runToEnd(system, corruptedNs + 100 * MS);

    const failure = expectFailed(verdictOf(system, domainId), /^crashed: resume token corrupted$/);
    expect(failure.atNs).toBeGreaterThan(corruptedNs);
    expect(failure.atNs - corruptedNs).toBeLessThan(20 * MS);
    expect(system.hypervisor.detections).toEqual([]);
    // A crash is confined to its guest (NetBench's verdict needs the PrivVM, not the reverse).
    if (otherDomain !== undefined) expect(verdictOf(system, otherDomain)).toEqual({ kind: 'correct' });
  });
});

describe('BlkBench', () => {
  it('reports the wrong data of a read whose response was altered on the ring before it consumed it', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 0, max: 31 }), (seed, bit) => {
        const system = startedSystem({ configuration: '1AppVM-blk', seed });
        const ring = ringOf(system, 1);
        // A read response produced by the PrivVM and not yet consumed by BlkBench.
        const unreadReadResponse = (): boolean => {
          const producer = ring.header('responseProducer');
          return producer > ring.header('responseConsumer') && ring.request(producer - 1).operation === BLOCK_READ;
        };
        runUntilQuiescentWhere(system, unreadReadResponse, 2 * US, 500 * MS);
        const index = ring.header('responseProducer') - 1;
        const response = ring.response(index);
        const altered = response.data ^ (1 << bit);
        ring.writeResponse(index, { ...response, data: altered });
        runToEnd(system, system.runLengthNs);

        const failure = expectFailed(verdictOf(system, 1), /^read block \d+ \(request \d+\): read -?\d+, expected -?\d+$/);
        expect(failure.reason).toBe(`read block ${response.argument} (request ${response.id}): read ${altered}, expected ${response.data}`);
        expect(system.hypervisor.detections).toEqual([]);
        expect(verdictOf(system, PRIVILEGED_DOMAIN_ID)).toEqual({ kind: 'correct' });
      }),
      { numRuns: 8 },
    );
  });
});

describe('NetBench', () => {
  it('times out when the PrivVM is never woken again (its domain names another vCPU)', () => {
    const system = startedSystem({ configuration: '3AppVM', seed: 23, runLengthNs: 1_200 * MS });
    const words = system.machine.memory.words;
    const privVcpu = system.hypervisor.layout.vcpus[PRIVILEGED_DOMAIN_ID];
    runToQuiescence(system, 300 * MS);
    runUntilQuiescentWhere(system, () => words[privVcpu + Vcpu.offset.runState] === RUN_STATE_BLOCKED, 50 * US, 400 * MS);
    const brokenNs = system.machine.nowNs;
    // The PrivVM's events (its timer, the NIC, the rings) now wake UnixBench's vCPU instead. (A
    // run state flipped instead would be caught: the wake would queue it and schedule's check fire.)
    words[system.hypervisor.layout.domains[PRIVILEGED_DOMAIN_ID] + Domain.offset.vcpu] = system.hypervisor.layout.vcpus[1];
    const repliesBefore = system.nic.transmissions().length;
    runToEnd(system, system.runLengthNs);

    // The PrivVM never ran again: CPU 0 stayed idle, and no reply left the NIC.
    expect(words[perCpuAddress(0) + PerCpu.offset.current]).toBe(system.hypervisor.layout.idleVcpus[0]);
    expect(system.nic.transmissions().length).toBe(repliesBefore);
    // It answers no more pings: it times out a progress window after its last reply, before the
    // NIC's 1 s window (whose 10% loss limit is crossed about 100 ms in) closes.
    const failure = expectFailed(verdictOf(system, 2), /^timed out: no progress for more than 100 ms/);
    expect(failure.atNs).toBeGreaterThan(brokenNs + 90 * MS);
    expect(failure.atNs).toBeLessThanOrEqual(brokenNs + 100 * MS);
    // The hypervisor noticed nothing; only the audit sees the disagreement.
    expect(system.hypervisor.detections).toEqual([]);
    expect(verdictOf(system, 1)).toEqual({ kind: 'correct' });
    runToQuiescence(system, system.machine.nowNs);
    expect(auditInvariants(system)).toEqual(['domainTableCorrupt']);
  });
});
