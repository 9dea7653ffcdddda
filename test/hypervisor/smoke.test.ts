import { test, expect } from 'vitest';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { GuestHost } from '../../src/guests/host.js';
import { audit, describeAudit } from '../../src/hypervisor/audit.js';
import { ScriptedKernel } from './scripted-kernel.js';
import { describeDetection } from '../../src/hypervisor/detection.js';

test('smoke', () => {
  const host = new GuestHost(4);
  const hv = new Hypervisor({ cpuCount: 4, domains: [{ domainId: 0, cpu: 0 }, { domainId: 1, cpu: 1 }, { domainId: 2, cpu: 1 }] }, host);
  for (const id of [0, 1, 2]) host.attach(id, new ScriptedKernel(id));
  hv.start();
  const t0 = performance.now();
  const outcome = hv.machine.run(200_000_000);
  console.log(outcome, hv.machine.hypervisorInstructions, performance.now() - t0, host.hypercallCounts);
  console.log(hv.detections.map(describeDetection));
  for (const id of [0,1,2]) console.log(id, (host.kernel(id) as ScriptedKernel).state.step, (host.kernel(id) as ScriptedKernel).state.returns.slice(0, 12), host.kernel(id)!.verdict(0));
  console.log(hv.machine.cpus.map(c => [c.mode, c.programCounter]));
  console.log(describeAudit(audit(hv.machine, hv.layout)));
  expect(hv.detections).toEqual([]);
});
