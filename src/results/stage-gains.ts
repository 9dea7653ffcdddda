/**
 * Where each repair's gains land: in an ablation (cumulative stages "0 no repairs", "1 + step",
 * ... on the same faults), the detected faults a stage recovers that the stage before did not,
 * and the other way round, by the hypervisor routine the fault landed in. A repair's gains in a
 * few routines say which window of the hypervisor it exists for (the scheduler repair's in
 * context_switch and the runqueue code, say). Built a record at a time, like the mechanism pairs.
 */
import type { FaultType, Injection } from '../faults/fault.js';
import { functionOfSymbol } from '../machine/disassembler.js';
import { ablationStageNumber } from '../recovery/mechanisms.js';
import type { TrialEntry } from './summary.js';

export interface StageGain {
  readonly stage: string;
  /** detected faults this stage recovers and the stage before does not */
  readonly gained: number;
  /** detected faults the stage before recovers and this stage does not */
  readonly lost: number;
  /** the routines the gained faults landed in, most first (at most ROUTINES_SHOWN) */
  readonly gainedIn: readonly { readonly routine: string; readonly faults: number }[];
}

export interface StageGains {
  readonly config: string;
  readonly faultType: FaultType;
  readonly mechanism: string;
  /** every stage after the first, in stage order */
  readonly stages: readonly StageGain[];
}

const ROUTINES_SHOWN = 5;

/**
 * Where a fault landed, as triage names it: a code or memory fault's flipped word, else the
 * instruction the CPU was at ("mul r7, r7, r14 <schedule+3>"): its routine or structure, without
 * offset or local label ("schedule").
 */
export function landedIn(injection: Injection): string {
  const location = injection.location;
  const symbol = location.type === 'code' || location.type === 'memory' ? location.symbol : /<([^>]*)>\s*$/.exec(injection.instruction)?.[1];
  return symbol === undefined || symbol === '' ? '?' : functionOfSymbol(symbol);
}

interface Ladder {
  /** each stage's name and number */
  readonly stages: Map<string, number>;
  /** per trial index: where its fault landed (its first record's), and per stage whether it was recovered */
  readonly trials: Map<number, { routine: string; recovered: Map<string, boolean> }>;
}

/** Stages in ladder order: by number, then by name. */
function inOrder(stages: ReadonlyMap<string, number>): string[] {
  return [...stages.entries()].sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0])).map(([stage]) => stage);
}

export class StageGainsAccumulator {
  private readonly ladders = new Map<string, Ladder>();

  add({ record, stage }: TrialEntry): void {
    const number = ablationStageNumber(stage);
    if (number === undefined || record.outcome !== 'detected' || record.recovery === undefined) return;
    const key = JSON.stringify([record.configuration, record.faultType, record.mechanism]);
    const ladder = this.ladders.get(key) ?? { stages: new Map<string, number>(), trials: new Map() };
    this.ladders.set(key, ladder);
    ladder.stages.set(stage, number);
    const trial = ladder.trials.get(record.trialIndex) ?? { routine: landedIn(record.injection), recovered: new Map<string, boolean>() };
    ladder.trials.set(record.trialIndex, trial);
    trial.recovered.set(stage, record.recovery.result === 'recovered');
  }

  gains(): StageGains[] {
    const gains: StageGains[] = [];
    for (const [key, ladder] of this.ladders) {
      const order = inOrder(ladder.stages);
      if (order.length < 2) continue;
      const [config, faultType, mechanism] = JSON.parse(key) as [string, FaultType, string];
      gains.push({ config, faultType, mechanism, stages: order.slice(1).map((stage, index) => stageGain(ladder, order[index], stage)) });
    }
    return gains.sort((x, y) => x.config.localeCompare(y.config) || x.faultType.localeCompare(y.faultType) || x.mechanism.localeCompare(y.mechanism));
  }
}

/** `stage` against the stage `before` it, on the faults detected at both. */
function stageGain(ladder: Ladder, before: string, stage: string): StageGain {
  let gained = 0;
  let lost = 0;
  const routines = new Map<string, number>();
  for (const { routine, recovered } of ladder.trials.values()) {
    const then = recovered.get(before);
    const now = recovered.get(stage);
    if (then === undefined || now === undefined || then === now) continue;
    if (then) {
      lost++;
      continue;
    }
    gained++;
    routines.set(routine, (routines.get(routine) ?? 0) + 1);
  }
  const gainedIn = [...routines.entries()]
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .slice(0, ROUTINES_SHOWN)
    .map(([routine, faults]) => ({ routine, faults }));
  return { stage, gained, lost, gainedIn };
}
