/**
 * Corruption footprints: the named regions of hypervisor state where a trial differs from the
 * fault-free run at the same point. Names come from the hypervisor's own AddressNamer (structure
 * and field, per-CPU area, static lock, code label), with a region being a named field (its word
 * offset dropped) and its kind the region without indices, so nothing here knows the layout.
 *
 * Telling legitimate progress apart: the trial is compared with the golden run at the same
 * instant, and each differing word is also read in the golden run at the start of the interval
 * (the injection, for the footprint at detection; the detection, for the one after recovery).
 * A word the fault-free run moved in the interval and that the trial holds strictly between the
 * golden run's two values is progress at another pace (the clock, a counter, a timer's expiry)
 * and is counted, not listed. A word stuck at the interval's start value, or beyond either end,
 * or one the golden run never moved, is a difference.
 */
import { NO_DEADLINE, type CpuState } from '../../machine/cpu.js';
import { AddressNamer } from '../../hypervisor/symbols.js';
import type { RegionDifference } from '../../results/triage.js';
import type { System } from '../../trial/system.js';
import { compareGuests, guestNames, guestPageNamer, guestStateOf, setGuestsBack, type StatePath } from './guest-footprint.js';

/** CPU fields that outlive a reset of the CPU's thread: recovery repairs them, so they are state. */
const cpuFields = ['timerDeadlineNs', 'inServiceVectors'] as const;
type CpuField = (typeof cpuFields)[number];

/**
 * Where a named region lives: memory words, one CPU's field, or one CPU's register (set back to
 * `value`, the fault-free run's at the same point of that CPU's execution; `atTrap` when it is
 * the detecting CPU's register at its trap, set back by rewinding to the trap).
 */
export type RegionPlace =
  | { readonly kind: 'words'; readonly addresses: readonly number[]; /** the values to set back, when not the golden run's at the instant (a guest's context at its own point) */ readonly values?: readonly number[] }
  | { readonly kind: 'cpu'; readonly cpu: number; readonly field: CpuField }
  | { readonly kind: 'register'; readonly cpu: number; readonly register: string; readonly value: number; readonly atTrap: boolean }
  /** guest or device state, by its path in the guest state tree (guest-footprint.ts) */
  | { readonly kind: 'guest'; readonly paths: readonly StatePath[] };

export interface Comparison {
  readonly differences: readonly RegionDifference[];
  /** each differing region's place, to set it back */
  readonly places: ReadonlyMap<string, RegionPlace>;
  readonly progressIgnored: number;
}

/** The region a word belongs to: its name without a word offset (`vcpu[0].timer+1` -> `vcpu[0].timer`). */
export function regionOfName(name: string): string {
  return name.replace(/\+\d+$/, '');
}

/** A region's kind: its name without indices (`percpu[1].irqCount` -> `percpu.irqCount`, `guest[kvserver:3].phase` -> `guest[kvserver].phase`). */
export function kindOfRegion(region: string): string {
  return region.replace(/\[\d+\]/g, '').replace(/:\d+\]/g, ']');
}

/**
 * Compare `trial` with `golden` (the fault-free run at the same point), given `start` (the
 * fault-free run at the start of the interval). Stacks are thread state, which recovery
 * discards; everything else mapped is compared, and the guests' and devices' state
 * (guest-footprint.ts). The pages the guests share with the hypervisor (rings, multicall
 * buffers) are named as the guests name them, since they are guest state: the hypervisor moves
 * notifications and runs multicalls, a guest owns the page.
 */
export function compareWithGolden(trial: System, golden: System, start: System, ownPoint: ReadonlyMap<number, number> = new Map()): Comparison {
  const namer = new AddressNamer(trial.hypervisor.program, trial.hypervisor.layout);
  const guestPage = guestPageNamer(trial);
  const codeWords = trial.hypervisor.program.words.length;
  const words = new Map<string, { addresses: number[]; values: number[] }>();
  let progressIgnored = 0;
  const t = trial.machine.memory.words;
  const g = golden.machine.memory.words;
  const s = start.machine.memory.words;
  for (const segment of trial.machine.memory.segments) {
    if (segment.kind === 'stack') continue;
    const end = segment.base + (segment.kind === 'code' ? Math.min(segment.sizeWords, codeWords) : segment.sizeWords);
    for (let address = segment.base; address < end; address++) {
      // a guest's context in its vCPU, for a guest out of step: compared at the guest's own point (guest-point.ts)
      const own = ownPoint.get(address);
      if (own !== undefined) {
        if (t[address] === own) {
          if (t[address] !== g[address]) progressIgnored++;
          continue;
        }
      } else {
        if (t[address] === g[address]) continue;
        if (isProgress(t[address], s[address], g[address])) {
          progressIgnored++;
          continue;
        }
      }
      const name = segment.kind === 'code' ? `code:${regionOfName(namer.name(address))}` : (guestPage(address) ?? regionOfName(namer.name(address)));
      const list = words.get(name) ?? { addresses: [], values: [] };
      words.set(name, list);
      list.addresses.push(address);
      list.values.push(own ?? g[address]);
    }
  }
  const places = new Map<string, RegionPlace>();
  const differences: RegionDifference[] = [];
  for (const [region, { addresses, values }] of words) {
    const atOwnPoint = addresses.some((address) => ownPoint.has(address));
    places.set(region, atOwnPoint ? { kind: 'words', addresses, values } : { kind: 'words', addresses });
    differences.push({ region, kind: kindOfRegion(region), words: addresses.length, trialValue: t[addresses[0]], goldenValue: values[0] });
  }
  trial.machine.cpus.forEach((cpu, index) => {
    for (const field of cpuFields) {
      const value = cpu[field];
      const goldenValue = golden.machine.cpus[index][field];
      if (value === goldenValue) continue;
      if (isProgress(value, start.machine.cpus[index][field], goldenValue) && value !== NO_DEADLINE) {
        progressIgnored++;
        continue;
      }
      const region = `cpu[${index}].${field}`;
      places.set(region, { kind: 'cpu', cpu: index, field });
      differences.push({ region, kind: kindOfRegion(region), words: 1, trialValue: value, goldenValue });
    }
  });
  const guests = compareGuests(guestStateOf(trial), guestStateOf(golden), guestStateOf(start), guestNames(trial));
  for (const [region, paths] of guests.paths) places.set(region, { kind: 'guest', paths });
  differences.push(...guests.differences);
  return { differences, places, progressIgnored: progressIgnored + guests.progressIgnored };
}

/** Strictly between the fault-free run's values at the interval's start and end. */
function isProgress(value: number, startValue: number, endValue: number): boolean {
  if (startValue === endValue) return false;
  return value > Math.min(startValue, endValue) && value < Math.max(startValue, endValue);
}

/**
 * Set `regions` of `system` back to their values in `golden`, except the detecting CPU's
 * registers at its trap (see trapRegisters): those need the trial rewound to the trap.
 */
export function setBack(system: System, golden: System, regions: readonly string[], places: ReadonlyMap<string, RegionPlace>): void {
  const words = system.machine.memory.words;
  const guestPaths: StatePath[] = [];
  for (const region of regions) {
    const place = places.get(region);
    if (place === undefined) throw new Error(`no such region in the footprint: ${region}`);
    if (place.kind === 'words') {
      place.addresses.forEach((address, index) => {
        words[address] = place.values?.[index] ?? golden.machine.memory.words[address];
      });
    } else if (place.kind === 'cpu') {
      system.machine.cpus[place.cpu][place.field] = golden.machine.cpus[place.cpu][place.field];
    } else if (place.kind === 'guest') {
      guestPaths.push(...place.paths);
    } else if (!place.atTrap) {
      setRegister(system.machine.cpus[place.cpu], place.register, place.value);
    }
  }
  if (guestPaths.length > 0) setGuestsBack(system, guestStateOf(golden), guestPaths);
}

/** The places among `regions` that are the detecting CPU's registers at its trap. */
export function trapRegisters(regions: readonly string[], places: ReadonlyMap<string, RegionPlace>): Extract<RegionPlace, { kind: 'register' }>[] {
  return regions.flatMap((region) => {
    const place = places.get(region);
    return place?.kind === 'register' && place.atTrap ? [place] : [];
  });
}

/** A CPU's registers as a researcher names them: pc, sp, flags (the interrupt flag is its bit 0), r0..r15. */
export function registersOf(cpu: CpuState): [string, number][] {
  return [['pc', cpu.programCounter], ['sp', cpu.stackPointer], ['flags', cpu.flags], ...[...cpu.registers].map((value, index): [string, number] => [`r${index}`, value])];
}

export function setRegister(cpu: CpuState, register: string, value: number): void {
  if (register === 'pc') cpu.programCounter = value;
  else if (register === 'sp') cpu.stackPointer = value;
  else if (register === 'flags') cpu.flags = value;
  else cpu.registers[Number(register.slice(1))] = value;
}

/**
 * The CPUs' registers against the fault-free run's. Registers are not counters, so progress is
 * told apart by where each CPU is in its own instruction stream: CPU k of the trial is compared
 * with CPU k of the fault-free run at k's own local time, and only when both have retired the
 * same number of instructions in the same mode, that is, when they stand at the same point of
 * the same stream. Then every register that differs is the fault's doing, directly or through a
 * path the fault changed. A CPU out of step (asleep for another time, a scheduling quantum ahead
 * of where the detection stopped the others, in a guest) holds other values for reasons of
 * timing: its differing registers are counted as progress, not listed. `trial[k]` is the
 * trial's CPU k (for the detecting CPU: as it was at its trap); `goldenCpu(k)` the fault-free
 * run's at the same local time; `atTrap` the detecting CPU, whose registers are set back by
 * rewinding to its trap.
 */
export function compareRegisters(trial: readonly CpuState[], goldenCpu: (index: number) => CpuState, atTrap: number | undefined): { differences: RegionDifference[]; places: Map<string, RegionPlace>; progressIgnored: number } {
  const differences: RegionDifference[] = [];
  const places = new Map<string, RegionPlace>();
  let progressIgnored = 0;
  trial.forEach((cpu, index) => {
    const golden = goldenCpu(index);
    const inStep = cpu.instructionsRetired === golden.instructionsRetired && cpu.mode === golden.mode;
    const goldenValues = new Map(registersOf(golden));
    for (const [register, value] of registersOf(cpu)) {
      const goldenValue = goldenValues.get(register) as number;
      if (value === goldenValue) continue;
      if (!inStep) {
        progressIgnored++;
        continue;
      }
      const region = `cpu[${index}].${register}`;
      places.set(region, { kind: 'register', cpu: index, register, value: goldenValue, atTrap: index === atTrap });
      differences.push({ region, kind: kindOfRegion(region), words: 1, trialValue: value, goldenValue });
    }
  });
  return { differences, places, progressIgnored };
}
