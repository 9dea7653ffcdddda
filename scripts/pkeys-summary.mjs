#!/usr/bin/env node
// The comparison a `pkeys: both` campaign measures, from its trials.jsonl: per fault type, without
// and with protection keys on the same faults (the trials of one mechanism: what happens up to
// detection does not depend on it), detection coverage, the protection-key detector's share of
// detections, detection latency, the SDC share, and each mechanism's recovery rate.
// Usage: node scripts/pkeys-summary.mjs reports/pkeys/trials.jsonl > reports/pkeys/comparison.md
import { readFileSync } from 'node:fs';

const path = process.argv[2];
if (path === undefined) {
  console.error('usage: node scripts/pkeys-summary.mjs <trials.jsonl>');
  process.exit(2);
}
const records = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line).record);
const faultTypes = [...new Set(records.map((record) => record.faultType))];
const mechanisms = [...new Set(records.map((record) => record.mechanism))].filter((name) => name !== 'none');
const percent = (part, whole) => (whole === 0 ? '—' : `${((100 * part) / whole).toFixed(1)}%`);
const quantile = (values, q) => {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((x, y) => x - y);
  return (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1e6).toFixed(3);
};

console.log('| Fault | Keys | Injected | Detected | protectionKey share of detections | Detection latency p50 / p90 (ms) | SDC | ' + mechanisms.map((name) => `${name} recovered`).join(' | ') + ' |');
console.log('| :--- | :--- | ---: | ---: | ---: | ---: | ---: | ' + mechanisms.map(() => '---:').join(' | ') + ' |');
for (const faultType of faultTypes) {
  for (const keyed of [false, true]) {
    const cell = records.filter((record) => record.faultType === faultType && (record.pkeys === true) === keyed);
    const first = cell.filter((record) => record.mechanism === mechanisms[0]);
    const injected = first.filter((record) => record.outcome !== 'notInjected' && record.outcome !== 'harnessError');
    const detected = injected.filter((record) => record.outcome === 'detected');
    const byKey = detected.filter((record) => record.detection.detector === 'exception' && record.detection.exception === 'protectionKey');
    const sdc = injected.filter((record) => record.outcome === 'sdc');
    const latency = `${quantile(detected.map((record) => record.detectionLatencyNs), 0.5)} / ${quantile(detected.map((record) => record.detectionLatencyNs), 0.9)}`;
    const recovered = mechanisms.map((name) => {
      const attempts = cell.filter((record) => record.mechanism === name && record.outcome === 'detected' && record.recovery !== undefined);
      const ok = attempts.filter((record) => record.recovery.result === 'recovered');
      return `${ok.length}/${attempts.length} (${percent(ok.length, attempts.length)})`;
    });
    console.log(`| ${faultType} | ${keyed ? 'with' : 'without'} | ${injected.length} | ${percent(detected.length, injected.length)} | ${percent(byKey.length, detected.length)} | ${latency} | ${percent(sdc.length, injected.length)} | ${recovered.join(' | ')} |`);
  }
}
