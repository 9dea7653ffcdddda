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
import type { Hypervisor, RunStop } from '../hypervisor/hypervisor.js';
import { WATCHDOG_STRIKES } from '../hypervisor/layout.js';
import { NMI_PERIOD_NS, type RunBounds } from '../machine/machine.js';

/** long enough for the NMI watchdog to fire on a CPU whose counter stopped when it began */
export const WATCHDOG_GRACE_NS = (WATCHDOG_STRIKES + 1) * NMI_PERIOD_NS;
/** instructions actually executed (not skipped) during the grace, at most */
export const GRACE_EXECUTED_MAXIMUM = 25_000_000;

/** The limits of a run, without its time bound. */
export type InstructionBounds = Omit<RunBounds, 'untilNs'>;

/** A budget in use: the instruction limit, then, once it is reached, the grace. */
export class RunawayBudget {
  private grace: { readonly endNs: number; readonly executedLimit: number } | undefined;
  /** why the last 'runaway' was called */
  runawayCause = '';

  /** The budget ends when the hypervisor instruction count reaches `instructionLimit`. */
  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly instructionLimit: number,
  ) {}

  /** The instruction bounds of a run now: the budget's limit, or the grace's on executed instructions. */
  bounds(): InstructionBounds {
    return this.grace === undefined ? { instructionLimit: this.instructionLimit } : { executedInstructionLimit: this.grace.executedLimit };
  }

  /**
   * Runs to `untilNs`, as hypervisor.run does, through the grace once the budget is spent;
   * 'runaway' when the grace ran out (in simulated time or executed instructions) before `untilNs`.
   */
  run(untilNs: number): RunStop | 'runaway' {
    const machine = this.hypervisor.machine;
    for (;;) {
      const endNs = this.grace === undefined ? untilNs : Math.min(untilNs, this.grace.endNs);
      const stop = this.hypervisor.run({ untilNs: endNs, ...this.bounds() });
      if (stop.kind === 'detected') return stop;
      if (stop.kind === 'timeReached') {
        if (endNs === untilNs) return stop;
        this.runawayCause = "no detection within the watchdog's grace after the instruction budget";
        return 'runaway';
      }
      if (this.grace !== undefined) {
        this.runawayCause = `no detection after the instruction budget and ${GRACE_EXECUTED_MAXIMUM} more executed instructions (a loop that does not repeat)`;
        return 'runaway';
      }
      // the budget is spent: from here on only executed instructions count
      this.grace = { endNs: machine.nowNs + WATCHDOG_GRACE_NS, executedLimit: machine.executedInstructions + GRACE_EXECUTED_MAXIMUM };
    }
  }
}
