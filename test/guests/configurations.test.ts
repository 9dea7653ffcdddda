import { describe, expect, it } from 'vitest';
import { PRIVILEGED_DOMAIN_ID } from '../../src/hypervisor/abi.js';
import { UnknownConfigurationError, configurationNames, getConfiguration } from '../../src/guests/configurations.js';

describe('configurations', () => {
  it('lists the named configurations', () => {
    expect(configurationNames()).toEqual(['1AppVM', '1AppVM-blk', '3AppVM', '3AppVM-mt']);
  });

  it('describes 3AppVM as in the paper, with CPU 3 left for the post-recovery BlkBench VM', () => {
    const configuration = getConfiguration('3AppVM');
    expect(configuration.cpuCount).toBe(4);
    expect(configuration.runLengthNs).toBe(2_400_000_000);
    expect(configuration.domains.map((domain) => [domain.domainId, domain.kind, domain.cpu])).toEqual([
      [0, 'privvm', 0],
      [1, 'unixbench', 1],
      [2, 'netbench', 2],
    ]);
    expect(configuration.newVm).toEqual({ cpu: 3, kind: 'blkbench' });
    expect(configuration.createsVmAfterRecovery).toBe(true);
  });

  it.each(configurationNames())('%s: one PrivVM (domain 0), one vCPU per CPU, the new VM on a free CPU', (name) => {
    const configuration = getConfiguration(name);
    const cpus = configuration.domains.map((domain) => domain.cpu);
    expect(configuration.domains.filter((domain) => domain.kind === 'privvm')).toEqual([{ domainId: PRIVILEGED_DOMAIN_ID, kind: 'privvm', cpu: 0 }]);
    expect(new Set(cpus).size).toBe(cpus.length);
    expect(cpus.every((cpu) => cpu >= 0 && cpu < configuration.cpuCount)).toBe(true);
    expect(cpus).not.toContain(configuration.newVm.cpu);
  });

  it('rejects an unknown name with a typed error listing the known ones', () => {
    expect(() => getConfiguration('2AppVM')).toThrow(UnknownConfigurationError);
    try {
      getConfiguration('2AppVM');
    } catch (error) {
      expect((error as UnknownConfigurationError).code).toBe('usage.invalidConfig');
      expect((error as Error).message).toContain('1AppVM, 1AppVM-blk, 3AppVM');
    }
  });
});
