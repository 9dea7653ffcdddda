/**
 * A trial the harness, not the model, could not run (it threw inside the simulator, or the
 * worker thread running it died twice): recorded in trials.jsonl with outcome `harnessError`
 * and the message, in place of the trial's record, so that the summary counts it and the
 * reports show it. The campaign layer decides when a trial has failed (campaign/harness.ts);
 * this layer only knows what such a record looks like.
 */
import { getConfiguration } from '../guests/configurations.js';
import { replayCommand, specFields, type SpecFields, type TrialRecord, type TrialSpec } from '../trial/record.js';

export interface HarnessErrorRecord extends SpecFields {
  readonly outcome: 'harnessError';
  /** what went wrong, as the harness saw it */
  readonly error: string;
  readonly replay: string;
}

export function harnessErrorRecord(spec: TrialSpec, error: unknown): HarnessErrorRecord {
  return {
    ...specFields(spec),
    outcome: 'harnessError',
    error: messageOf(error),
    replay: replayCommand(spec, getConfiguration(spec.configuration).runLengthNs),
  };
}

export function isHarnessError(record: TrialRecord | HarnessErrorRecord): record is HarnessErrorRecord {
  return record.outcome === 'harnessError';
}

/** The error's first line, at most 500 characters: a record stays a record, not a stack dump. */
export function messageOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.split('\n')[0].slice(0, 500);
}
