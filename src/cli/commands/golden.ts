/**
 * `ninelives golden`: one fault-free run, and what happened in it.
 */
import type { Command } from 'commander';
import { describeAudit } from '../../hypervisor/audit.js';
import { runGolden, type GoldenReport } from '../../trial/golden.js';
import { MAX_SEED } from '../../campaign/limits.js';
import type { CliIo } from '../io.js';
import { CommandFailure } from '../errors.js';
import { configurationHelp, parseConfiguration, parseInteger, parseRunLengthMs } from '../options.js';

interface GoldenOptions {
  readonly config: string;
  readonly seed: number;
  readonly runLengthMs?: number;
  readonly json?: boolean;
}

export function registerGoldenCommand(program: Command, io: CliIo): void {
  program
    .command('golden')
    .description('run a configuration fault-free and print what happened, each guest\'s verdict, the audit and a digest')
    .option('--config <name>', configurationHelp(), parseConfiguration, '3AppVM')
    .option('--seed <n>', 'workload seed', parseInteger('--seed', 0, MAX_SEED), 42)
    .option('--run-length-ms <ms>', 'simulated run length (default: the configuration\'s)', parseRunLengthMs)
    .option('--json', 'print the report as one JSON object, with the hypervisor profile (share of instructions per routine, under each lock, and with a hypercall, a lock or an interrupt in service for a fail-stop to leave behind; the share of CPU time spent in the hypervisor)')
    .action((options: GoldenOptions) => {
      const report = runGolden({ configuration: options.config, seed: options.seed, runLengthNs: options.runLengthMs }, { profile: options.json === true });
      io.stdout.write(options.json ? JSON.stringify(report) + '\n' : formatGolden(report));
      const healthy = report.audit.clean && report.detections.length === 0 && report.guests.every((guest) => guest.verdict.kind === 'correct');
      if (!healthy) throw new CommandFailure('golden.unhealthy', 'the fault-free run was not clean: see the report above');
    });
}

export function formatGolden(report: GoldenReport): string {
  const lines = [
    `configuration:          ${report.configuration} (seed ${report.seed})`,
    `simulated time:         ${(report.simulatedNs / 1e6).toFixed(3)} ms`,
    `hypervisor instructions: ${report.hypervisorInstructions}`,
    `hypercalls:             ${Object.entries(report.hypercalls).map(([name, count]) => `${name} ${count}`).join(', ')}`,
    `interrupts:             ${report.interrupts}`,
    `context switches:       ${report.contextSwitches}`,
    `detections:             ${report.detections.length === 0 ? 'none' : report.detections.join('; ')}`,
    'guests:',
    ...report.guests.map((guest) => `  domain ${guest.domainId} ${guest.workload.padEnd(9)} ${guest.verdict.kind === 'correct' ? 'correct' : `FAILED: ${guest.verdict.reason}`}`),
    `audit:                  ${describeAudit(report.audit)}`,
    `digest: ${report.digest}`,
  ];
  return lines.join('\n') + '\n';
}
