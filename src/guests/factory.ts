/** Builds a guest kernel of a given kind from that kind's options. */
import { BlkBench, type BlkBenchOptions } from './blkbench.js';
import type { DomainKind } from './configurations.js';
import type { GuestKernel } from './kernel.js';
import { KvThread, type KvThreadOptions } from './kvserver.js';
import { NetBench, type NetBenchOptions } from './netbench.js';
import { PrivVm, type PrivVmOptions } from './privvm.js';
import { UnixBench, type UnixBenchOptions } from './unixbench.js';

export interface KernelOptionsByKind {
  privvm: PrivVmOptions;
  unixbench: UnixBenchOptions;
  blkbench: BlkBenchOptions;
  netbench: NetBenchOptions;
  kvserver: KvThreadOptions;
}

export interface KernelByKind {
  privvm: PrivVm;
  unixbench: UnixBench;
  blkbench: BlkBench;
  netbench: NetBench;
  kvserver: KvThread;
}

export function createKernel<K extends DomainKind>(kind: K, options: KernelOptionsByKind[K]): KernelByKind[K] & GuestKernel {
  const builders: { [Kind in DomainKind]: (options: KernelOptionsByKind[Kind]) => KernelByKind[Kind] } = {
    privvm: (privVmOptions) => new PrivVm(privVmOptions),
    unixbench: (unixBenchOptions) => new UnixBench(unixBenchOptions),
    blkbench: (blkBenchOptions) => new BlkBench(blkBenchOptions),
    netbench: (netBenchOptions) => new NetBench(netBenchOptions),
    kvserver: (kvOptions) => new KvThread(kvOptions),
  };
  const build = builders[kind];
  if (build === undefined) throw new Error(`unknown guest kind "${String(kind)}"`);
  return build(options);
}
