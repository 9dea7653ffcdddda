/**
 * `--timeline FILE.html` of `inject` and `replay`: the trial's timeline page, with its footprint
 * when its recovery failed (triage's diagnosis, without the re-runs of the restoring-set search),
 * written as a new file (the caller refuses the name before the trial runs: new-file.ts).
 */
import { writeFileSync } from 'node:fs';
import { writeNewFile } from './new-file.js';
import { diagnoseTrial } from '../campaign/triage/diagnose.js';
import { renderTimelinePage } from '../report/timeline.js';
import type { TrialSpec } from '../trial/record.js';
import { trialTimeline } from '../trial/timeline.js';

export async function writeTimeline(spec: TrialSpec, path: string, title: string): Promise<void> {
  const timeline = trialTimeline(spec);
  const record = timeline.record;
  const failed = record.outcome === 'detected' && record.recovery?.result === 'recoveryFailed' ? record.recovery : undefined;
  const footprint = failed === undefined ? undefined : diagnoseTrial({ id: title, spec, recovery: failed, replay: record.replay }, { maxReruns: 0 }).footprint;
  const page = await renderTimelinePage(timeline, { title, ...(footprint === undefined ? {} : { footprint }) });
  await writeNewFile('--timeline', path, (temporary) => writeFileSync(temporary, page));
}
