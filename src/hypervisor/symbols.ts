/**
 * Names for hypervisor addresses, for traces and trial records: `schedule+4` in code,
 * `percpu[1].irqCount` in static data, `vcpu[2].runState` or `frame[17].useCount` in the heap.
 */
import type { Program } from '../machine/assembler.js';
import { symbolizerFor } from '../machine/disassembler.js';
import type { Struct } from '../machine/assembler.js';
import { FRAME_COUNT } from './abi.js';
import type { HeapLayout } from './boot.js';
import {
  CODE_BASE,
  CODE_WORDS,
  CpuLocks,
  Domain,
  FrameDescriptor,
  MULTICALL_BUFFER_WORDS,
  PerCpu,
  RING_WORDS,
  STATIC_BASE,
  StaticData,
  StaticLocks,
  Timer,
  Vcpu,
} from './layout.js';

interface Region {
  readonly name: string;
  readonly base: number;
  readonly count: number;
  readonly struct: Struct<string> | undefined;
  readonly strideWords: number;
}

export class AddressNamer {
  private readonly codeSymbol: (address: number) => string | undefined;
  private readonly regions: Region[];

  constructor(program: Program, layout: HeapLayout) {
    this.codeSymbol = symbolizerFor(program.labels);
    this.regions = [...staticRegions(), ...heapRegions(layout)];
  }

  name(address: number): string {
    if (address >= CODE_BASE && address < CODE_BASE + CODE_WORDS) return this.codeSymbol(address) ?? `code+${address - CODE_BASE}`;
    for (const region of this.regions) {
      const offset = address - region.base;
      if (offset < 0 || offset >= region.count * region.strideWords) continue;
      const index = Math.floor(offset / region.strideWords);
      const field = fieldAt(region.struct, offset % region.strideWords);
      const indexed = region.count > 1 ? `${region.name}[${index}]` : region.name;
      return field === undefined ? `${indexed}+${offset % region.strideWords}` : `${indexed}.${field}`;
    }
    return `0x${address.toString(16)}`;
  }
}

function fieldAt(struct: Struct<string> | undefined, offset: number): string | undefined {
  if (struct === undefined) return undefined;
  let best: [string, number] | undefined;
  for (const entry of Object.entries(struct.offset)) {
    if (entry[1] <= offset && (best === undefined || entry[1] > best[1])) best = entry;
  }
  if (best === undefined) return undefined;
  return best[1] === offset ? best[0] : `${best[0]}+${offset - best[1]}`;
}

function staticRegions(): Region[] {
  const at = (field: keyof typeof StaticData.offset): number => STATIC_BASE + StaticData.offset[field];
  return [
    { name: 'locks', base: at('locks'), count: 1, struct: StaticLocks, strideWords: StaticLocks.sizeWords },
    { name: 'percpu', base: at('perCpu'), count: 8, struct: PerCpu, strideWords: PerCpu.sizeWords },
    { name: 'static', base: STATIC_BASE, count: 1, struct: StaticData, strideWords: StaticData.sizeWords },
  ];
}

function heapRegions(layout: HeapLayout): Region[] {
  const each = (name: string, addresses: readonly number[], struct: Struct<string> | undefined, strideWords: number): Region[] =>
    addresses.map((base, index) => ({ name: `${name}[${index}]`, base, count: 1, struct, strideWords }));
  return [
    { name: 'frame', base: layout.frameTable, count: FRAME_COUNT, struct: FrameDescriptor, strideWords: FrameDescriptor.sizeWords },
    ...each('domain', layout.domains, Domain, Domain.sizeWords),
    ...each('vcpu', layout.vcpus, Vcpu, Vcpu.sizeWords),
    ...each('ring', layout.rings, undefined, RING_WORDS),
    ...each('multicall', layout.multicallBuffers, undefined, MULTICALL_BUFFER_WORDS),
    ...each('idle_vcpu', layout.idleVcpus, Vcpu, Vcpu.sizeWords),
    ...each('tick_timer', layout.schedulerTickTimers, Timer, Timer.sizeWords),
    ...each('watchdog_timer', layout.watchdogTimers, Timer, Timer.sizeWords),
    ...each('time_sync_timer', [layout.timeSyncTimer], Timer, Timer.sizeWords),
    // each CPU's schedule and timer locks, allocated at boot one CPU after the other
    { name: 'cpu_locks', base: layout.cpuLocks, count: layout.schedulerTickTimers.length, struct: CpuLocks, strideWords: CpuLocks.sizeWords },
  ];
}

