/**
 * `ninelives inject`: run one trial and print its record (and, with --trace, the instructions
 * around the injection and on the way to detection).
 */
import type { Command } from 'commander';
import type { FaultType } from '../../faults/fault.js';
import { formatTrace } from '../../trial/trace.js';
import { runTrial } from '../../trial/trial.js';
import type { CliIo } from '../io.js';
import { parseConfiguration, parseFaultType, parseInteger, parseRunLengthMs } from '../options.js';

interface InjectOptions {
  readonly config: string;
  readonly fault: FaultType;
  readonly seed: number;
  readonly trial: number;
  readonly runLengthMs?: number;
  readonly strictNetbench?: boolean;
  readonly trace?: boolean;
  readonly fromBoot?: boolean;
}

export function registerInjectCommand(program: Command, io: CliIo): void {
  program
    .command('inject')
    .description('run one fault-injection trial and print its record as JSON')
    .option('--config <name>', 'configuration: 1AppVM, 1AppVM-blk or 3AppVM', parseConfiguration, '3AppVM')
    .requiredOption('--fault <type>', 'fault type: failstop, register, code or memory', parseFaultType)
    .option('--seed <n>', 'campaign seed (seeds the workloads and, with the trial index, the fault)', parseInteger('--seed'), 42)
    .option('--trial <index>', 'trial index within the campaign', parseInteger('--trial'), 0)
    .option('--run-length-ms <ms>', 'simulated run length (default: the configuration\'s)', parseRunLengthMs)
    .option('--strict-netbench', 'count NetBench losses inside service interruptions too')
    .option('--trace', 'also print the instructions around the injection and the path to detection')
    .option('--from-boot', 'run from boot instead of fast-forwarding from a golden-run checkpoint')
    .action((options: InjectOptions) => {
      const { record, trace } = runTrial(
        {
          configuration: options.config,
          seed: options.seed,
          trialIndex: options.trial,
          faultType: options.fault,
          runLengthNs: options.runLengthMs,
          strictNetBench: options.strictNetbench,
        },
        { trace: options.trace, fromBoot: options.fromBoot },
      );
      io.stdout.write(JSON.stringify(record, null, 2) + '\n');
      if (trace !== undefined) io.stdout.write(formatTrace(trace) + '\n');
    });
}
