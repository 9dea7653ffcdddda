/**
 * The named recovery invariants. Each looks only at what running the scenario produced (the
 * record, the final machine, observations at detection and at resume, the golden run); none
 * looks at the fault to decide anything.
 */
import { hypercallNames } from '../hypervisor/abi.js';
import { audit, describeAudit } from '../hypervisor/audit.js';
import type { RecoveryRecord, TrialRecord } from '../trial/record.js';
import { defineInvariant, type Invariant } from './invariant.js';
import { changedParts, domainPages, resultsOf, type RewoundHypercall } from './observe.js';
import type { ScenarioRun } from './scenario.js';
import { firstDifference } from './difference.js';
import { NinelivesError } from '../errors.js';

function recoveryOf(record: TrialRecord): RecoveryRecord | undefined {
  return record.outcome === 'detected' ? record.recovery : undefined;
}

function recovered(run: ScenarioRun): boolean {
  return recoveryOf(run.record)?.result === 'recovered';
}

function describeCall(call: RewoundHypercall): string {
  return `${hypercallNames[call.hypercall] ?? `hypercall ${call.hypercall}`}(${call.args.join(', ')})`;
}

export const recoveredAuditClean = defineInvariant({
  name: 'recovered-audit-clean',
  description:
    'After a recovery that the trial reports successful, the audit is clean both when the mechanism releases the CPUs and at the end of the run: no lock held, scheduler views agree, frame use counts match references, every CPU\'s timer armed, no interrupt stuck.',
  appliesTo: recovered,
  check(run) {
    if (!recovered(run)) return undefined;
    const atResume = run.atRecovery?.audit;
    if (atResume === undefined) return 'the record says recovered, but the mechanism never released the CPUs';
    if (!atResume.clean) return `recovered, but when the mechanism released the CPUs the audit found: ${describeAudit(atResume)}`;
    const atEnd = audit(run.system.machine, run.system.hypervisor.layout);
    if (!atEnd.clean) return `recovered, but at the end of the run the audit found: ${describeAudit(atEnd)}`;
    return undefined;
  },
});

/** The trial claims its guests came through: nothing manifested, or a successful recovery. */
function claimsGuestsCameThrough(run: ScenarioRun): boolean {
  return run.record.outcome === 'nonManifested' || recovered(run);
}

export const goldenResults = defineInvariant({
  name: 'golden-results',
  description:
    'In a trial that reports no effect or a successful recovery, every guest not declared failed finishes with the golden run\'s results: its results stream is in the very state the fault-free run reaches after the same work, and after a recovery it makes progress.',
  appliesTo: claimsGuestsCameThrough,
  check(run) {
    if (!claimsGuestsCameThrough(run)) return undefined;
    const system = run.system;
    const nowNs = system.machine.nowNs;
    const configured = new Set(system.configuration.domains.map((domain) => domain.domainId));
    for (const kernel of system.kernels()) {
      const results = resultsOf(kernel);
      if (!configured.has(kernel.domainId) || results === undefined || kernel.verdict(nowNs).kind === 'failed') continue;
      const who = `${kernel.name} (domain ${kernel.domainId})`;
      const steps = run.golden().stepsAt(kernel.domainId, results.work);
      if (steps.length === 0) return `${who} did ${results.work} operations; the golden run never gets that far`;
      if (!steps.some((step) => step.checksum === results.checksum)) {
        return `${who} is not declared failed, but after ${results.work} operations its results checksum is ${results.checksum}, the golden run's ${steps.map((step) => step.checksum).join(' or ')}`;
      }
      const stall = stallAfterRecovery(run, kernel.domainId, results.work);
      if (stall !== undefined) return `${who} is not declared failed, but ${stall}`;
    }
    return undefined;
  },
});

/** How a guest failed to move on after the recovery released the CPUs; undefined if it did (or had finished). */
function stallAfterRecovery(run: ScenarioRun, domainId: number, workAtEnd: number): string | undefined {
  const atRecovery = run.atRecovery;
  const atResume = atRecovery?.progress.find((guest) => guest.domainId === domainId);
  if (atRecovery === undefined || atResume?.results === undefined || atResume.finished || atResume.results.work !== workAtEnd) return undefined;
  const ms = (run.system.machine.nowNs - atRecovery.timeNs) / 1_000_000;
  return `made no progress in the ${ms.toFixed(1)} ms after recovery (stuck at ${workAtEnd} operations)`;
}

export const preservedVmState = defineInvariant({
  name: 'preserved-vm-state',
  description:
    'Recovery never changes a VM\'s preserved state: each guest\'s own state, the resume token the hypervisor saved for it, and its ring and multicall pages are the same when the mechanism releases the CPUs as when it had stopped them.',
  appliesTo: (run) => run.atStop !== undefined && run.atRecovery !== undefined,
  check(run) {
    if (run.atStop === undefined || run.atRecovery === undefined) return undefined;
    const changed = changedParts(run.atStop.vms, run.atRecovery.vms);
    if (changed.length === 0) return undefined;
    return `recovery changed ${changed.map((vm) => `${vm.workload} (domain ${vm.domainId}): ${vm.parts.join(', ')}`).join('; ')}`;
  },
});

/**
 * Every fault that landed was a fail-stop: it only stopped its CPU, so it cannot have corrupted
 * what an abandoned hypercall had done so far (a bit flip can: then the retry faithfully
 * finishes a corrupted update, and it is the fault, not the retry, that changed the effect).
 */
function onlyFailStops(record: TrialRecord): boolean {
  if (record.outcome === 'notInjected') return false;
  const later = record.laterFaults ?? [];
  return record.injection.location.type === 'failstop' && later.every((fault) => fault.injection === null || fault.injection.location.type === 'failstop');
}

/** Rewound hypercalls, abandoned by fail-stops only, of guests with a results stream (their effect shows in it). */
function judgedRewinds(run: ScenarioRun): RewoundHypercall[] {
  if (!onlyFailStops(run.record)) return [];
  return run.atRecovery?.rewound.filter((call) => call.resultsAtResume !== undefined) ?? [];
}

export const retrySameEffect = defineInvariant({
  name: 'retry-same-effect',
  description:
    'A hypercall that a fail-stop fault abandoned and recovery rewound has, once the guest issued it again, the same guest-visible effect as an uninterrupted one: the guest\'s results, its page table and its frames\' use counts equal the golden run\'s after the same operations.',
  appliesTo: (run) => judgedRewinds(run).length > 0,
  check(run) {
    for (const call of judgedRewinds(run)) {
      const kernel = run.system.host.kernel(call.domainId);
      const results = kernel === undefined ? undefined : resultsOf(kernel);
      if (results === undefined || call.resultsAtResume === undefined || results.work <= call.resultsAtResume.work) continue;
      const who = `${call.workload} (domain ${call.domainId}), which re-issued ${describeCall(call)}`;
      const steps = run.golden().stepsAt(call.domainId, results.work);
      const same = steps.find((step) => step.checksum === results.checksum);
      if (same === undefined) {
        const golden = steps.map((step) => step.checksum).join(' or ') || 'never reached';
        return `${who}: after ${results.work} operations its results checksum is ${results.checksum}, the golden run's ${golden}`;
      }
      const pages = domainPages(run.system, call.domainId);
      const pageTable = firstDifference(same.pageTable, pages.pageTable);
      if (pageTable !== undefined) return `${who}: after ${results.work} operations its page table differs from the golden run's (golden vs this run) at slot ${pageTable}`;
      const useCounts = firstDifference(same.useCounts, pages.useCounts);
      if (useCounts !== undefined) return `${who}: after ${results.work} operations its frames' use counts differ from the golden run's (golden vs this run) at frame ${useCounts}`;
    }
    return undefined;
  },
});

export const deterministic = defineInvariant({
  name: 'deterministic',
  description: 'The same scenario always gives the same trial record: run again from boot instead of from a golden checkpoint, it gives a byte-identical record.',
  check(run) {
    const again = run.rerun();
    const first = JSON.stringify(run.record);
    if (JSON.stringify(again) === first) return undefined;
    return `run again, the same scenario gave a different record (first run vs again from boot) at ${firstDifference(run.record, again) ?? 'key order'}`;
  },
});

export const invariants: readonly Invariant[] = [recoveredAuditClean, goldenResults, preservedVmState, retrySameEffect, deterministic];

export function invariantNames(known: readonly Invariant[] = invariants): string[] {
  return known.map((invariant) => invariant.name);
}

export class UnknownInvariantError extends NinelivesError {
  constructor(
    readonly requested: string,
    known: readonly string[],
  ) {
    super('usage.unknownInvariant', `unknown invariant "${requested}"; known invariants: ${known.join(', ')}`);
  }
}

export function invariantNamed(name: string, known: readonly Invariant[] = invariants): Invariant {
  const found = known.find((invariant) => invariant.name === name);
  if (found === undefined) throw new UnknownInvariantError(name, invariantNames(known));
  return found;
}
