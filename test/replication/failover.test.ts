/**
 * Failover (Remus/NiLiCon) through the machine: output commit on the golden run, a host
 * fail-stop recovered on the backup and not by microreset, heartbeat detection timing, and the
 * cost of replication as the epoch changes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { changedPages } from '../../src/replication/checkpoint.js';
import { HeartbeatMonitor, MISSED_HEARTBEATS } from '../../src/replication/heartbeat.js';
import { DEFAULT_LINK } from '../../src/replication/link.js';
import { releaseTimeNs } from '../../src/replication/output-commit.js';
import { DEFAULT_REPLICATION, measureReplicationCost } from '../../src/trial/failover.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial, runTrialVariants } from '../../src/trial/trial.js';
import type { HeapLayout } from '../../src/hypervisor/boot.js';
import { StaticData, Vcpu } from '../../src/hypervisor/layout.js';
import { System } from '../../src/trial/system.js';

const MS = 1_000_000;
const THREE_APP_VM = { configuration: '3AppVM', seed: 1 };
/** seed 1, trial 0: the host stops at 1309 ms, while every VM is running */
const hostStop: TrialSpec = { ...THREE_APP_VM, trialIndex: 0, faultType: 'hostFailstop' };

describe('output commit', () => {
  it('releases each NetBench reply only when the checkpoint of its epoch has committed on the backup', () => {
    const cost = measureReplicationCost(THREE_APP_VM);
    expect(cost.outputs.filter((output) => output.kind === 'reply').length).toBeGreaterThan(1_000);
    const lastTakenNs = cost.commits.at(-1)?.takenNs ?? 0;
    for (const { producedNs, releasedNs } of cost.outputs) {
      const commit = cost.commits.find((candidate) => candidate.takenNs >= producedNs);
      // an output after the last checkpoint of the run is never released
      if (commit === undefined) expect(producedNs).toBeGreaterThan(lastTakenNs);
      expect(releasedNs).toBe(commit?.committedNs);
      if (commit !== undefined) expect(releasedNs).toBeGreaterThan(commit.takenNs);
    }
    // the delay is about half an epoch plus the stop time and the round trip
    expect(cost.outputDelayMs.p50).toBeGreaterThan(DEFAULT_REPLICATION.epochMs / 2);
    expect(cost.outputDelayMs.p99).toBeLessThan(DEFAULT_REPLICATION.epochMs + 3 * cost.pauseMs.max);
  });

  it('holds each disk write the PrivVM completes until its epoch commits, and counts it in the output delay', () => {
    const blk = { configuration: '1AppVM-blk', seed: 1 };
    const cost = measureReplicationCost(blk);
    const writes = cost.outputs.filter((output) => output.kind === 'diskWrite');
    // BlkBench's writes, as the PrivVM takes their completions from the disk
    expect(writes.length).toBeGreaterThan(10);
    expect(cost.outputs.every((output) => output.kind === 'diskWrite' || output.kind === 'reply')).toBe(true);
    for (const { producedNs, releasedNs } of writes) {
      const commit = cost.commits.find((candidate) => candidate.takenNs >= producedNs);
      expect(releasedNs).toBe(commit?.committedNs);
    }
    // with no NetBench, the delay is the writes' alone: about half an epoch and more
    expect(cost.outputDelayMs.p50).toBeGreaterThan(DEFAULT_REPLICATION.epochMs / 4);
  });

  it('holds back an output whose checkpoint has not committed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1_000 }), { maxLength: 20 }), fc.integer({ min: 0, max: 1_100 }), (ends, producedNs) => {
        const commits = [...new Set(ends)].sort((x, y) => x - y).map((takenNs) => ({ takenNs, committedNs: takenNs + 7 }));
        const expected = commits.find((commit) => commit.takenNs >= producedNs)?.committedNs;
        expect(releaseTimeNs(commits, producedNs)).toBe(expected);
      }),
    );
  });

  it('takes the pauses from the guests: the work lost is measured, and close to the paused share', () => {
    const cost = measureReplicationCost(THREE_APP_VM);
    expect(cost.pausedPercent).toBeGreaterThan(0);
    expect(cost.overheadPercent).toBeGreaterThan(cost.pausedPercent / 2);
    expect(cost.overheadPercent).toBeLessThan(cost.pausedPercent * 2);
    // replies leave later than without replication: by the pause they waited out and the commit
    const delayed = cost.outputs.filter((output) => output.releasedNs !== undefined && output.withoutReplicationNs !== undefined);
    expect(delayed.length).toBeGreaterThan(1_000);
    expect(delayed.filter((output) => output.producedNs > (output.withoutReplicationNs ?? 0)).length).toBeGreaterThan(delayed.length / 10);
  });

  it('costs more as the epoch shrinks, and delays outputs less', () => {
    const short = measureReplicationCost(THREE_APP_VM, { ...DEFAULT_REPLICATION, epochMs: 10 });
    const long = measureReplicationCost(THREE_APP_VM, { ...DEFAULT_REPLICATION, epochMs: 100 });
    expect(short.overheadPercent).toBeGreaterThan(2 * long.overheadPercent);
    expect(short.outputDelayMs.p50).toBeLessThan(long.outputDelayMs.p50);
  });
});

describe('a host fail-stop', () => {
  it('is recovered by failover on the backup, and not by microreset, which nothing ever calls', () => {
    const [reset, failover] = runTrialVariants([{ ...hostStop, mechanism: 'microreset' }, { ...hostStop, mechanism: 'failover' }]);
    expect(reset.outcome).toBe('sdc');
    expect(failover.outcome).toBe('detected');
    if (failover.outcome !== 'detected') return;
    expect(failover.detection.detector).toBe('heartbeat');
    expect(failover.recovery?.result).toBe('recovered');
    // the service interruption: detection by heartbeat, restore and resume (hundreds of ms)
    expect(failover.recovery?.serviceInterruptionMs).toBeGreaterThan(200);
    expect(failover.recovery?.serviceInterruptionMs).toBeLessThan(1_000);
  });

  it.each([10, 30])('is declared by the backup when %i ms heartbeats stop coming, three missed in a row', (heartbeatMs) => {
    const { record } = runTrial({ ...hostStop, mechanism: 'failover', replication: { heartbeatMs } });
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    const latencyNs = record.detectionLatencyNs;
    expect(latencyNs).toBeGreaterThan((MISSED_HEARTBEATS - 1) * heartbeatMs * MS);
    expect(latencyNs).toBeLessThanOrEqual(MISSED_HEARTBEATS * heartbeatMs * MS + DEFAULT_LINK.latencyMs * MS);
  });

  it.each([10, 30])('is recovered from a checkpoint taken before the stop with %i ms epochs: a stopped host sends none', (epochMs) => {
    const { record } = runTrial({ ...hostStop, mechanism: 'failover', replication: { epochMs } });
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    expect(record.recovery?.result).toBe('recovered');
    const restored = record.recovery?.steps.find((step) => step.step === 'restoreCheckpoint');
    expect((restored?.work.checkpointAtMs ?? Infinity) * MS).toBeLessThanOrEqual(record.injection.timeNs);
    expect((restored?.work.checkpointAtMs ?? 0) * MS).toBeGreaterThan(record.injection.timeNs - 2 * epochMs * MS);
  });

  it('gives the same record every time, alone or beside another mechanism', () => {
    const spec: TrialSpec = { ...hostStop, mechanism: 'failover' };
    const alone = JSON.stringify(runTrial(spec).record);
    expect(JSON.stringify(runTrial(spec).record)).toBe(alone);
    expect(JSON.stringify(runTrialVariants([{ ...hostStop, mechanism: 'microreboot' }, spec])[1])).toBe(alone);
  });
});

describe('a corruption', () => {
  it('that reached a VM before detection is replicated to the backup, which fails with it', () => {
    // a bit of the AppVM's saved resume token flips while it waits (a memory fault): at its next
    // entry the guest finds its context corrupted and crashes; nothing in the hypervisor
    // notices, and the checkpoints of the next epochs carry the crashed guest to the backup.
    // 100 ms later the host stops and the backup takes over, with the crashed guest.
    const configuration = '1AppVM';
    const faults = [
      { trigger: { timeNs: 200 * MS, instructionsAfter: 0 }, target: { type: 'memory' as const, fraction: fractionOf(configuration, (layout) => layout.vcpus[1] + Vcpu.offset.resumeToken), bit: 3 } },
      { trigger: { timeNs: 300 * MS, instructionsAfter: 0 }, target: { type: 'hostFailstop' as const } },
    ];
    const { record } = runTrial({ configuration, seed: 1, trialIndex: 0, faultType: 'memory', mechanism: 'failover', faults });
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    expect(record.injection.location).toMatchObject({ type: 'memory', symbol: 'vcpu[1].resumeToken' });
    expect(record.detection.detector).toBe('heartbeat');
    expect(record.recovery?.cause).toBe('corruptionReplicated');
    expect(record.recovery?.detail).toMatch(/resume token corrupted/);
    const restored = record.recovery?.steps.find((step) => step.step === 'restoreCheckpoint');
    expect((restored?.work.checkpointAtMs ?? 0) * MS).toBeGreaterThan(record.injection.timeNs);
  });

  it('of the primary hypervisor alone does not travel: the backup restores the VMs into its own', () => {
    // the first of seed 1's register faults that the primary detects only after two epochs, so
    // that checkpoints taken with the damage in its hypervisor have committed
    const trialIndex = Array.from({ length: 200 }, (_, index) => index).find((index) => {
      const detected = runTrial({ ...THREE_APP_VM, trialIndex: index, faultType: 'register', mechanism: 'none' }).record;
      return detected.outcome === 'detected' && detected.detectionLatencyNs > 2 * DEFAULT_REPLICATION.epochMs * MS;
    });
    expect(trialIndex).toBeDefined();
    const { record } = runTrial({ ...THREE_APP_VM, trialIndex: trialIndex ?? 0, faultType: 'register', mechanism: 'failover' });
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    expect(record.detectionLatencyNs).toBeGreaterThan(2 * DEFAULT_REPLICATION.epochMs * MS);
    expect(record.recovery?.result).toBe('recovered');
  });

  it('caught before its epoch commits is not: the backup resumes from a clean checkpoint', () => {
    // the first of seed 1's register faults that is detected within a millisecond of the flip
    const trialIndex = Array.from({ length: 60 }, (_, index) => index).find((index) => {
      const detected = runTrial({ ...THREE_APP_VM, trialIndex: index, faultType: 'register', mechanism: 'none' }).record;
      return detected.outcome === 'detected' && detected.detectionLatencyNs < MS;
    });
    expect(trialIndex).toBeDefined();
    const { record } = runTrial({ ...THREE_APP_VM, trialIndex: trialIndex ?? 0, faultType: 'register', mechanism: 'failover' });
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    expect(record.recovery?.result).toBe('recovered');
    const restored = record.recovery?.steps.find((step) => step.step === 'restoreCheckpoint');
    expect((restored?.work.checkpointAtMs ?? Infinity) * MS).toBeLessThan(record.injection.timeNs);
  });
});

/** The memory fault's fraction that lands on the word `addressOf` picks (inject.ts's spans: static data, then the heap). */
function fractionOf(configuration: string, addressOf: (layout: HeapLayout) => number): number {
  const layout = new System({ configuration, seed: 1 }).hypervisor.layout;
  const total = StaticData.sizeWords + layout.heapEnd - layout.frameTable;
  return (StaticData.sizeWords + addressOf(layout) - layout.frameTable + 0.5) / total;
}

describe('the heartbeat monitor', () => {
  it('declares the primary failed the missed heartbeats after the last one arrived', () => {
    const monitor = new HeartbeatMonitor(30 * MS, DEFAULT_LINK, 0);
    monitor.tick(30 * MS, true);
    monitor.tick(60 * MS, false);
    const lastArrivalNs = 30 * MS + DEFAULT_LINK.latencyMs * MS;
    expect(monitor.declaredAtNs()).toBe(lastArrivalNs + MISSED_HEARTBEATS * 30 * MS);
    expect(monitor.hasDeclared(monitor.declaredAtNs() - 1)).toBe(false);
    expect(monitor.hasDeclared(monitor.declaredAtNs())).toBe(true);
  });
});

describe('a checkpoint', () => {
  it('captures each page with a changed word once', () => {
    const before = new Int32Array(4 * 1_024);
    const after = before.slice();
    after[5] = 1;
    after[6] = 2;
    after[3 * 1_024] = 3;
    expect(changedPages(before, after)).toBe(2);
    expect(changedPages(before, before)).toBe(0);
  });
});

describe('the failover breakdown', () => {
  it('adds heartbeat detection, restore and resume, and shows the overhead falling as the epoch grows', async () => {
    const { failoverBreakdown } = await import('../../src/trial/failover-breakdown.js');
    const breakdown = failoverBreakdown('3AppVM', 1);
    expect(breakdown.items[0].ms).toBe(MISSED_HEARTBEATS * DEFAULT_REPLICATION.heartbeatMs);
    expect(breakdown.totalMs).toBeCloseTo(breakdown.items.reduce((sum, item) => sum + item.ms, 0), 9);
    const overheads = breakdown.costs.map((cost) => cost.overheadPercent);
    expect(overheads[0]).toBeGreaterThan(overheads[1]);
    expect(overheads[1]).toBeGreaterThan(overheads[2]);
  });
});
