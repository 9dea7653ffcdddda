/**
 * Read-only views of a system that the invariants compare: a VM's preserved state, a guest's
 * results stream, a domain's page table and frame use counts, and the hypercalls recovery
 * rewound. Nothing here changes the system.
 */
import { FRAMES_PER_DOMAIN, PAGE_TABLE_SLOTS, firstFrameOf } from '../hypervisor/abi.js';
import { DOMAIN_TABLE, Domain, MULTICALL_BUFFER_WORDS, RING_WORDS, Vcpu } from '../hypervisor/layout.js';
import { frameField } from '../hypervisor/frames.js';
import type { GuestKernel } from '../guests/kernel.js';
import type { System } from '../trial/system.js';

/**
 * What recovery must preserve of a VM: the guest's own state (its memory, as the kernel's saved
 * state), the resume token the hypervisor saved for it (its saved context), and the shared
 * pages it uses (I/O ring, multicall buffer), as JSON text so that comparing is exact.
 */
export interface VmState {
  readonly domainId: number;
  readonly workload: string;
  readonly parts: Readonly<Record<VmStatePart, string>>;
}

export type VmStatePart = 'guestState' | 'savedResumeToken' | 'ring' | 'multicallBuffer';

export function vmStates(system: System): VmState[] {
  const words = system.machine.memory.words;
  const layout = system.hypervisor.layout;
  return system.kernels().map((kernel) => {
    const id = kernel.domainId;
    return {
      domainId: id,
      workload: kernel.name,
      parts: {
        guestState: JSON.stringify(kernel.saveState()),
        savedResumeToken: String(words[layout.vcpus[id] + Vcpu.offset.resumeToken]),
        ring: JSON.stringify(Array.from(words.subarray(layout.rings[id], layout.rings[id] + RING_WORDS))),
        multicallBuffer: JSON.stringify(Array.from(words.subarray(layout.multicallBuffers[id], layout.multicallBuffers[id] + MULTICALL_BUFFER_WORDS))),
      },
    };
  });
}

/** The parts of `before` that differ in `after`, per VM present in both. */
export function changedParts(before: readonly VmState[], after: readonly VmState[]): { domainId: number; workload: string; parts: VmStatePart[] }[] {
  return before.flatMap((vm) => {
    const later = after.find((candidate) => candidate.domainId === vm.domainId);
    if (later === undefined) return [];
    const parts = (Object.keys(vm.parts) as VmStatePart[]).filter((part) => vm.parts[part] !== later.parts[part]);
    return parts.length === 0 ? [] : [{ domainId: vm.domainId, workload: vm.workload, parts }];
  });
}

/**
 * A guest's results stream: `work` counts the operations whose answers it records, `checksum`
 * hashes those answers in order. Only workloads whose stream does not depend on timing have one:
 * UnixBench (mmu_update and multicall answers) and BlkBench (verified block responses). NetBench's
 * replies depend on which pings arrived, and the PrivVM serves the others.
 */
export interface Results {
  readonly work: number;
  readonly checksum: number;
}

export function resultsOf(kernel: GuestKernel): Results | undefined {
  const summary = kernel.summary();
  switch (kernel.name) {
    case 'unixbench':
      return { work: summary.mmuUpdates + summary.multicalls, checksum: summary.checksum };
    case 'blkbench':
      return { work: summary.completed, checksum: summary.checksum };
    default:
      return undefined;
  }
}

export interface GuestProgress {
  readonly domainId: number;
  readonly workload: string;
  readonly results: Results | undefined;
  /** BlkBench: its whole sequence is done */
  readonly finished: boolean;
}

export function guestProgress(system: System): GuestProgress[] {
  return system.kernels().map((kernel) => ({
    domainId: kernel.domainId,
    workload: kernel.name,
    results: resultsOf(kernel),
    finished: kernel.summary().finished === 1,
  }));
}

/** A domain's page table and the use counts of the frames it owns, as the hypervisor holds them. */
export interface DomainPages {
  readonly pageTable: readonly number[];
  readonly useCounts: readonly number[];
}

export function domainPages(system: System, domainId: number): DomainPages {
  const words = system.machine.memory.words;
  const layout = system.hypervisor.layout;
  const domain = layout.domains[domainId];
  const pageTable = Array.from(words.subarray(domain + Domain.offset.pageTable, domain + Domain.offset.pageTable + PAGE_TABLE_SLOTS));
  const useCounts = Array.from({ length: FRAMES_PER_DOMAIN }, (_, index) => {
    const frame = firstFrameOf(domainId) + index;
    return words[frameField(layout.frameTable, frame, 'useCount')];
  });
  return { pageTable, useCounts };
}

export interface RewoundHypercall {
  readonly domainId: number;
  readonly workload: string;
  readonly hypercall: number;
  readonly args: readonly [number, number, number];
  /** the guest's results stream when recovery released the CPUs */
  readonly resultsAtResume: Results | undefined;
}

/** The hypercalls recovery marked for the guest to issue again (vCPU restart flag set). */
export function rewoundHypercalls(system: System): RewoundHypercall[] {
  const words = system.machine.memory.words;
  const layout = system.hypervisor.layout;
  return system.kernels().flatMap((kernel) => {
    const id = kernel.domainId;
    if (words[DOMAIN_TABLE + id] === 0) return [];
    const vcpu = layout.vcpus[id];
    if (words[vcpu + Vcpu.offset.restartHypercall] === 0) return [];
    const argument = (index: number): number => words[vcpu + Vcpu.offset.hypercallArguments + index];
    return [{
      domainId: id,
      workload: kernel.name,
      hypercall: words[vcpu + Vcpu.offset.hypercallNumber],
      args: [argument(0), argument(1), argument(2)] as const,
      resultsAtResume: resultsOf(kernel),
    }];
  });
}
