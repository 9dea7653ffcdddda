/**
 * One campaign run for the benchmark, in a process of its own so that every run starts cold (no
 * golden run cached, no code translated) and its peak memory is its own:
 *
 *   node dist/bench/campaign-run.js <campaign.yaml> <register faults> <workers>
 *
 * Runs the campaign's register faults only, into a temporary directory, and prints one JSON
 * object: trials, seconds, the rate once warm (from the first quarter of the trials to the last,
 * leaving out start-up — golden runs, translating code — and the reports at the end), and peak
 * resident megabytes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runCampaign, type RunProgress } from '../src/campaign/runner.js';
import { parseCampaign } from '../src/campaign/spec.js';

const [file, faults, workers] = process.argv.slice(2);
const campaign = parseCampaign(readFileSync(file, 'utf8'), file);
const registerOnly = { ...campaign, faults: { register: Number(faults) } };
const outDirectory = mkdtempSync(join(tmpdir(), 'ninelives-bench-'));
try {
  const started = performance.now();
  const marks = { quarter: { done: 0, atMs: 0 }, last: { done: 0, atMs: 0 } };
  const onProgress = ({ done, total }: RunProgress): void => {
    if (marks.quarter.done === 0 && done >= total / 4) marks.quarter = { done, atMs: performance.now() };
    marks.last = { done, atMs: performance.now() };
  };
  const result = await runCampaign(registerOnly, { outDirectory, workers: Number(workers), resume: false, onProgress });
  const seconds = (performance.now() - started) / 1000;
  const trials = result.kind === 'completed' ? result.total : 0;
  const warmTrialsPerSecond = (marks.last.done - marks.quarter.done) / ((marks.last.atMs - marks.quarter.atMs) / 1000);
  process.stdout.write(JSON.stringify({ trials, seconds, warmTrialsPerSecond, peakResidentMegabytes: process.resourceUsage().maxRSS / 1024 }) + '\n');
} finally {
  rmSync(outDirectory, { recursive: true, force: true });
}
