/**
 * Where a fault landed, as the ablation report names it: the routine of the instruction the CPU
 * was at, or for a code or memory fault the flipped word's, without offset or local label.
 */
import { describe, expect, it } from 'vitest';
import type { Injection } from '../../src/faults/fault.js';
import { landedIn } from '../../src/results/stage-gains.js';

const at = (instruction: string, location: Injection['location']): Injection => ({ cpu: 1, timeNs: 5, instructionCount: 7, programCounter: 4227, instruction, location });

describe('landedIn', () => {
  it('names the routine of the instruction a fail-stop or register fault hit', () => {
    expect(landedIn(at('mul r7, r7, r14 <schedule+3>', { type: 'failstop', before: 4227, after: 0 }))).toBe('schedule');
    expect(landedIn(at('cmpi r2, 0 <do_softirq.retry+6>', { type: 'register', register: 'r2', bit: 3, before: 1, after: 9 }))).toBe('do_softirq');
    expect(landedIn(at('ret <context_switch.exit>', { type: 'register', register: 'sp', bit: 20, before: 1, after: 9 }))).toBe('context_switch');
  });

  it('names the flipped word for a code or memory fault, not the instruction the CPU was at', () => {
    expect(landedIn(at('cmpi r2, 0 <do_softirq.retry+6>', { type: 'code', address: 4212, symbol: 'raise_softirq.retry+7', bit: 2, before: 1, after: 5 }))).toBe('raise_softirq');
    expect(landedIn(at('ld r1, [r7+6] <return_to_guest+5>', { type: 'memory', address: 12400, symbol: 'percpu[1].softirqPending', bit: 0, before: 0, after: 1 }))).toBe('percpu[1]');
  });

  it('says "?" when there is no symbol to name', () => {
    expect(landedIn(at('nop', { type: 'failstop', before: 0, after: 0 }))).toBe('?');
    expect(landedIn(at('nop <x>', { type: 'code', address: 0, symbol: '', bit: 0, before: 0, after: 1 }))).toBe('?');
  });
});
