/**
 * Driving a real System (hypervisor, guests, devices) to the states the hypervisor tests need:
 * a quiescent point at a given time, or the first quiescent point where a condition holds.
 */
import { expect } from 'vitest';
import type { GuestVerdict } from '../../src/guests/kernel.js';
import { audit, type AuditInvariant } from '../../src/hypervisor/audit.js';
import { functionOfSymbol, symbolizerFor } from '../../src/machine/disassembler.js';
import { settle } from '../../src/trial/golden.js';
import { System, type SystemOptions } from '../../src/trial/system.js';

export const MS = 1_000_000;
export const US = 1_000;

export function startedSystem(options: SystemOptions): System {
  const system = new System(options);
  system.start();
  return system;
}

/** Runs to `untilNs`, then on until no hypervisor thread is in flight. */
export function runToQuiescence(system: System, untilNs: number): void {
  const outcome = system.machine.run(untilNs);
  expect(outcome.kind).toBe('timeReached');
  settle(system);
  expect(system.isQuiescent()).toBe(true);
}

/**
 * Steps `stepNs` at a time (settling after each step) until `condition` holds at a quiescent
 * point; fails the test if it does not by `limitNs`.
 */
export function runUntilQuiescentWhere(system: System, condition: () => boolean, stepNs: number, limitNs: number): void {
  while (system.machine.nowNs < limitNs) {
    runToQuiescence(system, system.machine.nowNs + stepNs);
    if (condition()) return;
  }
  throw new Error(`condition not reached by ${limitNs} ns`);
}

export function verdictOf(system: System, domainId: number): GuestVerdict {
  const kernel = system.host.kernel(domainId);
  if (kernel === undefined) throw new Error(`no kernel for domain ${domainId}`);
  return kernel.verdict(system.machine.nowNs);
}

export function expectFailed(verdict: GuestVerdict, reason: RegExp): { reason: string; atNs: number } {
  if (verdict.kind !== 'failed') throw new Error(`expected a failed verdict matching ${reason}, got ${JSON.stringify(verdict)}`);
  expect(verdict.reason).toMatch(reason);
  return verdict;
}

/** The invariants the audit reports, each once, sorted. */
export function auditInvariants(system: System): AuditInvariant[] {
  const result = audit(system.machine, system.hypervisor.layout);
  return result.clean ? [] : [...new Set(result.findings.map((finding) => finding.invariant))].sort();
}

/** The routine an address of hypervisor code lies in, e.g. `do_mmu_update` for `do_mmu_update+21`. */
export function routineAt(system: System, address: number): string | undefined {
  const program = system.hypervisor.program;
  if (address < program.base || address >= program.base + program.words.length) return undefined;
  const symbol = symbolizerFor(program.labels)(address);
  return symbol === undefined ? undefined : functionOfSymbol(symbol);
}
