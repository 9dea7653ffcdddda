/**
 * One row per trial, for spreadsheets and data frames. The columns are fixed (csvColumns) and
 * always present; a value that does not apply to a trial's outcome is an empty field. Quoting
 * follows RFC 4180: a field with a comma, a double quote, a line break or surrounding spaces is
 * quoted, and its quotes doubled. Lines end with "\n".
 */
import { isHarnessError, type HarnessErrorRecord } from '../results/harness-error.js';
import type { CampaignRecord } from '../results/summary.js';
import type { Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';

export const csvColumns = [
  'id',
  'config',
  'faultType',
  'mechanism',
  'stage',
  'disabledSteps',
  'trialIndex',
  'trialSeed',
  'outcome',
  'detector',
  'detectionLatencyNs',
  'recoveryResult',
  'noVmFailure',
  'failureCause',
  'recoveryLatencyMs',
  'serviceInterruptionMs',
  'sdcCause',
  'injectionCpu',
  'injectionTimeNs',
  'injectionInstructionCount',
  'injectionPc',
  'injectionLocation',
  'replay',
] as const;

export type CsvColumn = (typeof csvColumns)[number];

type Field = string | number | boolean | null | undefined;

export function renderCsv(entries: Iterable<CampaignRecord>): string {
  let text = csvHeader();
  for (const entry of entries) text += csvLine(entry);
  return text;
}

/** The header line, with its newline: the file starts with it, then has one csvLine per trial. */
export function csvHeader(): string {
  return `${csvColumns.join(',')}\n`;
}

/** One trial's line, with its newline. */
export function csvLine(entry: CampaignRecord): string {
  const row = csvRow(entry);
  return `${csvColumns.map((column) => csvField(row[column])).join(',')}\n`;
}

/** The row's values by column, before quoting. */
export function csvRow(entry: CampaignRecord): Record<CsvColumn, Field> {
  const { record } = entry;
  if (isHarnessError(record)) return harnessErrorRow(entry, record);
  const row: Record<CsvColumn, Field> = {
    id: entry.id,
    config: record.configuration,
    faultType: record.faultType,
    mechanism: record.mechanism,
    stage: entry.stage,
    disabledSteps: record.disabledSteps.join(';'),
    trialIndex: record.trialIndex,
    trialSeed: record.trialSeed,
    outcome: record.outcome,
    detector: null,
    detectionLatencyNs: null,
    recoveryResult: null,
    noVmFailure: null,
    failureCause: null,
    recoveryLatencyMs: null,
    serviceInterruptionMs: null,
    sdcCause: null,
    injectionCpu: null,
    injectionTimeNs: null,
    injectionInstructionCount: null,
    injectionPc: null,
    injectionLocation: null,
    replay: record.replay,
  };
  if (record.outcome === 'notInjected') return row;
  Object.assign(row, injectionFields(record.injection));
  if (record.outcome === 'sdc') row.sdcCause = record.cause;
  if (record.outcome === 'detected') {
    row.detector = detectorName(record.detection);
    row.detectionLatencyNs = record.detectionLatencyNs;
    const recovery = record.recovery;
    if (recovery !== undefined) {
      row.recoveryResult = recovery.result;
      row.noVmFailure = recovery.noVmFailure;
      row.failureCause = recovery.cause;
      row.recoveryLatencyMs = recovery.recoveryLatencyMs;
      row.serviceInterruptionMs = recovery.serviceInterruptionMs;
    }
  }
  return row;
}

/** A trial the harness could not run: its identity, the outcome, and the error where a trial's cause goes. */
function harnessErrorRow(entry: CampaignRecord, record: HarnessErrorRecord): Record<CsvColumn, Field> {
  const row = Object.fromEntries(csvColumns.map((column) => [column, null])) as Record<CsvColumn, Field>;
  return {
    ...row,
    id: entry.id,
    config: record.configuration,
    faultType: record.faultType,
    mechanism: record.mechanism,
    stage: entry.stage,
    disabledSteps: record.disabledSteps.join(';'),
    trialIndex: record.trialIndex,
    outcome: record.outcome,
    failureCause: record.error,
    replay: record.replay,
  };
}

/** As the summary names detectors: "hang", "assertion", "exception:pageFault". */
function detectorName(detection: Detection): string {
  return detection.detector === 'exception' ? `exception:${detection.exception}` : detection.detector;
}

function injectionFields(injection: Injection): Partial<Record<CsvColumn, Field>> {
  return {
    injectionCpu: injection.cpu,
    injectionTimeNs: injection.timeNs,
    injectionInstructionCount: injection.instructionCount,
    injectionPc: hex(injection.programCounter),
    injectionLocation: describeLocation(injection),
  };
}

/** "register r3 bit 5 0x10->0x30", "memory 0x2040 <timer_list+2> bit 7 0x0->0x80", "failstop". */
export function describeLocation(injection: Injection): string {
  const location = injection.location;
  switch (location.type) {
    case 'failstop':
      return `failstop pc ${hex(location.before)}->0x0`;
    case 'hostFailstop':
      return `hostFailstop ${location.cpus} CPUs stopped`;
    case 'register':
      return `register ${location.register} bit ${location.bit} ${hex(location.before)}->${hex(location.after)}`;
    case 'code':
    case 'memory':
      return `${location.type} ${hex(location.address)} <${location.symbol}> bit ${location.bit} ${hex(location.before)}->${hex(location.after)}`;
  }
}

function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

/**
 * A text cell that a spreadsheet would run as a formula (it begins with =, +, -, @, a tab or a
 * carriage return) gets a leading apostrophe, as OWASP's CSV-injection guidance says: shown as
 * text, never evaluated. Numbers are not text and keep their sign.
 */
export function neutralizeFormula(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

export function csvField(value: Field): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' && !Number.isFinite(value)) return '';
  const text = typeof value === 'string' ? neutralizeFormula(value) : String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
