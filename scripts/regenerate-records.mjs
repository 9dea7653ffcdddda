#!/usr/bin/env node
// Regenerates test/trial/fixtures/records.jsonl after a deliberate change of the model: reruns each
// pinned spec with the built package and prints a before/after table of outcomes (Markdown).
// Usage: npm run build && node scripts/regenerate-records.mjs [--write]
import { readFileSync, writeFileSync } from 'node:fs';

const fixture = new URL('../test/trial/fixtures/records.jsonl', import.meta.url);
const { runTrial } = await import(new URL('../dist/src/index.js', import.meta.url).href);
const pinned = readFileSync(fixture, 'utf8').trim().split('\n').map((line) => JSON.parse(line));

const describe = (record) => {
  // an SDC's cause is a sentence: its first clause names the symptom (runaway, a guest, the audit)
  if (record.outcome !== 'detected') return record.outcome === 'sdc' ? `sdc (${record.cause.split(/[:(]/)[0].trim()})` : record.outcome;
  const recovery = record.recovery;
  if (recovery === undefined) return `detected (${record.detection.detector})`;
  return recovery.result === 'recovered' ? `recovered${recovery.noVmFailure ? '' : ' (VM failed)'}` : `recoveryFailed (${recovery.cause})`;
};

const rows = pinned.map(({ spec, record }) => {
  const fresh = runTrial(spec).record;
  return { spec, before: describe(record), after: describe(fresh), line: JSON.stringify({ spec, record: fresh }), same: JSON.stringify(fresh) === JSON.stringify(record) };
});
console.log('| trial | before | after |\n| :--- | :--- | :--- |');
for (const row of rows) {
  const { configuration, faultType, mechanism, trialIndex, disabledSteps } = row.spec;
  const name = `${configuration}/${faultType}/${trialIndex}/${mechanism}${disabledSteps?.length ? ` -${disabledSteps.join(',')}` : ''}`;
  console.log(`| ${name} | ${row.before} | ${row.after}${row.same ? '' : row.before === row.after ? ' (record differs)' : ''} |`);
}
if (process.argv.includes('--write')) writeFileSync(fixture, rows.map((row) => row.line).join('\n') + '\n');
