/**
 * Softirqs as Xen raises and runs them, through the machine: `raise_softirq` interrupts only
 * another CPU and only for a newly set bit, and the local timer's work runs in the timer
 * softirq, not in the interrupt handler.
 */
import { describe, expect, it } from 'vitest';
import { PerCpu, VECTOR_EVENT_CHECK, perCpuAddress } from '../../src/hypervisor/layout.js';
import { Opcode, decode } from '../../src/machine/isa.js';
import { MS, startedSystem } from './system-helpers.js';

interface RaiseCall {
  readonly from: number;
  readonly target: number;
  readonly bits: number;
  readonly pendingBefore: number;
  ipiSent: boolean;
}

/** Every raise_softirq call of a 3AppVM run, with whether it sent an event-check IPI. */
function raiseCallsOfRun(runNs: number): RaiseCall[] {
  const system = startedSystem({ configuration: '3AppVM', seed: 3, runLengthNs: runNs });
  const machine = system.machine;
  const labels = system.hypervisor.program.labels;
  const entry = labels.get('raise_softirq');
  const exit = labels.get('raise_softirq.exit');
  const calls: RaiseCall[] = [];
  const open = new Map<number, RaiseCall>();
  machine.tracer = (cpu, programCounter, word) => {
    const registers = machine.cpus[cpu].registers;
    if (programCounter === entry) {
      const target = registers[1];
      const call = { from: cpu, target, bits: registers[2], pendingBefore: machine.memory.words[perCpuAddress(target) + PerCpu.offset.softirqPending], ipiSent: false };
      open.set(cpu, call);
      calls.push(call);
    } else if (programCounter === exit) {
      open.delete(cpu);
    } else if (decode(word).opcode === Opcode.SendIpi && registers[decode(word).b] === VECTOR_EVENT_CHECK) {
      const call = open.get(cpu);
      if (call !== undefined) call.ipiSent = true;
    }
  };
  machine.run(runNs);
  return calls;
}

describe('raise_softirq', () => {
  const calls = raiseCallsOfRun(150 * MS);

  it('is called from every CPU, for itself and for others', () => {
    expect(calls.some((call) => call.from === call.target)).toBe(true);
    expect(calls.some((call) => call.from !== call.target)).toBe(true);
  });

  it('never sends an event-check IPI to its own CPU', () => {
    const own = calls.filter((call) => call.from === call.target);
    expect(own.length).toBeGreaterThan(0);
    expect(own.filter((call) => call.ipiSent)).toEqual([]);
  });

  it('sends one to another CPU exactly when a bit was newly set', () => {
    const others = calls.filter((call) => call.from !== call.target);
    for (const call of others) expect(call.ipiSent).toBe((call.bits & ~call.pendingBefore) !== 0);
    expect(others.some((call) => call.ipiSent)).toBe(true);
  });
});
