/**
 * `ninelives inject`: run one trial and print its record (and, with --trace, the instructions
 * around the injection and on the way to detection).
 */
import type { Command } from 'commander';
import { faultTypes, type FaultType } from '../../faults/fault.js';
import { formatTrace } from '../../trial/trace.js';
import { runTrial } from '../../trial/trial.js';
import type { CliIo } from '../io.js';
import { refuseNewFileTarget } from '../new-file.js';
import { writeTimeline } from '../timeline.js';
import { NOMINAL_HOST } from '../../recovery/cost-model.js';
import type { MechanismName } from '../../recovery/mechanisms.js';
import { MAX_CHECKPOINT_MS, MAX_KV_IMBALANCE, MAX_REPLICATION_PERIOD_MS, MAX_SEED, MAX_TRIALS, MIN_CHECKPOINT_MS, MIN_REPLICATION_PERIOD_MS } from '../../campaign/limits.js';
import type { TrialSpec } from '../../trial/record.js';
import { UsageError } from '../errors.js';
import { checkSteps, configurationHelp, parseChoice, parseConfiguration, parseDecimal, parseFaultType, parseInteger, parseList, parseMechanism, parseRunLengthMs } from '../options.js';

interface InjectOptions {
  readonly config: string;
  readonly fault: FaultType;
  readonly seed: number;
  readonly trial: number;
  readonly runLengthMs?: number;
  readonly strictNetbench?: boolean;
  readonly pkeys?: boolean;
  readonly trace?: boolean;
  readonly runToEnd?: boolean;
  readonly fromBoot?: boolean;
  readonly mechanism: MechanismName;
  readonly disable: readonly string[];
  readonly cpus?: number;
  readonly memoryGib?: number;
  readonly timeline?: string;
  readonly epochMs?: number;
  readonly heartbeatMs?: number;
  readonly checkpointMs?: number;
  readonly ordering?: 'log' | 'deterministic' | 'none';
  readonly timingAdjustment?: 'on' | 'off';
  readonly raceRate?: number;
  readonly imbalance?: number;
}

export function registerInjectCommand(program: Command, io: CliIo): void {
  program
    .command('inject')
    .description('run one fault-injection trial and print its record as JSON')
    .option('--config <name>', configurationHelp(), parseConfiguration, '3AppVM')
    .requiredOption('--fault <type>', `fault type: ${faultTypes.join(', ')}`, parseFaultType)
    .option('--seed <n>', 'campaign seed (seeds the workloads and, with the trial index, the fault)', parseInteger('--seed', 0, MAX_SEED), 42)
    .option('--trial <index>', 'trial index within the campaign', parseInteger('--trial', 0, MAX_TRIALS), 0)
    .option('--run-length-ms <ms>', 'simulated run length (default: the configuration\'s)', parseRunLengthMs)
    .option('--strict-netbench', 'count NetBench losses inside service interruptions too')
    .option('--pkeys', 'build the hypervisor with its intended-sharing policy enforced by protection keys (PUSh)')
    .option('--trace', 'also print the instructions around the injection and the path to detection')
    .option('--from-boot', 'run from boot instead of fast-forwarding from a golden-run checkpoint')
    .option('--run-to-end', 'simulate to the end a trial found to follow the golden run, instead of deriving its end state')
    .option('--mechanism <name>', 'recovery on detection: none, microreset, microreboot, failover or replay-failover', parseMechanism, 'none')
    .option('--epoch-ms <ms>', 'failover: the checkpoint epoch (default 30)', parseInteger('--epoch-ms', MIN_REPLICATION_PERIOD_MS, MAX_REPLICATION_PERIOD_MS))
    .option('--heartbeat-ms <ms>', 'failover: the heartbeat period (default 30)', parseInteger('--heartbeat-ms', MIN_REPLICATION_PERIOD_MS, MAX_REPLICATION_PERIOD_MS))
    .option('--checkpoint-ms <ms>', 'replay-failover: the checkpoint interval (default 100)', parseInteger('--checkpoint-ms', MIN_CHECKPOINT_MS, MAX_CHECKPOINT_MS))
    .option('--ordering <order>', "replay-failover: the key-value server's lock order: log, deterministic or none (default log)", parseChoice('--ordering', ['log', 'deterministic', 'none']))
    .option('--timing-adjustment <on|off>', 'replay-failover: delay replayed threads to the original gaps between system calls (default on)', parseChoice('--timing-adjustment', ['on', 'off']))
    .option('--race-rate <share>', "3AppVM-mt: share of the key-value server's requests that race outside its lock (default 0.1)", parseDecimal('--race-rate', 0, 1))
    .option('--imbalance <share>', "3AppVM-mt: how much longer the server's thread 0 takes for its work, as a share (default 0)", parseDecimal('--imbalance', 0, MAX_KV_IMBALANCE))
    .option('--disable <steps>', 'comma-separated repair steps to switch off (see `ninelives mechanisms`)', parseList('--disable', (word) => word, 'step names (comma-separated)'), [])
    .option('--cpus <n>', 'CPUs of the nominal host the recovery cost model prices', parseInteger('--cpus', 1, 1024))
    .option('--memory-gib <n>', 'memory of the nominal host, GiB', parseInteger('--memory-gib', 1, 65536))
    .option('--timeline <file.html>', 'also write the trial\'s timeline page (lanes per CPU, fault, detection, recovery steps, guest events)')
    .action(async (options: InjectOptions) => {
      checkSteps(options.mechanism, options.disable);
      if (options.timeline !== undefined) refuseNewFileTarget('--timeline', options.timeline);
      const replication = replicationOption(options);
      const replay = replayOption(options);
      const kvServer = kvServerOption(options);
      const spec = {
        configuration: options.config,
        seed: options.seed,
        trialIndex: options.trial,
        faultType: options.fault,
        runLengthNs: options.runLengthMs,
        strictNetBench: options.strictNetbench,
        ...(options.pkeys === true ? { pkeys: true } : {}),
        mechanism: options.mechanism,
        disabledSteps: options.disable,
        host: options.cpus === undefined && options.memoryGib === undefined ? undefined : { cpus: options.cpus ?? NOMINAL_HOST.cpus, memoryGiB: options.memoryGib ?? NOMINAL_HOST.memoryGiB },
        ...(replication === undefined ? {} : { replication }),
        ...(replay === undefined ? {} : { replay }),
        ...(kvServer === undefined ? {} : { kvServer }),
      };
      const { record, trace, followedGoldenFromNs } = runTrial(spec, { trace: options.trace, fromBoot: options.fromBoot, followGolden: options.runToEnd !== true });
      io.stdout.write(JSON.stringify(record, null, 2) + '\n');
      if (followedGoldenFromNs !== undefined) {
        const atMs = followedGoldenFromNs / 1_000_000;
        io.stderr.write(`from ${atMs} ms the trial followed the golden run (changed code words hold the same instructions): its end state was derived, not simulated; --run-to-end simulates it\n`);
      }
      if (trace !== undefined) io.stdout.write(formatTrace(trace) + '\n');
      if (options.timeline !== undefined) {
        await writeTimeline(spec, options.timeline, `trial ${spec.trialIndex} (${spec.configuration}, ${spec.faultType}, ${spec.mechanism})`);
        io.stderr.write(`timeline: ${options.timeline}\n`);
      }
    });
}

/** --epoch-ms and --heartbeat-ms, failover's only; undefined when neither is given. */
function replicationOption(options: InjectOptions): TrialSpec['replication'] {
  if (options.epochMs === undefined && options.heartbeatMs === undefined) return undefined;
  if (options.mechanism !== 'failover') throw new UsageError('usage.invalidMechanism', `--epoch-ms and --heartbeat-ms are failover's periods, not ${options.mechanism}'s`);
  return { ...(options.epochMs === undefined ? {} : { epochMs: options.epochMs }), ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }) };
}

/** --checkpoint-ms, --ordering and --timing-adjustment, replay-failover's only; undefined when none is given. */
function replayOption(options: InjectOptions): TrialSpec['replay'] {
  const { checkpointMs, ordering, timingAdjustment } = options;
  if (checkpointMs === undefined && ordering === undefined && timingAdjustment === undefined) return undefined;
  if (options.mechanism !== 'replay-failover') throw new UsageError('usage.invalidMechanism', `--checkpoint-ms, --ordering and --timing-adjustment are options of replay-failover, not of ${options.mechanism}`);
  return {
    ...(checkpointMs === undefined ? {} : { checkpointMs }),
    ...(ordering === undefined ? {} : { ordering }),
    ...(timingAdjustment === undefined ? {} : { timingAdjustment: timingAdjustment === 'on' }),
  };
}

/** --race-rate and --imbalance, 3AppVM-mt's only; undefined when neither is given. */
function kvServerOption(options: InjectOptions): TrialSpec['kvServer'] {
  const { raceRate, imbalance } = options;
  if (raceRate === undefined && imbalance === undefined) return undefined;
  if (options.config !== '3AppVM-mt') throw new UsageError('usage.invalidConfig', `--race-rate and --imbalance are options of 3AppVM-mt's key-value server, not of ${options.config}`);
  return { ...(raceRate === undefined ? {} : { raceRate }), ...(imbalance === undefined ? {} : { imbalance }) };
}
