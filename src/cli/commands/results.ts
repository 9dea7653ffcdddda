/**
 * Commands over a results directory: `merge` combines shards, `report` regenerates the summary
 * and reports from trials.jsonl alone, `replay` re-runs one trial and checks it reproduces.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { TRIALS_FILE, finish } from '../../campaign/runner.js';
import { readRecords, recordsText, writeAtomically } from '../../campaign/store.js';
import { compareRecords, type CampaignRecord } from '../../campaign/summary.js';
import { formatTrace } from '../../trial/trace.js';
import { runTrial } from '../../trial/trial.js';
import { CommandFailure, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';

function recordsIn(directory: string): CampaignRecord[] {
  const path = join(directory, TRIALS_FILE);
  if (!existsSync(path)) throw new UsageError('usage.noResults', `no ${TRIALS_FILE} in ${directory}`);
  return readRecords(path);
}

function campaignOf(records: readonly CampaignRecord[], directory: string): { name: string; seed: number } {
  if (records.length === 0) throw new UsageError('usage.noResults', `${join(directory, TRIALS_FILE)} holds no trials`);
  return { name: records[0].campaign, seed: records[0].record.seed };
}

export function registerResultsCommands(program: Command, io: CliIo): void {
  program
    .command('report')
    .description('regenerate summary.json, report.md, report.html and trials.csv from a directory\'s trials.jsonl')
    .argument('<dir>', 'results directory')
    .action(async (directory: string) => {
      const { name, seed } = campaignOf(recordsIn(directory), directory);
      await finish(directory, name, seed, `ninelives report ${directory}`);
      io.stdout.write(`report: ${join(directory, 'report.md')} (also report.html, summary.json, trials.csv)\n`);
    });

  program
    .command('merge')
    .description('combine the results of shards into one results directory, as if run at once')
    .argument('<out>', 'output directory')
    .argument('<shards...>', 'shard result directories')
    .action(async (out: string, shards: string[]) => {
      const merged = mergeRecords(shards.map((directory) => ({ directory, records: recordsIn(directory) })));
      const { name, seed } = campaignOf(merged, shards[0]);
      mkdirSync(out, { recursive: true });
      writeAtomically(join(out, TRIALS_FILE), recordsText(merged));
      await finish(out, name, seed, `ninelives merge ${out} ${shards.join(' ')}`);
      io.stdout.write(`merged ${merged.length} trials from ${shards.length} shards; report: ${join(out, 'report.md')}\n`);
    });

  program
    .command('replay')
    .description('re-run one trial of a results directory and check that it reproduces its stored record')
    .argument('<dir>', 'results directory')
    .argument('<trial-id>', 'the trial\'s id, e.g. 3AppVM/register/microreset/all/12')
    .option('--trace', 'print the instructions around the injection and the path to detection')
    .action((directory: string, id: string, options: { trace?: boolean }) => {
      const stored = recordsIn(directory).find((record) => record.id === id);
      if (stored === undefined) throw new UsageError('usage.noTrial', `no trial "${id}" in ${join(directory, TRIALS_FILE)}`);
      const { record, trace } = runTrial(stored.spec, { trace: options.trace });
      io.stdout.write(JSON.stringify(record, null, 2) + '\n');
      if (trace !== undefined) io.stdout.write(formatTrace(trace) + '\n');
      if (JSON.stringify(record) !== JSON.stringify(stored.record)) {
        throw new CommandFailure('replay.diverged', `trial ${id} did not reproduce its stored record`);
      }
      io.stdout.write(`reproduced: the record equals the stored one\n`);
    });
}

/** Union of the shards' records in canonical order; the same id twice must be the same record. */
export function mergeRecords(shards: readonly { directory: string; records: readonly CampaignRecord[] }[]): CampaignRecord[] {
  const byId = new Map<string, CampaignRecord>();
  const campaigns = new Set<string>();
  for (const { directory, records } of shards) {
    for (const record of records) {
      campaigns.add(`${record.campaign} (seed ${record.record.seed})`);
      const existing = byId.get(record.id);
      if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(record)) {
        throw new CommandFailure('merge.conflict', `trial ${record.id} differs between shards (${directory})`);
      }
      byId.set(record.id, record);
    }
  }
  if (campaigns.size > 1) throw new UsageError('usage.mixedCampaigns', `the shards come from different campaigns: ${[...campaigns].join(', ')}`);
  return [...byId.values()].sort(compareRecords);
}
