/**
 * The producer's incremental reading of hosts' results (ResultsSoFar, queue/chunks.ts): a file
 * that live workers append to, cut anywhere (a torn last line is a write in progress), read
 * again and again, gives after each read what one fresh read of the file gives; a file replaced
 * by a shorter one is read again from its start.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultsSoFar } from '../../src/campaign/queue/chunks.js';
import { planTrials, type TrialJob } from '../../src/campaign/plan.js';
import { parseCampaign } from '../../src/campaign/spec.js';
import { removeTemporaryDirectories, smallCampaignText, temporaryDirectory } from './helpers.js';

const campaign = parseCampaign(smallCampaignText({ name: 'followed', register: 6, failstop: 3 }), 'followed.yaml');
const jobs = planTrials(campaign);

/** A record-shaped line for a planned job (the reader looks at ids, specs and outcomes only). */
function line(job: TrialJob, campaignName = campaign.name): string {
  const { configuration, faultType, mechanism, trialIndex } = job.spec;
  const record = { configuration, faultType, mechanism, trialIndex, outcome: 'detected', recovery: { result: trialIndex % 2 === 0 ? 'recovered' : 'failed' } };
  return JSON.stringify({ campaign: campaignName, id: job.id, stage: job.stage, spec: job.spec, record }) + '\n';
}

function fresh(path: string): { finished: string[]; entries: string[] } {
  const once = new ResultsSoFar(campaign, jobs);
  once.update([path]);
  return seen(once);
}

function seen(results: ResultsSoFar): { finished: string[]; entries: string[] } {
  return { finished: [...results.finished].sort(), entries: results.entries.map((entry) => entry.id) };
}

afterAll(removeTemporaryDirectories);

describe('reading hosts\' results incrementally', () => {
  it('after each append, cut at any byte, it holds what a fresh read holds', () => {
    const directory = temporaryDirectory();
    let file = 0;
    fc.assert(
      fc.property(
        // the records a worker appends (repeats: a re-issued chunk; another campaign's: ignored)
        fc.array(fc.record({ job: fc.constantFrom(...jobs), other: fc.boolean() }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 40 }),
        (records, cuts) => {
          const path = join(directory, `trials-${++file}.jsonl`);
          writeFileSync(path, '');
          const text = records.map(({ job, other }) => line(job, other ? 'elsewhere' : campaign.name)).join('');
          const following = new ResultsSoFar(campaign, jobs);
          let written = 0;
          for (const cut of [...cuts, text.length]) {
            const upTo = Math.min(text.length, written + cut);
            appendFileSync(path, text.slice(written, upTo));
            written = upTo;
            following.update([path]);
            expect(seen(following)).toEqual(fresh(path));
            if (written === text.length) break;
          }
          const wanted = new Set(records.filter(({ other }) => !other).map(({ job }) => job.id));
          expect(new Set(following.finished)).toEqual(wanted);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a file replaced by a shorter one is read again from its start', () => {
    const path = join(temporaryDirectory(), 'trials.jsonl');
    writeFileSync(path, jobs.slice(0, 6).map((job) => line(job)).join(''));
    const following = new ResultsSoFar(campaign, jobs);
    following.update([path]);
    writeFileSync(path, line(jobs[7]));
    following.update([path]);
    expect(following.finished).toEqual(new Set([...jobs.slice(0, 6), jobs[7]].map((job) => job.id)));
  });
});
