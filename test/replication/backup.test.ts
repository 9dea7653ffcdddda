/**
 * The backup host's restore through the machine: its own booted hypervisor creates the AppVMs'
 * domains through domctl in simulated code, the checkpointed state is loaded into them, and
 * they run on there; a backup whose domctl path is broken fails the takeover.
 */
import { describe, expect, it } from 'vitest';
import { getConfiguration } from '../../src/guests/configurations.js';
import { Hypercall, PRIVILEGED_DOMAIN_ID } from '../../src/hypervisor/abi.js';
import { DOMAIN_TABLE, HYPERCALL_TABLE } from '../../src/hypervisor/layout.js';
import { takeOver } from '../../src/trial/backup.js';
import { checkpointBefore, goldenRun } from '../../src/trial/golden-cache.js';
import { failedAppVms } from '../../src/trial/recover-and-run.js';
import { System } from '../../src/trial/system.js';

const MS = 1_000_000;
const OPTIONS = { configuration: '3AppVM', seed: 1 };

/** The golden run's state at about 1 s: what the primary's last committed checkpoint holds. */
function aCheckpoint(): { snapshot: ReturnType<typeof goldenRun>['final']; takenNs: number } {
  const checkpoint = checkpointBefore(goldenRun(OPTIONS), 1_000 * MS);
  return { snapshot: checkpoint.snapshot, takenNs: checkpoint.timeNs };
}

describe('the backup host', () => {
  it('boots with its PrivVM alone and creates each AppVM through its own domctl, then runs them on', () => {
    const { snapshot, takenNs } = aCheckpoint();
    const appVms = getConfiguration('3AppVM').domains.map((domain) => domain.domainId).filter((id) => id !== PRIVILEGED_DOMAIN_ID);
    expect(appVms.length).toBeGreaterThan(1);
    let bootedDomains: number[] = [];
    const takeover = takeOver(OPTIONS, snapshot, takenNs, takenNs + 300 * MS, {
      beforeRestore: (backup) => {
        const words = backup.machine.memory.words;
        bootedDomains = [PRIVILEGED_DOMAIN_ID, ...appVms].filter((id) => words[DOMAIN_TABLE + id] !== 0);
      },
    });
    expect(bootedDomains).toEqual([PRIVILEGED_DOMAIN_ID]);
    expect(takeover.kind).toBe('resumed');
    const backup = takeover.backup;
    // the toolstack's domctl(create) ran in the backup's machine, once per AppVM
    expect(backup.host.hypercallCounts[Hypercall.Domctl]).toBe(appVms.length);
    const words = backup.machine.memory.words;
    for (const id of appVms) expect(words[DOMAIN_TABLE + id]).toBe(backup.hypervisor.layout.domains[id]);
    // the guests resumed from the checkpoint's state, not from boot: their work counts go on from it
    const reference = new System(OPTIONS);
    reference.restore(snapshot);
    for (const id of appVms) {
      const before = reference.host.kernel(id)?.summary() ?? {};
      const after = backup.host.kernel(id)?.summary() ?? {};
      expect(Object.values(before).some((count) => count > 0)).toBe(true);
      for (const [name, count] of Object.entries(before)) expect(after[name]).toBeGreaterThanOrEqual(count);
    }
    backup.hypervisor.run({ untilNs: backup.runLengthNs });
    expect(backup.hypervisor.detections).toEqual([]);
    const paused = [{ startNs: takenNs, endNs: takeover.kind === 'resumed' ? takeover.resumeNs : 0 }];
    for (const kernel of backup.kernels()) kernel.setServiceInterruptions(paused);
    expect(failedAppVms(backup)).toEqual([]);
    // and they went on working there
    for (const id of appVms) expect(JSON.stringify(backup.host.saveState().kernels[id])).not.toBe(JSON.stringify(snapshot.host.kernels[id]));
  });

  it('fails the takeover when its domctl path is broken: the restore runs in its machine', () => {
    const { snapshot, takenNs } = aCheckpoint();
    const takeover = takeOver(OPTIONS, snapshot, takenNs, takenNs + 300 * MS, {
      beforeRestore: (backup) => {
        backup.machine.memory.words[HYPERCALL_TABLE + Hypercall.Domctl] = 0;
      },
    });
    expect(takeover.kind).toBe('failed');
    if (takeover.kind === 'failed') expect(takeover.detail).toMatch(/restoring domain 1/);
  });
});
