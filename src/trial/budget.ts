/**
 * How long a trial lets the hypervisor run on without a detection. An instruction budget (a
 * multiple of the golden run's) bounds the host time of a trial whose hypervisor runs away; but
 * Xen's NMI watchdog takes up to WATCHDOG_STRIKES + 1 NMI periods to declare a CPU hung, so once
 * the budget is spent the run goes on for that long in simulated time before it is called a
 * runaway: a runaway is then an error Xen's detectors would not see either. Loops whose state
 * repeats cost nearly nothing through that grace (the machine skips their periods); a loop that
 * does not repeat is cut at GRACE_EXECUTED_MAXIMUM executed instructions, to keep a trial's
 * host time bounded.
 */
import { WATCHDOG_STRIKES } from '../hypervisor/layout.js';
import { NMI_PERIOD_NS, type Machine, type RunOutcome } from '../machine/machine.js';

/** long enough for the NMI watchdog to fire on a CPU whose counter stopped when it began */
export const WATCHDOG_GRACE_NS = (WATCHDOG_STRIKES + 1) * NMI_PERIOD_NS;
/** instructions actually executed (not skipped) during the grace, at most */
export const GRACE_EXECUTED_MAXIMUM = 25_000_000;

/** A budget in use: where its grace ends once it has begun. */
export class RunawayBudget {
  private graceEndNs: number | undefined;
  /** why the last 'runaway' was called */
  runawayCause = '';

  /** Arms the machine's instruction stop `instructions` after `fromInstruction`. */
  constructor(private readonly machine: Machine, instructions: number, fromInstruction: number) {
    machine.instructionStop = fromInstruction + instructions;
    machine.skipsCountTowardStop = true;
  }

  /**
   * Runs to `untilNs`, as machine.run does, through the grace once the budget is spent; 'runaway'
   * when the grace ran out (in simulated time or executed instructions) before `untilNs`.
   */
  run(untilNs: number): RunOutcome | 'runaway' {
    const machine = this.machine;
    for (;;) {
      const endNs = this.graceEndNs === undefined ? untilNs : Math.min(untilNs, this.graceEndNs);
      const outcome = machine.run(endNs);
      if (outcome.kind === 'stopped') return outcome;
      if (outcome.kind === 'timeReached') {
        if (endNs === untilNs) return outcome;
        this.runawayCause = 'no detection within the watchdog\'s grace after the instruction budget';
        return 'runaway';
      }
      if (this.graceEndNs !== undefined) {
        this.runawayCause = `no detection after the instruction budget and ${GRACE_EXECUTED_MAXIMUM} more executed instructions (a loop that does not repeat)`;
        return 'runaway';
      }
      // the budget is spent: from here on the stop counts executed instructions only
      this.graceEndNs = machine.nowNs + WATCHDOG_GRACE_NS;
      machine.skipsCountTowardStop = false;
      machine.instructionStop = machine.hypervisorInstructions + GRACE_EXECUTED_MAXIMUM;
    }
  }
}
