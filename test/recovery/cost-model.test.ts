/**
 * The recovery cost model: on the nominal host of the real experiments (8 CPUs, 8 GiB) the
 * mechanisms' steps cost what the reference measured (about 713 ms for ReHype's microreboot,
 * 22 ms for NiLiHype's microreset, 21 ms of it the page-frame pass); per-frame work grows with
 * memory and per-CPU work with CPUs; a recovery's latency is the sum of the steps it ran.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOMINAL_HOST, price, rebootCosts, resetCosts, totalMs, type NominalHost } from '../../src/recovery/cost-model.js';
import { microreboot } from '../../src/recovery/microreboot.js';
import { microreset } from '../../src/recovery/microreset.js';
import type { Mechanism } from '../../src/recovery/step.js';
import { MS, ONE_APP_VM, UNIXBENCH_CPU, failstopAt, findPoint, recoverFrom, type MechanismChoice } from './scenario.js';

function stepMs(mechanism: Mechanism, step: string, host: NominalHost): number {
  const found = mechanism.steps.find((each) => each.step.name === step);
  if (found === undefined) throw new Error(`${mechanism.name} has no step ${step}`);
  return totalMs(found.costs.map((cost) => price(cost, host)));
}

function mechanismMs(mechanism: Mechanism, host: NominalHost, disabled: readonly string[] = []): number {
  return mechanism.steps.filter(({ step }) => !disabled.includes(step.name)).reduce((sum, { step }) => sum + stepMs(mechanism, step.name, host), 0);
}

const hosts = fc.record({ cpus: fc.integer({ min: 1, max: 64 }), memoryGiB: fc.integer({ min: 1, max: 256 }) });

describe('on the nominal host', () => {
  it('microreboot costs about 713 ms, with the reference\'s per-step breakdown', () => {
    expect(mechanismMs(microreboot, NOMINAL_HOST)).toBeCloseTo(713, 9);
    expect(stepMs(microreboot, 'boot-new-instance', NOMINAL_HOST)).toBeCloseTo(12 + 150 + 200 + 50 + 21 + 13 + 211 + 20 + 2, 9);
    expect(stepMs(microreboot, 'frame-table-pass', NOMINAL_HOST)).toBeCloseTo(21, 9);
    expect(price(rebootCosts.bringUpCpus, NOMINAL_HOST).ms).toBeCloseTo(150, 9);
    expect(price(rebootCosts.recreateHeap, NOMINAL_HOST).ms).toBeCloseTo(211, 9);
  });

  it('microreset costs about 22 ms: 21 ms for the frame-table pass, 1 ms for everything else', () => {
    expect(mechanismMs(microreset, NOMINAL_HOST)).toBeCloseTo(22, 9);
    expect(stepMs(microreset, 'frame-table-pass', NOMINAL_HOST)).toBeCloseTo(21, 9);
    expect(mechanismMs(microreset, NOMINAL_HOST, ['frame-table-pass'])).toBeCloseTo(1, 9);
  });

  it('microreset is over 30 times faster than microreboot', () => {
    expect(mechanismMs(microreboot, NOMINAL_HOST) / mechanismMs(microreset, NOMINAL_HOST)).toBeGreaterThan(30);
  });
});

describe('on other hosts', () => {
  it('the frame-table pass grows in proportion to memory, whatever the CPUs', () => {
    fc.assert(
      fc.property(hosts, (host) => {
        expect(price(resetCosts.frameTablePass, host).ms).toBeCloseTo((21 * host.memoryGiB) / 8, 6);
        expect(price(rebootCosts.restoreFrames, host).ms).toBeCloseTo((21 * host.memoryGiB) / 8, 6);
      }),
    );
    expect(price(resetCosts.frameTablePass, { cpus: 8, memoryGiB: 16 }).ms).toBeCloseTo(42, 9);
  });

  it('bringing up the CPUs grows with the other CPUs, setting up interrupt controllers with every CPU, whatever the memory', () => {
    fc.assert(
      fc.property(hosts, (host) => {
        expect(price(rebootCosts.bringUpCpus, host).ms).toBeCloseTo((150 * (host.cpus - 1)) / 7, 6);
        expect(price(rebootCosts.setUpApics, host).ms).toBeCloseTo((200 * host.cpus) / 8, 6);
      }),
    );
    expect(price(rebootCosts.bringUpCpus, { cpus: 1, memoryGiB: 8 }).ms).toBe(0);
  });

  it('each mechanism costs more with more CPUs or more memory, never less', () => {
    fc.assert(
      fc.property(hosts, fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 64 }), (host, moreCpus, moreGiB) => {
        const bigger = { cpus: host.cpus + moreCpus, memoryGiB: host.memoryGiB + moreGiB };
        for (const mechanism of [microreset, microreboot]) {
          expect(mechanismMs(mechanism, bigger)).toBeGreaterThanOrEqual(mechanismMs(mechanism, host) - 1e-9);
        }
      }),
    );
  });
});

describe('a recovery\'s latency', () => {
  it('is the cost of the steps it ran on the host it was priced for, and adds to the detection latency in the service interruption', () => {
    const at = findPoint({ options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['do_sched_op'], at: () => true });
    const bigHost = { cpus: 16, memoryGiB: 32 };
    const cases: [Mechanism, readonly string[], NominalHost][] = [
      [microreset, [], NOMINAL_HOST],
      [microreset, ['frame-table-pass'], NOMINAL_HOST],
      [microreset, [], bigHost],
      [microreboot, [], NOMINAL_HOST],
      [microreboot, [], bigHost],
    ];
    for (const [mechanism, disabled, host] of cases) {
      const detected = failstopAt(at);
      const record = recoverFrom(detected, mechanism.name as MechanismChoice, disabled, host);
      const expectedMs = mechanismMs(mechanism, host, disabled);
      expect(record.recoveryLatencyMs).toBeCloseTo(expectedMs, 5);
      expect(record.steps.reduce((sum, step) => sum + step.ms, 0)).toBeCloseTo(expectedMs, 9);
      const detectionMs = (detected.detection.timeNs - detected.injection.timeNs) / MS;
      expect(record.serviceInterruptionMs).toBeCloseTo(detectionMs + record.recoveryLatencyMs, 9);
    }
  });
});
