/**
 * `ninelives latency`: the cost model's per-step recovery latency of both mechanisms on a host.
 */
import type { Command } from 'commander';
import { NOMINAL_HOST, price, totalMs, type NominalHost } from '../../recovery/cost-model.js';
import { mechanisms } from '../../recovery/mechanisms.js';
import { failoverBreakdown } from '../../trial/failover-breakdown.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';

interface LatencyOptions {
  readonly cpus: number;
  readonly memoryGib: number;
  readonly json?: boolean;
}

export function latencyBreakdown(host: NominalHost) {
  return mechanisms.filter((mechanism) => mechanism.steps.length > 0).map((mechanism) => {
    const items = mechanism.steps.flatMap(({ step, costs }) => costs.map((cost) => ({ step: step.name, ...price(cost, host) })));
    return { mechanism: mechanism.name, host, items, totalMs: totalMs(items) };
  });
}

export function registerLatencyCommand(program: Command, io: CliIo): void {
  program
    .command('latency')
    .description('print the per-step recovery latency of microreset and microreboot from the cost model')
    .option('--cpus <n>', 'host CPUs', parseInteger('--cpus', 1, 1024), NOMINAL_HOST.cpus)
    .option('--memory-gib <n>', 'host memory in GiB', parseInteger('--memory-gib', 1, 65536), NOMINAL_HOST.memoryGiB)
    .option('--json', 'print as JSON')
    .action((options: LatencyOptions) => {
      const breakdown = latencyBreakdown({ cpus: options.cpus, memoryGiB: options.memoryGib });
      if (options.json) {
        io.stdout.write(JSON.stringify(breakdown, null, 2) + '\n');
        return;
      }
      for (const mechanism of breakdown) {
        io.stdout.write(`${mechanism.mechanism} on ${options.cpus} CPUs, ${options.memoryGib} GiB\n`);
        for (const item of mechanism.items) io.stdout.write(`  ${item.label.padEnd(48)} ${item.ms.toFixed(2).padStart(8)} ms  (${item.step})\n`);
        io.stdout.write(`  ${'total'.padEnd(48)} ${mechanism.totalMs.toFixed(2).padStart(8)} ms\n\n`);
      }
      const [reset, reboot] = [breakdown[0].totalMs, breakdown[1].totalMs];
      io.stdout.write(`microreboot / microreset = ${(reboot / reset).toFixed(1)}x\n\n`);
      writeFailoverBreakdown(io);
    });
}

/** Failover's service interruption on 3AppVM, and what replication costs at three epochs. */
function writeFailoverBreakdown(io: CliIo): void {
  const breakdown = failoverBreakdown('3AppVM', 1);
  io.stdout.write(`failover (Remus/NiLiCon) on 3AppVM, heartbeats every ${breakdown.heartbeatMs} ms\n`);
  for (const item of breakdown.items) io.stdout.write(`  ${item.label.padEnd(48)} ${item.ms.toFixed(2).padStart(8)} ms\n`);
  io.stdout.write(`  ${'total (service interruption, at most)'.padEnd(48)} ${breakdown.totalMs.toFixed(2).padStart(8)} ms\n`);
  io.stdout.write('  when nothing fails (golden run):\n');
  for (const cost of breakdown.costs) {
    io.stdout.write(`    epoch ${String(cost.epochMs).padStart(3)} ms: stop ${cost.pauseMs.toFixed(1)} ms/epoch, overhead ${cost.overheadPercent.toFixed(1)}%, output delay p50 ${cost.outputDelayMs.p50.toFixed(1)} ms, p99 ${cost.outputDelayMs.p99.toFixed(1)} ms\n`);
  }
}
