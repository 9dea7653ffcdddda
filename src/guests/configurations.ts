/**
 * Named guest configurations, as data: which domain runs which workload on which CPU, how long
 * a run lasts, and where the VM created after recovery goes.
 */
import { PRIVILEGED_DOMAIN_ID } from '../hypervisor/abi.js';
import { NinelivesError } from '../errors.js';

export type DomainKind = 'privvm' | 'unixbench' | 'blkbench' | 'netbench' | 'kvserver';

export interface DomainPlan {
  readonly domainId: number;
  readonly kind: DomainKind;
  readonly cpu: number;
}

export interface Configuration {
  readonly name: string;
  readonly description: string;
  readonly cpuCount: number;
  readonly domains: readonly DomainPlan[];
  readonly runLengthNs: number;
  /** the VM created to check the hypervisor after recovery: its CPU (free until then) and workload */
  readonly newVm: { readonly cpu: number; readonly kind: DomainKind };
  /** whether the trial creates that VM after a recovery (the paper does so in 3AppVM only) */
  readonly createsVmAfterRecovery: boolean;
}

const privVm: DomainPlan = { domainId: PRIVILEGED_DOMAIN_ID, kind: 'privvm', cpu: 0 };

const configurations: readonly Configuration[] = [
  {
    name: '1AppVM',
    description: 'PrivVM on CPU 0 and one UnixBench AppVM on CPU 1',
    cpuCount: 4,
    domains: [privVm, { domainId: 1, kind: 'unixbench', cpu: 1 }],
    runLengthNs: 1_000_000_000,
    newVm: { cpu: 2, kind: 'blkbench' },
    createsVmAfterRecovery: false,
  },
  {
    name: '1AppVM-blk',
    description: 'PrivVM on CPU 0 and one BlkBench AppVM on CPU 1',
    cpuCount: 4,
    domains: [privVm, { domainId: 1, kind: 'blkbench', cpu: 1 }],
    runLengthNs: 1_000_000_000,
    newVm: { cpu: 2, kind: 'blkbench' },
    createsVmAfterRecovery: false,
  },
  {
    name: '3AppVM',
    description: 'PrivVM on CPU 0, UnixBench on CPU 1, NetBench on CPU 2; after recovery a new BlkBench VM on CPU 3',
    cpuCount: 4,
    domains: [privVm, { domainId: 1, kind: 'unixbench', cpu: 1 }, { domainId: 2, kind: 'netbench', cpu: 2 }],
    runLengthNs: 2_400_000_000,
    newVm: { cpu: 3, kind: 'blkbench' },
    createsVmAfterRecovery: true,
  },
  {
    name: '3AppVM-mt',
    description:
      'PrivVM on CPU 0, a two-vCPU key-value server on CPUs 1 and 3 (domains 1 and 3: one vCPU per domain in this hypervisor), NetBench on CPU 2; after recovery a new BlkBench VM on CPU 4',
    cpuCount: 5,
    domains: [privVm, { domainId: 1, kind: 'kvserver', cpu: 1 }, { domainId: 2, kind: 'netbench', cpu: 2 }, { domainId: 3, kind: 'kvserver', cpu: 3 }],
    runLengthNs: 2_400_000_000,
    newVm: { cpu: 4, kind: 'blkbench' },
    createsVmAfterRecovery: true,
  },
];

export class UnknownConfigurationError extends NinelivesError {
  constructor(readonly requested: string) {
    super('usage.invalidConfig', `unknown configuration "${requested}"; known configurations: ${configurationNames().join(', ')}`);
  }
}

export function configurationNames(): string[] {
  return configurations.map((configuration) => configuration.name);
}

export function getConfiguration(name: string): Configuration {
  const found = configurations.find((configuration) => configuration.name === name);
  if (found === undefined) throw new UnknownConfigurationError(name);
  return found;
}
