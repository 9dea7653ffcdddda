import { describe, expect, it } from 'vitest';
import { ERROR_INVALID, VECTOR_DISK, VECTOR_NIC } from '../../src/hypervisor/abi.js';
import {
  DISK_BLOCK_COUNT,
  Disk,
  NIC_BUFFER_PACKETS,
  Nic,
  PING_DEADLINE_NS,
  evaluateNetBench,
  pingPayload,
  pingReply,
  type DevicePlatform,
  type NicState,
} from '../../src/guests/devices.js';

function recordingPlatform(): DevicePlatform & { interrupts: { timeNs: number; cpu: number; vector: number }[] } {
  const interrupts: { timeNs: number; cpu: number; vector: number }[] = [];
  return { interrupts, raiseInterrupt: (timeNs, cpu, vector) => interrupts.push({ timeNs, cpu, vector }) };
}

const MS = 1_000_000;

describe('Disk', () => {
  it('completes in submission order after 150-300 us, raising VECTOR_DISK on the PrivVM CPU', () => {
    const platform = recordingPlatform();
    const disk = new Disk({ seed: 1, platform, cpu: 0 });
    disk.submit({ id: 1, operation: 'write', block: 5, data: 77 }, 1_000);
    disk.submit({ id: 2, operation: 'read', block: 5, data: 0 }, 1_000);
    expect(platform.interrupts).toHaveLength(2);
    const [first, second] = platform.interrupts;
    expect(first.timeNs - 1_000).toBeGreaterThanOrEqual(150_000);
    expect(first.timeNs - 1_000).toBeLessThanOrEqual(300_000);
    expect(second.timeNs).toBeGreaterThan(first.timeNs);
    expect(first).toMatchObject({ cpu: 0, vector: VECTOR_DISK });
    expect(disk.completed(first.timeNs - 1)).toEqual([]);
    expect(disk.completed(second.timeNs)).toEqual([
      { id: 1, operation: 'write', block: 5, data: 0, status: 0 },
      { id: 2, operation: 'read', block: 5, data: 77, status: 0 },
    ]);
    expect(disk.completed(second.timeNs)).toEqual([]);
  });

  it('reads 0 from never-written and trimmed blocks and rejects blocks outside the disk', () => {
    const platform = recordingPlatform();
    const disk = new Disk({ seed: 2, platform, cpu: 0 });
    disk.submit({ id: 1, operation: 'read', block: 3, data: 0 }, 0);
    disk.submit({ id: 2, operation: 'write', block: 3, data: 9 }, 0);
    disk.submit({ id: 3, operation: 'trim', block: 3, data: 0 }, 0);
    disk.submit({ id: 4, operation: 'read', block: 3, data: 0 }, 0);
    disk.submit({ id: 5, operation: 'read', block: DISK_BLOCK_COUNT, data: 0 }, 0);
    const done = disk.completed(Number.MAX_SAFE_INTEGER);
    expect(done.map((completion) => [completion.id, completion.data, completion.status])).toEqual([
      [1, 0, 0],
      [2, 0, 0],
      [3, 0, 0],
      [4, 0, 0],
      [5, 0, ERROR_INVALID],
    ]);
  });

  it('continues identically after saveState/loadState', () => {
    const run = (reload: boolean): unknown[] => {
      const disk = new Disk({ seed: 3, platform: recordingPlatform(), cpu: 0 });
      const results: unknown[] = [];
      for (let step = 0; step < 20; step++) {
        if (reload && step === 10) disk.loadState(structuredClone(disk.saveState()));
        disk.submit({ id: step, operation: step % 3 === 0 ? 'read' : 'write', block: step % 4, data: step * 11 }, step * 100_000);
        results.push(disk.completed(step * 100_000));
      }
      return results;
    };
    expect(run(true)).toEqual(run(false));
  });
});

describe('Nic', () => {
  it('delivers ping k at (k + 1) ms with its payload, and keeps one interrupt scheduled for the next arrival', () => {
    const platform = recordingPlatform();
    const nic = new Nic({ seed: 4, platform, cpu: 0, runLengthNs: 10 * MS });
    nic.start();
    expect(platform.interrupts).toEqual([{ timeNs: 1 * MS, cpu: 0, vector: VECTOR_NIC }]);
    expect(nic.receive(0.5 * MS)).toEqual([]);
    expect(platform.interrupts).toHaveLength(1);
    expect(nic.receive(2 * MS)).toEqual([
      { pingId: 0, payload: pingPayload(4, 0), arrivalNs: 1 * MS },
      { pingId: 1, payload: pingPayload(4, 1), arrivalNs: 2 * MS },
    ]);
    expect(platform.interrupts.at(-1)).toEqual({ timeNs: 3 * MS, cpu: 0, vector: VECTOR_NIC });
  });

  it('drops arrivals that find its 16-packet buffer full', () => {
    const nic = new Nic({ seed: 5, platform: recordingPlatform(), cpu: 0, runLengthNs: 100 * MS });
    nic.start();
    const packets = nic.receive(40 * MS);
    expect(packets.map((packet) => packet.pingId)).toEqual(Array.from({ length: NIC_BUFFER_PACKETS }, (_, index) => index));
    expect(nic.droppedPingIds()).toEqual(Array.from({ length: 40 - NIC_BUFFER_PACKETS }, (_, index) => NIC_BUFFER_PACKETS + index));
  });

  it('generates no ping at or after the end of the run', () => {
    const platform = recordingPlatform();
    const nic = new Nic({ seed: 6, platform, cpu: 0, runLengthNs: 5 * MS });
    nic.start();
    expect(nic.pingCount).toBe(4);
    expect(nic.receive(100 * MS).map((packet) => packet.pingId)).toEqual([0, 1, 2, 3]);
    expect(platform.interrupts).toHaveLength(1);
  });

  it('snapshots share no mutable part with the card, and continue identically after loading, from JSON too', () => {
    const run = (reload: ((nic: Nic) => void) | undefined): unknown[] => {
      const nic = new Nic({ seed: 7, platform: recordingPlatform(), cpu: 0, runLengthNs: 100 * MS });
      nic.start();
      const results: unknown[] = [];
      for (let step = 1; step <= 30; step++) {
        if (step === 15) reload?.(nic);
        const packets = nic.receive(step * 3 * MS);
        for (const packet of packets) nic.transmit(packet.pingId, pingReply(packet.payload), step * 3 * MS);
        results.push(packets, nic.fingerprint());
      }
      return [...results, nic.saveState()];
    };
    const reference = run(undefined);
    expect(run((nic) => nic.loadState(nic.saveState()))).toEqual(reference);
    expect(run((nic) => nic.loadState(JSON.parse(JSON.stringify(nic.saveState())) as NicState))).toEqual(reference);
    const nic = new Nic({ seed: 7, platform: recordingPlatform(), cpu: 0, runLengthNs: 100 * MS });
    nic.start();
    nic.transmit(0, 1, 2 * MS);
    const saved = nic.saveState();
    saved.transmissions.push({ pingId: 1, data: 2, timeNs: 3 * MS });
    expect(() => Object.assign(saved.transmissions[0], { data: 5 })).toThrow(TypeError);
    expect(nic.transmissions()).toEqual([{ pingId: 0, data: 1, timeNs: 2 * MS }]);
    const fromJson = JSON.parse(JSON.stringify(nic.saveState())) as NicState;
    nic.loadState(fromJson);
    Object.assign(fromJson.transmissions[0], { data: 9 });
    expect(nic.transmissions()).toEqual([{ pingId: 0, data: 1, timeNs: 2 * MS }]);
  });

  it('payloads depend on the seed and the ping; replies are an involution', () => {
    expect(pingPayload(1, 0)).not.toBe(pingPayload(2, 0));
    expect(pingPayload(1, 0)).not.toBe(pingPayload(1, 1));
    expect(pingReply(pingReply(pingPayload(1, 7)))).toBe(pingPayload(1, 7));
  });
});

describe('evaluateNetBench', () => {
  const runLengthNs = 2_500 * MS;

  /** A NIC log where every ping is answered 100 us after arrival except `lost` ones. */
  function answeredNic(lost: (pingId: number) => boolean, wrongData = false): Nic {
    const nic = new Nic({ seed: 9, platform: recordingPlatform(), cpu: 0, runLengthNs });
    for (let pingId = 0; pingId < nic.pingCount; pingId++) {
      if (lost(pingId)) continue;
      const data = pingReply(nic.payload(pingId)) ^ (wrongData ? 1 : 0);
      nic.transmit(pingId, data, nic.arrivalNs(pingId) + 100_000);
    }
    return nic;
  }

  const options = { atNs: runLengthNs, serviceInterruptions: [], strict: false };

  it('passes with no loss and reports windows of 1 s, the last one partial', () => {
    const report = evaluateNetBench(answeredNic(() => false), options);
    expect(report.verdict).toEqual({ kind: 'correct' });
    expect(report.windows.map((window) => [window.counted, window.lost])).toEqual([
      [999, 0],
      [1000, 0],
      [500, 0],
    ]);
    expect(report.windows[2].endNs).toBe(runLengthNs);
  });

  it('fails a window with more than 10% unanswered, at the deadline of the loss that crossed the limit', () => {
    // pings 1199..1299 arrive at 1200..1300 ms: 101 of the 1000 pings of window 1
    const report = evaluateNetBench(answeredNic((pingId) => pingId >= 1199 && pingId < 1300), options);
    expect(report.verdict.kind).toBe('failed');
    if (report.verdict.kind !== 'failed') return;
    expect(report.verdict.reason).toMatch(/^window 1 .*101 of 1000 pings/);
    expect(report.verdict.atNs).toBe(1300 * MS + PING_DEADLINE_NS);
  });

  it('allows exactly 10%', () => {
    expect(evaluateNetBench(answeredNic((pingId) => pingId >= 1199 && pingId < 1299), options).verdict).toEqual({ kind: 'correct' });
  });

  it('counts replies with wrong data or after 10 ms as lost', () => {
    expect(evaluateNetBench(answeredNic(() => false, true), options).verdict.kind).toBe('failed');
    const late = new Nic({ seed: 9, platform: recordingPlatform(), cpu: 0, runLengthNs });
    for (let pingId = 0; pingId < late.pingCount; pingId++) late.transmit(pingId, pingReply(late.payload(pingId)), late.arrivalNs(pingId) + PING_DEADLINE_NS + 1);
    expect(evaluateNetBench(late, options).verdict.kind).toBe('failed');
  });

  it('excludes pings inside a service interruption as downtime, unless strict', () => {
    const nic = answeredNic((pingId) => pingId >= 1199 && pingId < 1499);
    const interruption = { startNs: 1200 * MS, endNs: 1500 * MS };
    const lenient = evaluateNetBench(nic, { ...options, serviceInterruptions: [interruption] });
    expect(lenient.verdict).toEqual({ kind: 'correct' });
    expect(lenient.downtimeLosses).toBe(300);
    expect(lenient.windows[1]).toMatchObject({ counted: 700, lost: 0, downtimePings: 300, downtimeLosses: 300 });
    const strict = evaluateNetBench(nic, { ...options, serviceInterruptions: [interruption], strict: true });
    expect(strict.verdict.kind).toBe('failed');
    expect(strict.windows[1]).toMatchObject({ counted: 1000, lost: 300 });
  });

  it('leaves pings whose deadline is after the end undecided rather than lost', () => {
    const nic = answeredNic((pingId) => pingId >= 2490);
    const report = evaluateNetBench(nic, options);
    expect(report.verdict).toEqual({ kind: 'correct' });
    expect(report.windows[2].undecided).toBe(9);
  });
});
