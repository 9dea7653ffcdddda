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
import { pendingWork, ResultsSoFar } from '../../src/campaign/queue/chunks.js';
import { planTrials, type TrialJob } from '../../src/campaign/plan.js';
import { parseCampaign } from '../../src/campaign/spec.js';
import { removeTemporaryDirectories, smallCampaignText, temporaryDirectory } from './helpers.js';

const campaign = parseCampaign(smallCampaignText({ name: 'followed', register: 6, failstop: 3 }), 'followed.yaml');
const jobs = planTrials(campaign);

/** A record-shaped line for a planned job (the reader looks at ids, specs and outcomes only). */
function line(job: TrialJob, campaignName = campaign.name, recovered = job.spec.trialIndex % 2 === 0): string {
  const { configuration, faultType, mechanism, trialIndex } = job.spec;
  const record = { configuration, faultType, mechanism, trialIndex, outcome: 'detected', recovery: { result: recovered ? 'recovered' : 'failed' } };
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

  it('a producer that keeps what it read gives, round after round of a stop rule, what one reading everything afresh gives', () => {
    const text = ['name: stopping', 'seed: 3', 'configurations: [1AppVM]', 'runLengthMs: 300', 'faults: { register: 60, failstop: 30 }', 'mechanisms: [microreset, microreboot]', 'stop: { margin: 0.2, confidence: 0.9, minDetected: 4, every: 10 }', ''].join('\n');
    const stopping = parseCampaign(text, 'stopping.yaml');
    const planned = planTrials(stopping);
    const directory = temporaryDirectory();
    let file = 0;
    fc.assert(
      fc.property(
        // which trials recover (a cell stops sooner or later), and how many of the missing chunks each look finds done
        fc.func(fc.boolean()),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 60 }),
        (recovers, doneAtEachLook) => {
          const path = join(directory, `trials-${++file}.jsonl`);
          writeFileSync(path, '');
          const soFar = new ResultsSoFar(stopping, planned);
          for (let look = 0; ; look++) {
            const kept = pendingWork(stopping, 3, [path], soFar);
            expect(kept).toEqual(pendingWork(stopping, 3, [path]));
            if (kept === undefined) break;
            // the workers finish some of the missing chunks before the next look
            const done = kept.missing.slice(0, doneAtEachLook[look % doneAtEachLook.length]);
            for (const chunk of done) appendFileSync(path, kept.chunks[chunk].flat().map((job) => line(job, stopping.name, recovers(job.id))).join(''));
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
