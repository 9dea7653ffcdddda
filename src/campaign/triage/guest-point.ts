/**
 * A guest's context in its vCPU, compared where that guest stands. The words of a vCPU that hold
 * its guest's context (the resume token, hypercall number and arguments its exit saved from the
 * guest's registers, and the return value its entry will hand back) follow the guest, not the
 * clock: when the guest is out of step with the fault-free run at the instant compared (behind
 * it, because its CPU stopped at the fault), the fault-free run's words at that instant belong
 * to a later point of the guest's stream, and setting them back would hand the guest a context
 * it never had. So, as a CPU's registers are compared with the fault-free run's CPU at the same
 * point of its instruction stream, these words are compared with the fault-free run's at the
 * same point of the guest's stream: the last moment the fault-free run's guest stood where the
 * trial's stands (the same resume token, waiting on its hypercall or not), just before it moved
 * on. Equal there, a difference at the instant is progress; different there too, it is damage,
 * and set back to that value.
 */
import { Vcpu } from '../../hypervisor/layout.js';
import { goldenSystemAt } from '../../trial/counterfactual.js';
import type { GoldenRun } from '../../trial/golden-cache.js';
import type { System } from '../../trial/system.js';

/** The guest-context words of a vCPU: resumeToken, returnValue, hypercallNumber, hypercallArguments (consecutive in the structure). */
const CONTEXT_FIRST = Vcpu.offset.resumeToken;
const CONTEXT_END = Vcpu.offset.hypercallInProgress;

/** Beyond this much simulated time from the start, the fault-free run is not searched (the instant's values are used). */
const MAX_SEARCH_NS = 500_000_000;

/**
 * For each guest of `trial` out of step with `reference` (the fault-free run at the instant
 * compared), the fault-free run's guest-context words of its vCPU at the guest's own point, by
 * address, found by running the fault-free run from `fromNs` (the start of the interval, where
 * the trial and the fault-free run still agreed) to `untilNs` and watching every guest entry and
 * exit. Guests in step, or whose point the fault-free run does not reach in the window, are
 * absent: their words are compared at the instant.
 */
export function guestContextAtOwnPoint(golden: GoldenRun, trial: System, reference: System, fromNs: number, untilNs: number): Map<number, number> {
  const targets = new Map<number, { token: number; awaitingReturn: boolean }>();
  trial.host.attachedKernels().forEach((kernel) => {
    const at = trial.host.vcpuPoint(kernel.domainId);
    const there = reference.host.vcpuPoint(kernel.domainId);
    if (at !== undefined && there !== undefined && (at.token !== there.token || at.awaitingReturn !== there.awaitingReturn)) targets.set(kernel.domainId, at);
  });
  const found = new Map<number, number>();
  if (targets.size === 0 || untilNs - fromNs > MAX_SEARCH_NS || untilNs <= fromNs) return found;
  const system = goldenSystemAt(golden, fromNs);
  const vcpus = system.hypervisor.layout.vcpus;
  const words = system.machine.memory.words;
  const watch = (): void => {
    for (const [domainId, target] of targets) {
      const at = system.host.vcpuPoint(domainId);
      if (at === undefined || at.token !== target.token || at.awaitingReturn !== target.awaitingReturn) continue;
      // the last match wins: the context just before the guest moves on
      for (let offset = CONTEXT_FIRST; offset < CONTEXT_END; offset++) found.set(vcpus[domainId] + offset, words[vcpus[domainId] + offset]);
    }
  };
  const host = system.host;
  const enter = host.enter.bind(host);
  const exit = host.exit.bind(host);
  host.enter = (cpu, context, registers, nowNs) => {
    watch();
    return enter(cpu, context, registers, nowNs);
  };
  host.exit = (cpu, registers, nowNs, interrupted) => {
    watch();
    exit(cpu, registers, nowNs, interrupted);
  };
  system.hypervisor.run({ untilNs });
  watch();
  return found;
}
