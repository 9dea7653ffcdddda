#!/usr/bin/env node
// Rerun every N-th fault of a finished campaign with the built package and check that each
// record comes out byte for byte as stored; print host time per fault by outcome. The guard and
// the yardstick for work on speed: run it on a results directory made before the change.
//
// Usage:  node scripts/replay-sample.mjs RESULTS_DIR [EVERY]
//   RESULTS_DIR  a directory holding trials.jsonl (written by `ninelives run`)
//   EVERY        rerun the faults whose trial index is a multiple of EVERY (default 40)
// Needs `npm run build` first. Exit status: 0 all reproduced, 1 a record differed, 2 bad usage.
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const [directory, everyText = '40'] = process.argv.slice(2);
const every = Number(everyText);
const trialsFile = directory === undefined ? '' : join(directory, 'trials.jsonl');
if (!existsSync(trialsFile) || !Number.isInteger(every) || every < 1) {
  process.stderr.write('usage: node scripts/replay-sample.mjs RESULTS_DIR [EVERY]  (RESULTS_DIR must hold trials.jsonl)\n');
  process.exit(2);
}
const api = new URL('../dist/src/index.js', import.meta.url);
if (!existsSync(api)) {
  process.stderr.write('replay-sample: build first (npm run build)\n');
  process.exit(2);
}
const { runTrialVariants } = await import(api.href);

/** The sampled faults' stored entries, grouped by fault, in file order. */
async function sampledFaults() {
  const faults = new Map();
  let lineNumber = 0;
  for await (const line of createInterface({ input: createReadStream(trialsFile), crlfDelay: Infinity })) {
    lineNumber++;
    if (line.trim() === '') continue;
    const entry = parsedEntry(line, lineNumber);
    const { configuration, faultType, trialIndex } = entry.spec;
    if (trialIndex % every !== 0) continue;
    const key = `${configuration}/${faultType}/${trialIndex}`;
    faults.set(key, [...(faults.get(key) ?? []), entry]);
  }
  return faults;
}

function parsedEntry(line, lineNumber) {
  try {
    const entry = JSON.parse(line);
    if (typeof entry?.spec?.trialIndex === 'number' && entry.record !== undefined) return entry;
  } catch {
    // reported below
  }
  process.stderr.write(`replay-sample: ${trialsFile} line ${lineNumber}: not a trial record\n`);
  process.exit(2);
}

function outcomeOf(record) {
  if (record.outcome === 'nonManifested') return record.matchedGoldenAtNs === null ? 'non-manifested, ran to the end' : 'non-manifested, matched golden';
  if (record.outcome === 'sdc') return record.cause.startsWith('runaway') ? 'sdc, runaway' : 'sdc';
  return record.outcome;
}

const faults = await sampledFaults();
const byOutcome = new Map();
const differing = [];
const started = performance.now();
for (const entries of faults.values()) {
  const before = performance.now();
  const records = runTrialVariants(entries.map((entry) => entry.spec));
  const milliseconds = performance.now() - before;
  records.forEach((record, index) => {
    if (JSON.stringify(record) !== JSON.stringify(entries[index].record)) differing.push(entries[index].id);
  });
  const row = `${entries[0].spec.configuration} ${entries[0].spec.faultType}: ${outcomeOf(entries[0].record)}`;
  const tally = byOutcome.get(row) ?? { faults: 0, milliseconds: 0 };
  byOutcome.set(row, { faults: tally.faults + 1, milliseconds: tally.milliseconds + milliseconds });
  if (process.stderr.isTTY) process.stderr.write(`\r${[...byOutcome.values()].reduce((sum, tally) => sum + tally.faults, 0)}/${faults.size} faults`);
}
const total = performance.now() - started;
if (process.stderr.isTTY) process.stderr.write('\n');
for (const [row, tally] of [...byOutcome].sort()) {
  process.stdout.write(`${row.padEnd(52)} ${String(tally.faults).padStart(5)} faults ${(tally.milliseconds / tally.faults).toFixed(1).padStart(7)} ms each ${((100 * tally.milliseconds) / total).toFixed(1).padStart(5)}%\n`);
}
process.stdout.write(`${faults.size} faults in ${(total / 1000).toFixed(1)} s: ${(total / Math.max(1, faults.size)).toFixed(1)} ms per fault (the first pays for golden runs and translation)\n`);
if (differing.length > 0) {
  process.stdout.write(`${differing.length} records differ, e.g. ${differing.slice(0, 3).join(', ')}\n`);
  process.exit(1);
}
process.stdout.write('every record reproduced byte for byte\n');
