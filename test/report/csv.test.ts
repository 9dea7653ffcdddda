/**
 * trials.csv: fixed columns, one row per trial, RFC 4180 quoting.
 */
import { describe, expect, it } from 'vitest';
import { csvColumns, csvField, renderCsv } from '../../src/report/csv.js';
import { detected, nonManifested, notInjected, sdc } from './fixtures.js';

/** A small RFC 4180 parser, to read back what renderCsv wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const character = text[i];
    if (quoted) {
      if (character === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (character === '"') quoted = false;
      else field += character;
    } else if (character === '"') quoted = true;
    else if (character === ',') {
      row.push(field);
      field = '';
    } else if (character === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += character;
  }
  expect(field).toBe('');
  expect(row).toEqual([]);
  return rows;
}

describe('csvField', () => {
  it('quotes only what needs quoting, doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvField(12.5)).toBe('12.5');
    expect(csvField(false)).toBe('false');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
  });
});

describe('renderCsv', () => {
  const entries = [
    notInjected({ trialIndex: 0 }),
    nonManifested({ trialIndex: 1 }),
    sdc({ trialIndex: 2 }, 'blkbench: block 7 read back "0x0", expected 0x2a, then lost'),
    detected({ trialIndex: 3, mechanism: 'microreboot', stage: 'without release-locks', disabledSteps: ['release-heap-locks', 'release-static-locks'] }, { recovered: false, cause: 'recoveryHung', serviceInterruptionMs: 712.5, detector: 'hang' }),
    detected({ trialIndex: 4, mechanism: 'none', faultType: 'code' }),
  ];
  const text = renderCsv(entries);
  const rows = parseCsv(text);
  const [header, ...body] = rows;
  const byColumn = (row: string[]) => Object.fromEntries(header.map((name, index) => [name, row[index]]));

  it('has the fixed header and one row of the same width per trial', () => {
    expect(header).toEqual([...csvColumns]);
    expect(header.slice(0, 9)).toEqual(['id', 'config', 'faultType', 'mechanism', 'stage', 'disabledSteps', 'trialIndex', 'trialSeed', 'outcome']);
    expect(body).toHaveLength(entries.length);
    for (const row of body) expect(row).toHaveLength(csvColumns.length);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('a trial that was not injected has only its identity', () => {
    const row = byColumn(body[0]);
    expect(row).toMatchObject({ id: '1AppVM/register/microreset/all/0', config: '1AppVM', faultType: 'register', mechanism: 'microreset', stage: 'all', trialIndex: '0', trialSeed: '1000', outcome: 'notInjected' });
    expect([row.detector, row.injectionCpu, row.injectionLocation, row.recoveryResult, row.sdcCause]).toEqual(['', '', '', '', '']);
    expect(row.replay).toBe('ninelives inject --config 1AppVM --fault register --seed 42 --trial 0 --mechanism microreset');
  });

  it('injected trials say where the fault landed', () => {
    const row = byColumn(body[1]);
    expect(row).toMatchObject({ outcome: 'nonManifested', injectionCpu: '2', injectionTimeNs: '5012345', injectionInstructionCount: '987654', injectionPc: '0x1a40', injectionLocation: 'register r3 bit 5 0x10->0x30' });
  });

  it('an SDC keeps its cause, quotes and commas intact', () => {
    expect(byColumn(body[2]).sdcCause).toBe('blkbench: block 7 read back "0x0", expected 0x2a, then lost');
    expect(text).toContain('"blkbench: block 7 read back ""0x0"", expected 0x2a, then lost"');
  });

  it('a detected trial has its detector, latencies and recovery', () => {
    const row = byColumn(body[3]);
    expect(row).toMatchObject({
      stage: 'without release-locks',
      disabledSteps: 'release-heap-locks;release-static-locks',
      outcome: 'detected',
      detector: 'hang',
      detectionLatencyNs: '2000000',
      recoveryResult: 'recoveryFailed',
      noVmFailure: 'false',
      failureCause: 'recoveryHung',
      recoveryLatencyMs: '710.5',
      serviceInterruptionMs: '712.5',
    });
    const unrecovered = byColumn(body[4]);
    expect(unrecovered).toMatchObject({ mechanism: 'none', detector: 'exception:pageFault', recoveryResult: '', failureCause: '', serviceInterruptionMs: '' });
  });

  it('no trials: just the header', () => {
    expect(renderCsv([])).toBe(`${csvColumns.join(',')}\n`);
  });
});
