/**
 * The scheduler checks its views where it touches them, as Xen's does: a runqueue that holds the
 * running vCPU, or a runnable vCPU on no runqueue, is caught by a BUG_ON or ASSERT the next time
 * the scheduler inserts or picks, instead of being silently rebuilt or skipped. The state
 * is broken by hand at a quiescent point; where it is caught follows from running the hypervisor.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Detection } from '../../src/hypervisor/detection.js';
import {
  BUG_NEXT_ALREADY_RUNNING,
  BUG_RUNQUEUE_CORRUPT,
  BUG_RUNQUEUE_EMPTY,
  BUG_RUNQUEUE_INSERT_QUEUED,
  PerCpu,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNING,
  Vcpu,
  assertionNames,
  perCpuAddress,
} from '../../src/hypervisor/layout.js';
import type { System } from '../../src/trial/system.js';
import { MS, routineAt, runToQuiescence, runUntilQuiescentWhere, startedSystem } from './system-helpers.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });
/** In 1AppVM UnixBench runs on CPU 1; in 3AppVM NetBench runs on CPU 2. */
const UNIXBENCH = { domainId: 1, cpu: 1 };
const NETBENCH = { domainId: 2, cpu: 2 };

function onlyDetection(system: System): Detection {
  expect(system.hypervisor.detections).toHaveLength(1);
  return system.hypervisor.detections[0];
}

function field(system: System, vcpu: number, name: keyof typeof Vcpu.offset): number {
  return system.machine.memory.words[vcpu + Vcpu.offset[name]];
}

/** 1AppVM at a quiescent point after `atMs` where UnixBench runs on its CPU, its idle vCPU alone on the runqueue. */
function unixBenchRunning(seed: number, atMs: number): { system: System; vcpu: number; idle: number; area: number; words: Int32Array } {
  const system = startedSystem({ configuration: '1AppVM', seed });
  const vcpu = system.hypervisor.layout.vcpus[UNIXBENCH.domainId];
  const idle = system.hypervisor.layout.idleVcpus[UNIXBENCH.cpu];
  const area = perCpuAddress(UNIXBENCH.cpu);
  const words = system.machine.memory.words;
  runUntilQuiescentWhere(system, () => words[area + PerCpu.offset.current] === vcpu, 1 * MS, atMs * MS + 100 * MS);
  expect([words[area + PerCpu.offset.runqueueHead], words[area + PerCpu.offset.runqueueTail]]).toEqual([idle, idle]);
  return { system, vcpu, idle, area, words };
}

/** 3AppVM at a quiescent point after `atMs` where NetBench's vCPU is blocked, waiting for its next ping. */
function netBenchBlocked(seed: number, atMs: number): { system: System; vcpu: number; words: Int32Array } {
  const system = startedSystem({ configuration: '3AppVM', seed });
  const vcpu = system.hypervisor.layout.vcpus[NETBENCH.domainId];
  const words = system.machine.memory.words;
  runToQuiescence(system, atMs * MS);
  runUntilQuiescentWhere(system, () => words[vcpu + Vcpu.offset.runState] === RUN_STATE_BLOCKED, 100_000, atMs * MS + 100 * MS);
  return { system, vcpu, words };
}

describe('the scheduler\'s checks', () => {
  it('BUG_ONs when the running vCPU is also on its CPU\'s runqueue, at the next schedule on that CPU', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 20, max: 200 }), (seed, atMs) => {
        const { system, vcpu, idle, area, words } = unixBenchRunning(seed, atMs);
        expect(field(system, vcpu, 'runState')).toBe(RUN_STATE_RUNNING);
        // queue the running vCPU as runqueue_insert would, before the idle vCPU waiting there: it is now both current and queued
        words[area + PerCpu.offset.runqueueHead] = vcpu;
        words[vcpu + Vcpu.offset.runqueueNext] = idle;
        words[idle + Vcpu.offset.runqueuePrevious] = vcpu;
        const brokenNs = system.machine.nowNs;

        expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });
        const detection = onlyDetection(system);
        expect(detection.cpu).toBe(UNIXBENCH.cpu);
        // preempted, it is inserted a second time; blocked, the queued entry is not runnable
        const caught = [assertionNames[BUG_RUNQUEUE_INSERT_QUEUED], assertionNames[BUG_RUNQUEUE_CORRUPT]];
        if (detection.detector !== 'assertion') throw new Error(`expected an assertion, got ${JSON.stringify(detection)}`);
        expect(caught).toContain(detection.assertion);
        expect(['runqueue_insert', 'runqueue_pop']).toContain(routineAt(system, detection.programCounter));
        // UnixBench yields or blocks within milliseconds, and the scheduler ticks every 10 ms
        expect(detection.timeNs - brokenNs).toBeLessThanOrEqual(10 * MS + 1 * MS);
      }),
      { numRuns: 4 },
    );
  });

  it('BUG_ONs an empty runqueue: the idle vCPU, which waits there while another runs, lost from it, is missed when that vCPU blocks', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 20, max: 200 }), (seed, atMs) => {
        const { system, area, words } = unixBenchRunning(seed, atMs);
        words[area + PerCpu.offset.runqueueHead] = 0;
        words[area + PerCpu.offset.runqueueTail] = 0;
        const brokenNs = system.machine.nowNs;

        expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });
        const detection = onlyDetection(system);
        // blocking, UnixBench leaves nothing to run; preempted or yielding, it is queued and picked again until it blocks
        expect(detection).toMatchObject({ detector: 'assertion', assertion: assertionNames[BUG_RUNQUEUE_EMPTY], cpu: UNIXBENCH.cpu });
        expect(routineAt(system, detection.programCounter)).toBe('schedule');
        expect(detection.timeNs - brokenNs).toBeLessThan(100 * MS);
      }),
      { numRuns: 4 },
    );
  });

  it('ASSERTs that the vCPU it switches to is not running: a blocked vCPU flipped to running is queued by its next wake-up and caught when picked', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 20, max: 200 }), (seed, atMs) => {
        const { system, vcpu, words } = netBenchBlocked(seed, atMs);
        words[vcpu + Vcpu.offset.runState] = RUN_STATE_RUNNING;
        const brokenNs = system.machine.nowNs;

        expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });
        const detection = onlyDetection(system);
        expect(detection).toMatchObject({ detector: 'assertion', assertion: assertionNames[BUG_RUNQUEUE_CORRUPT], cpu: NETBENCH.cpu });
        expect(routineAt(system, detection.programCounter)).toBe('runqueue_pop');
        // the next ping, forwarded by the PrivVM every millisecond or so, wakes it
        expect(detection.timeNs - brokenNs).toBeLessThan(10 * MS);
      }),
      { numRuns: 4 },
    );
  });

  it('BUG_ONs switching to a vCPU already marked running elsewhere', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 20, max: 200 }), (seed, atMs) => {
        const { system, vcpu, words } = netBenchBlocked(seed, atMs);
        words[vcpu + Vcpu.offset.isRunning] = 1;

        expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });
        const detection = onlyDetection(system);
        expect(detection).toMatchObject({ detector: 'assertion', assertion: assertionNames[BUG_NEXT_ALREADY_RUNNING], cpu: NETBENCH.cpu });
        expect(routineAt(system, detection.programCounter)).toBe('schedule');
      }),
      { numRuns: 4 },
    );
  });
});
