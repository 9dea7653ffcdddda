/**
 * Interpreter benchmark. Prints one JSON object to stdout and appends a row to bench/results.md.
 *
 * Each measurement is a named function returning figures; add one to `measurements` to extend
 * the report. Wall-clock time is read here, at the edge, never in the core.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { cpus as hostCpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Assembler, ref } from '../src/machine/assembler.js';
import { Machine } from '../src/machine/machine.js';
import { findPackageRoot } from '../src/package-info.js';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { configurationNames } from '../src/guests/configurations.js';
import { runGolden, type GoldenReport } from '../src/trial/golden.js';
import { runTrial } from '../src/trial/trial.js';

const CODE_BASE = 0x100;
const DATA_BASE = 0x1000;
const STACK_BASE = 0x2000;
const STACK_WORDS = 0x100;
const TABLE_BASE = DATA_BASE;

type Figures = Record<string, number>;

interface Measurement {
  readonly name: string;
  readonly description: string;
  run(): Figures | Promise<Figures>;
}

/** A machine with `cpuCount` CPUs all running `build`'s code from its start; NMIs just return. */
function benchMachine(cpuCount: number, build: (asm: Assembler) => void, translate = true): Machine {
  const asm = new Assembler(CODE_BASE);
  asm.label('main');
  build(asm);
  asm.label('nmi').iret();
  const program = asm.link();
  const machine = new Machine({
    cpuCount,
    segments: [
      { name: 'code', kind: 'code', base: CODE_BASE, sizeWords: 0x400 },
      { name: 'static', kind: 'static', base: DATA_BASE, sizeWords: 0x400 },
      { name: 'stack', kind: 'stack', base: STACK_BASE, sizeWords: STACK_WORDS * cpuCount },
    ],
    interruptTableBase: TABLE_BASE,
    timerVector: 1,
    hostStackTops: Array.from({ length: cpuCount }, (_, cpu) => STACK_BASE + STACK_WORDS * (cpu + 1)),
    vmExitEntry: CODE_BASE,
    translate,
  });
  machine.memory.words.set(program.words, program.base);
  machine.memory.words[TABLE_BASE] = program.labels.get('nmi') ?? 0;
  machine.trapHandler = (trap) => {
    throw new Error(`benchmark program trapped: ${JSON.stringify(trap)}`);
  };
  for (let cpu = 0; cpu < cpuCount; cpu++) machine.startCpu(cpu, CODE_BASE, STACK_BASE + STACK_WORDS * (cpu + 1));
  return machine;
}

/** Load, arithmetic, store, compare and branch: 7 instructions per iteration, `iterations` = 2^log2. */
function loopProgram(iterationsLog2: number): (asm: Assembler) => void {
  return (asm) => {
    asm.movi(1, 0).movi(2, 1).movi(3, iterationsLog2).shl(2, 2, 3).movi(13, DATA_BASE + 0x100);
    asm.cpuid(5).add(13, 13, 5);
    asm.label('top');
    asm.ld(4, 13, 0).addi(1, 1, 1).add(4, 4, 1).xor(6, 6, 4).st(13, 0, 4).cmp(1, 2).blt(ref('top'));
    asm.hlt();
  };
}

function timed(machine: Machine, untilNs: number): Figures {
  const started = performance.now();
  machine.run(untilNs);
  const seconds = (performance.now() - started) / 1000;
  return {
    instructions: machine.hypervisorInstructions,
    seconds: round(seconds, 3),
    instructionsPerSecond: Math.round(machine.hypervisorInstructions / seconds),
    simulatedNs: machine.nowNs,
  };
}

function loopMeasurement(name: string, cpuCount: number, iterationsLog2: number): Measurement {
  return {
    name,
    description: `${cpuCount} CPU(s) each running 2^${iterationsLog2} iterations of a 7-instruction load/add/store/branch loop, translated (the default) and interpreted`,
    run() {
      const iterations = 2 ** iterationsLog2;
      const loop = (translate: boolean): Figures => {
        benchMachine(cpuCount, loopProgram(16), translate).run(10_000_000); // warm up
        return timed(benchMachine(cpuCount, loopProgram(iterationsLog2), translate), iterations * 8 + 1_000_000);
      };
      const translated = loop(true);
      const interpreted = loop(false);
      return {
        ...translated,
        interpretedInstructionsPerSecond: interpreted.instructionsPerSecond,
        translationSpeedUp: round(translated.instructionsPerSecond / interpreted.instructionsPerSecond, 2),
      };
    },
  };
}

const idleMeasurement: Measurement = {
  name: 'idle',
  description: '4 halted CPUs for 100 simulated seconds (watchdog NMIs only)',
  run() {
    const machine = benchMachine(4, (asm) => asm.label('idle').hlt().jmp(ref('idle')));
    const figures = timed(machine, 100_000_000_000);
    return { instructions: figures.instructions, seconds: figures.seconds, simulatedNs: figures.simulatedNs };
  },
};

function seconds(work: () => unknown): number {
  const started = performance.now();
  work();
  return (performance.now() - started) / 1000;
}

const goldenMeasurement: Measurement = {
  name: 'golden',
  description:
    'host time of a fault-free run of each configuration (no cache): the first (translating its code) and the second, and the simulated seconds the second ran per host second (the rate that bounds how fast a campaign can be: every trial simulates)',
  run() {
    const figures: Figures = {};
    for (const configuration of configurationNames()) {
      let report: GoldenReport | undefined;
      const golden = (): void => {
        report = runGolden({ configuration, seed: 42 });
      };
      figures[`${configuration}.firstSeconds`] = round(seconds(golden), 3);
      const secondSeconds = seconds(golden);
      figures[`${configuration}.seconds`] = round(secondSeconds, 3);
      figures[`${configuration}.instructions`] = report?.hypervisorInstructions ?? 0;
      figures[`${configuration}.simulatedSecondsPerSecond`] = round((report?.simulatedNs ?? 0) / 1e9 / secondSeconds, 1);
    }
    return figures;
  },
};

const FAST_FORWARD_TRIALS = 24;

const fastForwardMeasurement: Measurement = {
  name: 'fastForward',
  description: `${FAST_FORWARD_TRIALS} 3AppVM register trials started from golden checkpoints against the same trials run from boot (after one untimed pass of each, which pays for the golden run and translating the code)`,
  run() {
    const spec = (trialIndex: number) => ({ configuration: '3AppVM', seed: 1, trialIndex, faultType: 'register' as const });
    const trials = Array.from({ length: FAST_FORWARD_TRIALS }, (_, index) => index);
    const fastForwarded = (): void => trials.forEach((index) => runTrial(spec(index)));
    const fromBootTrials = (): void => trials.forEach((index) => runTrial(spec(index), { fromBoot: true }));
    fastForwarded();
    fromBootTrials();
    const fromCheckpoint = seconds(fastForwarded);
    const fromBoot = seconds(fromBootTrials);
    return { fromCheckpointSeconds: round(fromCheckpoint, 3), fromBootSeconds: round(fromBoot, 3), speedUp: round(fromBoot / fromCheckpoint, 2) };
  },
};

/** The default campaign (`npm start`); its register faults are the benchmark campaign. */
const DEFAULT_CAMPAIGN = 'campaigns/quick.yaml';
const CAMPAIGN_FAULTS = 200;
/** a quarter as many faults, to show peak memory does not grow with the number of trials */
const SMALL_CAMPAIGN_FAULTS = 50;

interface CampaignRun {
  readonly trials: number;
  readonly seconds: number;
  readonly warmTrialsPerSecond: number;
  readonly peakResidentMegabytes: number;
}

/** The default campaign's register faults, run cold in a process of its own (bench/campaign-run.ts). */
function campaignRun(faults: number, workers: number): CampaignRun {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  const child = spawnSync(process.execPath, [join(root, 'dist/bench/campaign-run.js'), join(root, DEFAULT_CAMPAIGN), String(faults), String(workers)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`benchmark campaign failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as CampaignRun;
}

const campaignMeasurement: Measurement = {
  name: 'campaign',
  description: `the register faults of ${DEFAULT_CAMPAIGN} (${CAMPAIGN_FAULTS}, both mechanisms), each run in a fresh process with 1 worker and with one per core: end to end (golden runs, translation and reports included) and once warm (from a quarter of the trials to the last); peak memory also at ${SMALL_CAMPAIGN_FAULTS} faults`,
  run() {
    const cores = availableParallelism();
    const single = campaignRun(CAMPAIGN_FAULTS, 1);
    const all = campaignRun(CAMPAIGN_FAULTS, cores);
    const small = campaignRun(SMALL_CAMPAIGN_FAULTS, cores);
    return {
      trials: all.trials,
      oneWorkerTrialsPerSecond: round(single.trials / single.seconds, 1),
      allCoresTrialsPerSecond: round(all.trials / all.seconds, 1),
      workers: cores,
      scaling: round(single.seconds / all.seconds, 2),
      oneWorkerWarmTrialsPerSecond: round(single.warmTrialsPerSecond, 1),
      allCoresWarmTrialsPerSecond: round(all.warmTrialsPerSecond, 1),
      warmScaling: round(all.warmTrialsPerSecond / single.warmTrialsPerSecond, 2),
      peakResidentMegabytes: round(Math.max(single.peakResidentMegabytes, all.peakResidentMegabytes), 1),
      smallCampaignTrials: small.trials,
      smallCampaignPeakResidentMegabytes: round(small.peakResidentMegabytes, 1),
    };
  },
};

const measurements: readonly Measurement[] = [
  loopMeasurement('loop', 1, 24),
  loopMeasurement('loop4cpu', 4, 22),
  idleMeasurement,
  goldenMeasurement,
  fastForwardMeasurement,
  campaignMeasurement,
];

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function machineInfo() {
  const host = hostCpus();
  return {
    cpus: host.length,
    cpuModel: host[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

function command(): string {
  const script = process.env.npm_lifecycle_event;
  return script === undefined ? `node ${process.argv.slice(1).join(' ')}` : `npm run ${script}`;
}

const RESULTS_HEADER = [
  '# Benchmark results',
  '',
  'One row per `npm run bench`. `instructions/s` is the single-CPU loop; other figures are',
  '`measurement.field=value` pairs, so new measurements add pairs without changing the columns.',
  '',
  '| Date | Command | Node | Host | instructions/s | Figures |',
  '| --- | --- | --- | --- | ---: | --- |',
  '',
].join('\n');

function appendResultRow(path: string, report: Report): void {
  if (!existsSync(path)) writeFileSync(path, RESULTS_HEADER);
  const figures = Object.entries(report.measurements)
    .flatMap(([name, values]) => Object.entries(values).map(([field, value]) => `${name}.${field}=${value}`))
    .join(' ');
  const host = `${report.machine.cpus} × ${report.machine.cpuModel}`;
  const row = [report.date, `\`${report.command}\``, report.machine.node, host, report.instructionsPerSecond, figures];
  appendFileSync(path, `| ${row.join(' | ')} |\n`);
}

interface Report {
  readonly date: string;
  readonly command: string;
  readonly machine: ReturnType<typeof machineInfo>;
  readonly instructionsPerSecond: number;
  readonly measurements: Record<string, Figures>;
}

async function main(): Promise<void> {
  const results: Record<string, Figures> = {};
  for (const measurement of measurements) results[measurement.name] = await measurement.run();
  results.memory = { peakResidentMegabytes: round(process.resourceUsage().maxRSS / 1024, 1) };
  const report: Report = {
    date: new Date().toISOString(),
    command: command(),
    machine: machineInfo(),
    instructionsPerSecond: results.loop.instructionsPerSecond,
    measurements: results,
  };
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  appendResultRow(join(root, 'bench', 'results.md'), report);
  process.stdout.write(JSON.stringify(report) + '\n');
}

await main();
