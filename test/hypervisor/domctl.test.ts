/**
 * domctl: the post-recovery check's new VM, fault-free, on the real system; and domain create and
 * destroy at the hypercall level, with their error answers, from a scripted PrivVM.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DOMCTL_CREATE,
  DOMCTL_DESTROY,
  ERROR_INVALID,
  ERROR_NO_DOMAIN,
  ERROR_PERMISSION,
  Hypercall,
  MAX_DOMAINS,
  PAGE_TABLE_SLOTS,
  PORT_RING,
  firstFrameOf,
} from '../../src/hypervisor/abi.js';
import { audit } from '../../src/hypervisor/audit.js';
import { GuestHost } from '../../src/guests/host.js';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { DOMAIN_TABLE, Domain, RUN_STATE_BLOCKED, Timer, Vcpu } from '../../src/hypervisor/layout.js';
import { frameField } from '../../src/hypervisor/frames.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { reportOf, settle } from '../../src/trial/golden.js';
import { PlaylistKernel, call, sleep } from './scripted-kernel.js';
import { MS, startedSystem } from './system-helpers.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });

describe('the new VM of the post-recovery check (3AppVM, fault-free)', () => {
  it('is created as domain 3 on CPU 3 and runs BlkBench to completion beside the other guests', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 300, max: 700 }), (seed, requestMs) => {
        const system = startedSystem({ configuration: '3AppVM', seed });
        expect(system.machine.run(requestMs * MS).kind).toBe('timeReached');
        expect(system.host.kernel(3)).toBeUndefined();
        system.requestNewVm();
        expect(system.machine.run(system.runLengthNs).kind).toBe('timeReached');
        settle(system);
        const report = reportOf(system);

        expect(report.detections).toEqual([]);
        expect(report.audit).toEqual({ clean: true });
        expect(report.hypercalls.domctl).toBe(1);
        const newVm = report.guests.find((guest) => guest.domainId === 3);
        expect(newVm?.workload).toBe('blkbench');
        expect(newVm?.summary.completed).toBe(newVm?.summary.operations);
        expect(newVm?.summary.finished).toBe(1);
        for (const guest of report.guests) expect({ domain: guest.domainId, verdict: guest.verdict }).toEqual({ domain: guest.domainId, verdict: { kind: 'correct' } });
        expect(report.guests.find((guest) => guest.workload === 'privvm')?.summary.domainsCreated).toBe(1);
        const words = system.machine.memory.words;
        const vcpu = system.hypervisor.layout.vcpus[3];
        expect(words[DOMAIN_TABLE + 3]).toBe(system.hypervisor.layout.domains[3]);
        expect(words[vcpu + Vcpu.offset.processor]).toBe(3);
      }),
      { numRuns: 2 },
    );
  });
});

describe('domctl create and destroy (scripted guests on the real hypervisor)', () => {
  const newFrame = firstFrameOf(2);
  const frameUseCount = (hypervisor: Hypervisor, frame: number): number =>
    hypervisor.machine.memory.words[frameField(hypervisor.layout.frameTable, frame, 'useCount')];

  function build() {
    const host = new GuestHost(4);
    const hypervisor = new Hypervisor({ cpuCount: 4, domains: [{ domainId: 0, cpu: 0 }, { domainId: 1, cpu: 1 }] }, host);
    const privVm = new PlaylistKernel(0, [
      call(Hypercall.Domctl, DOMCTL_CREATE, 2),
      sleep(2_000),
      call(Hypercall.Domctl, DOMCTL_DESTROY, 1),
      call(Hypercall.Domctl, DOMCTL_DESTROY, 2),
      call(Hypercall.Domctl, DOMCTL_DESTROY, 2),
      call(Hypercall.Domctl, DOMCTL_DESTROY, MAX_DOMAINS),
      call(Hypercall.Domctl, 7, 0),
      call(Hypercall.EventChannelOp, 2, PORT_RING),
      sleep(2_000),
      call(Hypercall.Domctl, DOMCTL_CREATE, 3),
    ]);
    // Unprivileged, then busy for ever: it never blocks, so it cannot be destroyed.
    const appVm = new PlaylistKernel(1, [call(Hypercall.Domctl, DOMCTL_CREATE, 2), call(Hypercall.Domctl, DOMCTL_DESTROY, 0)], 'yield');
    // The created domain maps frames and arms a long timer, then blocks.
    const created = new PlaylistKernel(2, [
      call(Hypercall.MmuUpdate, 0, newFrame),
      call(Hypercall.MmuUpdate, 1, newFrame),
      call(Hypercall.MmuUpdate, 2, newFrame + 1),
      call(Hypercall.SetTimerOp, 50_000),
    ]);
    host.attach(0, privVm);
    host.attach(1, appVm);
    host.attach(2, created);
    hypervisor.start();
    return { host, hypervisor, privVm, appVm, created };
  }

  it('answers each command, destroys a blocked domain completely, and reuses its id', () => {
    const { host, hypervisor, privVm, appVm, created } = build();
    const machine = hypervisor.machine;
    const words = machine.memory.words;
    const domain = hypervisor.layout.domains[2];
    const vcpu = hypervisor.layout.vcpus[2];

    // Up to the event_channel_op after the destroys.
    while (privVm.state.returns.length < 7 && machine.nowNs < 50 * MS) expect(machine.run(machine.nowNs + 100_000).kind).toBe('timeReached');
    expect(created.finished).toBe(true);
    expect(created.state.returns).toEqual([1, 2, 1, 0]);
    expect(appVm.state.returns).toEqual([ERROR_PERMISSION, ERROR_PERMISSION]);
    expect(privVm.state.returns).toEqual([2, ERROR_INVALID, 0, ERROR_NO_DOMAIN, ERROR_INVALID, ERROR_INVALID, ERROR_NO_DOMAIN]);

    // Destroyed: unpublished, its page-table references dropped, its pending timer cancelled.
    expect(words[DOMAIN_TABLE + 2]).toBe(0);
    expect(words[domain + Domain.offset.inUse]).toBe(0);
    expect(Array.from({ length: PAGE_TABLE_SLOTS }, (_, slot) => words[domain + Domain.offset.pageTable + slot])).toEqual(new Array(PAGE_TABLE_SLOTS).fill(0));
    expect(frameUseCount(hypervisor, newFrame)).toBe(0);
    expect(frameUseCount(hypervisor, newFrame + 1)).toBe(0);
    expect(words[vcpu + Vcpu.offset.timer + Timer.offset.active]).toBe(0);
    expect(words[vcpu + Vcpu.offset.runState]).toBe(RUN_STATE_BLOCKED);
    expect(machine.cpus.every((cpu) => cpu.mode === CpuMode.Guest || cpu.mode === CpuMode.Halted)).toBe(true);
    expect(audit(machine, hypervisor.layout)).toEqual({ clean: true });

    // The toolstack gives the id's next incarnation a fresh guest before re-creating it.
    const reborn = new PlaylistKernel(2, [call(Hypercall.MmuUpdate, 0, newFrame)]);
    host.attach(2, reborn);
    expect(machine.run(100 * MS).kind).toBe('timeReached');
    expect(privVm.state.returns.at(-1)).toBe(2);
    expect(words[vcpu + Vcpu.offset.processor]).toBe(3);
    // Fresh state: a zeroed resume token (or the guest would crash) and an empty page table.
    expect(reborn.verdict(machine.nowNs)).toEqual({ kind: 'correct' });
    expect(reborn.state.returns).toEqual([1]);
    expect(hypervisor.detections).toEqual([]);
    // the audit speaks of a quiescent machine: let in-flight hypervisor threads finish
    const quiescent = (): boolean => machine.cpus.every((cpu) => cpu.mode === CpuMode.Guest || cpu.mode === CpuMode.Halted);
    for (let step = 0; step < 1_000 && !quiescent(); step++) machine.run(machine.nowNs + 1_000);
    expect(audit(machine, hypervisor.layout)).toEqual({ clean: true });
  });
});
