/**
 * Guest state in the corruption footprint: the guest kernels' own state objects, their vCPU
 * contexts as the guest host keeps them (the resume token, whether the guest crashed, the
 * hypercall it waits on), the shared pages they use (I/O rings, multicall buffers) and the
 * devices' state, compared with the fault-free run at the same point and named as a researcher
 * reads them: `guest[privvm].timerDeadlineNs`, `guest[unixbench].resumeToken`,
 * `guest[netbench].ring.responseConsumer`, `disk.queue`, `nic.buffer`.
 *
 * Telling legitimate progress apart. A guest kernel is a deterministic state machine stepped by
 * its hypercalls, so its place in its own stream is its vCPU's resume token (one step per
 * hypercall) with whether it waits on that hypercall and when its current compute ends (the
 * guest's own clock): a guest whose three agree with the fault-free run's is in step with it,
 * as a CPU with the same instructions retired is for registers. In step, every field that
 * differs is damage. Out of step (behind because its CPU stopped at the fault, or ahead), a
 * field the fault-free run moved between the start of the interval and its end holds another
 * value for reasons of timing: it is counted as progress, not listed. A field the fault-free run
 * held still over the interval (a failure recorded, a crash, a ring index no request moved) and
 * that the trial holds differently is damage whatever the step: the guest went where the
 * fault-free run never went. Devices have no stream of their own (they follow time and the
 * PrivVM): they are judged as guests out of step.
 *
 * A guest that stopped (crashed, or halted at its first error) is one region, `guest[x].crashed`:
 * its vCPU's crash flag, its halt and the failure that stopped it are set back together, so
 * that a re-run that clears the failure has a guest that works again and must earn its verdict.
 *
 * Left out, as the verdict's record of what already happened, which no re-run can take back: a
 * failure a guest recorded and went on from (an error it saw), its watchdog's clock and the
 * stalls it measured, recovery's pauses it was told of, and the NIC's log of replies sent and
 * packets dropped (the outside world's). Left out too: the kernels' random streams (their
 * place in the stream, which the step judges) and the guest host's hypercall statistics and CPU
 * map (the CPUs' modes say who runs where).
 */
import { RING_ENTRY_WORDS, RING_REQUESTS_OFFSET, RING_RESPONSES_OFFSET, RING_SIZE, MULTICALL_ENTRY_WORDS, MulticallEntry, RingEntry, RingHeader } from '../../hypervisor/abi.js';
import { MULTICALL_BUFFER_WORDS, RING_WORDS } from '../../hypervisor/layout.js';
import { copyPlainData } from '../../guests/plain-data.js';
import type { GuestHostState } from '../../guests/host.js';
import type { DiskState, NicState } from '../../guests/devices.js';
import type { RegionDifference } from '../../results/triage.js';
import type { System } from '../../trial/system.js';
import { kindOfRegion } from './footprint.js';

/** Everything of a system's state outside hypervisor memory and the CPUs, as plain data. */
export interface GuestStateTree {
  readonly host: GuestHostState;
  readonly disk: DiskState;
  readonly nic: NicState;
}

export type StatePath = readonly (string | number)[];

export interface GuestComparison {
  readonly differences: RegionDifference[];
  /** each differing region's paths in the state tree, to set it back */
  readonly paths: Map<string, readonly StatePath[]>;
  progressIgnored: number;
}

export function guestStateOf(system: System): GuestStateTree {
  return { host: system.host.saveState(), disk: system.disk.saveState(), nic: system.nic.saveState() };
}

/** A region of guest state (a guest's own, a page it shares with the hypervisor, a device's), as opposed to the hypervisor's. */
export function isGuestRegion(region: string): boolean {
  return region.startsWith('guest[') || region.startsWith('disk.') || region.startsWith('nic.');
}

/** The verdict's record (see the module comment), and the fields of the `crashed` region. */
const NIC_RECORD = new Set(['transmissions', 'droppedPingIds', 'logHash']);
export const KERNEL_RECORD: ReadonlySet<string> = new Set(['failure', 'halted', 'longGaps', 'lastProgressNs', 'pausedIntervals', 'serviceInterruptions', 'lastCall']);
const VCPU_NAMES: Readonly<Record<string, string>> = { token: 'resumeToken' };

/**
 * How guests are named: by kernel (`guest[unixbench]`), with the domain after a colon when two
 * guests run the same kernel (`guest[kvserver:3]`), and by domain when no guest is attached
 * (`guest[dom5]`, a page no guest uses).
 */
export function guestNames(system: System): (domainId: number) => string {
  const kernels = system.host.saveState().kernels as ({ kernel: string } | undefined)[];
  const counts = new Map<string, number>();
  for (const kernel of kernels) if (kernel !== undefined) counts.set(kernel.kernel, (counts.get(kernel.kernel) ?? 0) + 1);
  return (domainId) => {
    const kernel = kernels[domainId];
    if (kernel === undefined) return `guest[dom${domainId}]`;
    return (counts.get(kernel.kernel) ?? 0) > 1 ? `guest[${kernel.kernel}:${domainId}]` : `guest[${kernel.kernel}]`;
  };
}

/**
 * A word of a shared guest page, named as the guests' protocol names it, or undefined for
 * hypervisor memory: ring header fields and entries (`guest[netbench].ring.responseConsumer`,
 * `guest[blkbench].ring.request[3].data`), multicall entries (`guest[unixbench].multicall[2].result`).
 */
export function guestPageNamer(system: System): (address: number) => string | undefined {
  const layout = system.hypervisor.layout;
  const nameOf = guestNames(system);
  const headers = Object.entries(RingHeader);
  const entryField = (fields: Readonly<Record<string, number>>, offset: number): string => Object.entries(fields).find(([, at]) => at === offset)?.[0] ?? `word${offset}`;
  return (address) => {
    for (let domainId = 0; domainId < layout.rings.length; domainId++) {
      const offset = address - layout.rings[domainId];
      if (offset < 0 || offset >= RING_WORDS) continue;
      const header = headers.find(([, at]) => at === offset);
      if (header !== undefined) return `${nameOf(domainId)}.ring.${header[0]}`;
      for (const [array, base] of [['request', RING_REQUESTS_OFFSET], ['response', RING_RESPONSES_OFFSET]] as const) {
        const within = offset - base;
        if (within >= 0 && within < RING_SIZE * RING_ENTRY_WORDS) return `${nameOf(domainId)}.ring.${array}[${Math.floor(within / RING_ENTRY_WORDS)}].${entryField(RingEntry, within % RING_ENTRY_WORDS)}`;
      }
      return `${nameOf(domainId)}.ring.word${offset}`;
    }
    for (let domainId = 0; domainId < layout.multicallBuffers.length; domainId++) {
      const offset = address - layout.multicallBuffers[domainId];
      if (offset < 0 || offset >= MULTICALL_BUFFER_WORDS) continue;
      return `${nameOf(domainId)}.multicall[${Math.floor(offset / MULTICALL_ENTRY_WORDS)}].${entryField(MulticallEntry, offset % MULTICALL_ENTRY_WORDS)}`;
    }
    return undefined;
  };
}

interface Unit {
  /** the region name's prefix */
  readonly name: string;
  readonly path: StatePath;
  /** more paths set back with the region (the `crashed` region's) */
  readonly alsoPaths?: readonly StatePath[];
  readonly trial: unknown;
  readonly golden: unknown;
  readonly start: unknown;
  /** in step with the fault-free run (never, for a device) */
  readonly inStep: boolean;
  /** compared whole (a vCPU's fields: its pending hypercall is one region) */
  readonly whole?: boolean;
}

interface SavedKernel {
  readonly state: Record<string, unknown>;
}

/**
 * Compare the guests and devices of `trial` with `golden` (the fault-free run at the same point),
 * given `start` (the fault-free run at the start of the interval): see the module comment for
 * the rule. Guests the fault-free run does not have at this point (a VM created only in the
 * trial) are not compared.
 */
export function compareGuests(trial: GuestStateTree, golden: GuestStateTree, start: GuestStateTree, nameOf: (domainId: number) => string): GuestComparison {
  const comparison: GuestComparison = { differences: [], paths: new Map(), progressIgnored: 0 };
  for (const unit of unitsOf(trial, golden, start, nameOf)) {
    if (unit.whole === true || unit.alsoPaths !== undefined) compareLeaf(unit, unit.name, [unit.path, ...(unit.alsoPaths ?? [])], unit.trial, unit.golden, unit.start, comparison);
    else compareValues(unit, unit.name, unit.path, unit.trial, unit.golden, unit.start, comparison);
  }
  return comparison;
}

function unitsOf(trial: GuestStateTree, golden: GuestStateTree, start: GuestStateTree, nameOf: (domainId: number) => string): Unit[] {
  const units: Unit[] = [];
  trial.host.kernels.forEach((saved, domainId) => {
    const goldenKernel = golden.host.kernels[domainId] as SavedKernel | undefined;
    const vcpu = trial.host.vcpus[domainId];
    const goldenVcpu = golden.host.vcpus[domainId];
    if (saved === undefined || goldenKernel === undefined || vcpu === null || vcpu === undefined || goldenVcpu === null || goldenVcpu === undefined) return;
    const startVcpu = start.host.vcpus[domainId] ?? undefined;
    const inStep = vcpu.token === goldenVcpu.token && vcpu.awaitingReturn === goldenVcpu.awaitingReturn && vcpu.computeEndNs === goldenVcpu.computeEndNs;
    const name = nameOf(domainId);
    const startKernel = start.host.kernels[domainId] as SavedKernel | undefined;
    const state = (saved as SavedKernel).state;
    units.push({ name, path: ['host', 'kernels', domainId, 'state'], trial: withoutRecord(state), golden: withoutRecord(goldenKernel.state), start: startKernel === undefined ? undefined : withoutRecord(startKernel.state), inStep });
    const stopped = (kernel: Record<string, unknown> | undefined, crashed: boolean | undefined): unknown => (kernel === undefined ? undefined : { crashed, halted: kernel.halted });
    units.push({
      name: `${name}.crashed`,
      path: ['host', 'vcpus', domainId, 'crashed'],
      alsoPaths: [['host', 'kernels', domainId, 'state', 'halted'], ['host', 'kernels', domainId, 'state', 'failure']],
      trial: stopped(state, vcpu.crashed),
      golden: stopped(goldenKernel.state, goldenVcpu.crashed),
      start: stopped(startKernel?.state, startVcpu?.crashed),
      inStep,
    });
    for (const field of new Set([...Object.keys(vcpu), ...Object.keys(goldenVcpu)])) {
      if (field === 'crashed') continue;
      const key = field as keyof typeof vcpu;
      units.push({ name: `${name}.${VCPU_NAMES[field] ?? `vcpu.${field}`}`, path: ['host', 'vcpus', domainId, field], trial: vcpu[key], golden: goldenVcpu[key], start: startVcpu?.[key], inStep, whole: true });
    }
  });
  for (const field of Object.keys(trial.disk)) {
    if (field === 'random') continue;
    const key = field as keyof DiskState;
    units.push({ name: `disk.${field}`, path: ['disk', field], trial: trial.disk[key], golden: golden.disk[key], start: start.disk[key], inStep: false });
  }
  for (const field of Object.keys(trial.nic)) {
    if (NIC_RECORD.has(field)) continue;
    const key = field as keyof NicState;
    units.push({ name: `nic.${field}`, path: ['nic', field], trial: trial.nic[key], golden: golden.nic[key], start: start.nic[key], inStep: false });
  }
  return units;
}

/**
 * Walk a value of both runs: plain objects of one shape field by field (the same fields, and the
 * same `kind` when they are tagged: an operation of another kind is one region, set back whole,
 * not field by field into a shape no guest makes), arrays of numbers of one length word by word
 * (`model[3]`); anything else is one region, compared whole.
 */
function compareValues(unit: Unit, name: string, path: StatePath, trial: unknown, golden: unknown, start: unknown, into: GuestComparison): void {
  if (isRecord(trial) && isRecord(golden) && sameShape(trial, golden)) {
    for (const key of new Set([...Object.keys(trial), ...Object.keys(golden)])) {
      compareValues(unit, `${name}.${key}`, [...path, key], trial[key], golden[key], isRecord(start) ? start[key] : undefined, into);
    }
    return;
  }
  if (isNumbers(trial) && isNumbers(golden) && trial.length === golden.length) {
    const startWords = isNumbers(start) && start.length === golden.length ? start : undefined;
    trial.forEach((value, index) => compareLeaf(unit, `${name}[${index}]`, [[...path, index]], value, golden[index], startWords?.[index], into));
    return;
  }
  compareLeaf(unit, name, [path], trial, golden, start, into);
}

/** One region: damage when in step, or when the fault-free run held it still over the interval; else progress. */
export function compareLeaf(unit: { readonly inStep: boolean }, region: string, paths: readonly StatePath[], trial: unknown, golden: unknown, start: unknown, into: GuestComparison): void {
  if (same(trial, golden)) return;
  if (!unit.inStep && !same(start, golden)) {
    into.progressIgnored++;
    return;
  }
  into.paths.set(region, paths);
  into.differences.push({ region, kind: kindOfRegion(region), words: 1, trialValue: shown(trial), goldenValue: shown(golden) });
}

/**
 * Set the guest regions `paths` of `system` back to their values in `golden` (deep copies), by
 * loading the system's own guest and device state with those values in place.
 */
export function setGuestsBack(system: System, golden: GuestStateTree, paths: readonly StatePath[]): void {
  if (paths.length === 0) return;
  // a deep copy: a saved vCPU shares its pending action with the live one, and that with the
  // snapshot it was restored from (the golden run's checkpoint), which must not change
  const tree = copyPlainData(guestStateOf(system));
  for (const path of paths) assign(tree, path, copyPlainData(valueAt(golden, path)));
  system.host.loadState(tree.host);
  system.disk.loadState(tree.disk);
  system.nic.loadState(tree.nic);
}

export function valueAt(tree: unknown, path: StatePath): unknown {
  let value = tree;
  for (const key of path) value = (value as Record<string | number, unknown> | undefined)?.[key];
  return value;
}

function assign(tree: unknown, path: StatePath, value: unknown): void {
  const parent = valueAt(tree, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]] = value;
}

/** A kernel's state without the verdict's record (see the module comment). */
function withoutRecord(state: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(state).filter(([field]) => !KERNEL_RECORD.has(field)));
}

function sameShape(x: Record<string, unknown>, y: Record<string, unknown>): boolean {
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((key) => key in y) && x.kind === y.kind;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNumbers(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((element) => typeof element === 'number');
}

function same(x: unknown, y: unknown): boolean {
  if (Object.is(x, y)) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  return JSON.stringify(x) === JSON.stringify(y);
}

/** A region's value in a difference: a number as it is, anything else as short JSON. */
function shown(value: unknown): number | string {
  if (typeof value === 'number') return value;
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
