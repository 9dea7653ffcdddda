/**
 * Campaign files: YAML validated by a zod schema, which also yields a JSON Schema for editors.
 * Every problem is reported with the file, the key and what was expected.
 */
import { readFileSync, statSync } from 'node:fs';
import { isCollection, isPair, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { configurationNames } from '../guests/configurations.js';
import { faultTypes } from '../faults/fault.js';
import { NOMINAL_HOST } from '../recovery/cost-model.js';
import { ablationStages, mechanismNamed, unknownSteps } from '../recovery/mechanisms.js';
import { NinelivesError } from '../errors.js';
import type { KvServerSettings, ReplayFailoverSettings } from '../trial/record.js';
import { MAX_CHECKPOINT_MS, MAX_KV_IMBALANCE, MIN_CHECKPOINT_MS, MAX_REPLICATION_PERIOD_MS, MIN_REPLICATION_PERIOD_MS, MAX_CAMPAIGN_FILE_BYTES, MAX_DESCRIPTION_LENGTH, MAX_LABEL_LENGTH, MAX_LIST_LENGTH, MAX_NESTING_DEPTH, MAX_SEED, MAX_TRIALS, MAX_YAML_ALIAS_COUNT, plannedTrialCount } from './limits.js';
import { MAX_CONFIDENCE, MIN_CONFIDENCE } from '../results/statistics.js';

const positiveInteger = z.number().int().positive();

/** Text shown in reports and used in trial ids: one line, printable. */
const plainText = (maximum: number) =>
  z
    .string()
    .max(maximum)
    .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u, 'printable text on one line (no control characters)');

/** A label is a stage's name, and a trial id joins its parts with '/'. */
const labelText = z
  .string()
  .min(1)
  .max(MAX_LABEL_LENGTH)
  .regex(/^(?!\s)[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}/]*(?<!\s)$/u, "printable text on one line, without '/' (trial ids join their parts with it) or spaces at either end (\"all \" would read as \"all\")");

/** An unknown key's problem names the keys that were expected there. */
function unknownKeyError(known: readonly string[]): z.core.$ZodErrorMap {
  return (issue) => (issue.code === 'unrecognized_keys' ? `unknown key (expected one of ${known.join(', ')})` : undefined);
}

function strictObject<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  return z.strictObject(shape, { error: unknownKeyError(Object.keys(shape)) });
}

/** A failover period: from a millisecond (checkpoints that cost most of the run) to a second. */
const replicationPeriodMs = z.number().int().min(MIN_REPLICATION_PERIOD_MS).max(MAX_REPLICATION_PERIOD_MS);

const mechanismEntry = z.union(
  [
    z.enum(['none', 'microreset', 'microreboot', 'failover', 'replay-failover']),
    strictObject({
      name: z.enum(['none', 'microreset', 'microreboot', 'failover', 'replay-failover']),
      /** repair steps switched off */
      disable: z.array(plainText(MAX_LABEL_LENGTH)).max(MAX_LIST_LENGTH).optional(),
      /** run every cumulative stage of the mechanism's repairs, from none to all */
      ablation: z.boolean().optional(),
      /** the group's stage name in reports (default: "all", or derived from `disable` or the periods) */
      label: labelText.optional(),
      /** replay-failover: checkpoint interval (default 100 ms) */
      checkpointMs: z.number().int().min(MIN_CHECKPOINT_MS).max(MAX_CHECKPOINT_MS).optional(),
      /** replay-failover: how the key-value server's lock acquisitions are ordered (default log) */
      ordering: z.enum(['log', 'deterministic', 'none']).optional(),
      /** replay-failover: delay replayed threads to the original gaps between system calls (default true) */
      timingAdjustment: z.boolean().optional(),
      /** failover: the checkpoint epoch, ms (default 30) */
      epochMs: replicationPeriodMs.optional(),
      /** failover: the heartbeat period, ms (default 30; the primary is declared failed after 3 missed) */
      heartbeatMs: replicationPeriodMs.optional(),
      /** 3AppVM-mt: share of the key-value server's requests that race on its counter outside the lock (default 0.1) */
      raceRate: z.number().min(0).max(1).optional(),
      /** 3AppVM-mt: how much longer the server's thread 0 takes for its work than its instructions say, as a share (default 0) */
      imbalance: z.number().min(0).max(MAX_KV_IMBALANCE).optional(),
    }),
  ],
  { error: 'expected a mechanism name (none, microreset, microreboot, failover, replay-failover) or an object with name, disable, ablation, label, checkpointMs, ordering, timingAdjustment, epochMs, heartbeatMs, raceRate, imbalance' },
);

export const campaignSchema = strictObject({
  name: z.string().max(MAX_LABEL_LENGTH).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-"'),
  /** paragraphs for the reports: lines and tabs, but no other control characters (a terminal or a page would act on them) */
  description: z
    .string()
    .max(MAX_DESCRIPTION_LENGTH)
    .regex(/^(?:[\n\t]|[^\p{Cc}\p{Cf}])*$/u, 'text without control characters (lines and tabs are fine)')
    .optional(),
  seed: z.number().int().min(0).max(MAX_SEED),
  configurations: z
    .array(z.enum(configurationNames() as [string, ...string[]]))
    .min(1)
    .refine((names) => new Set(names).size === names.length, 'each configuration once'),
  /** trials per fault type; each mechanism gets the same faults */
  faults: z.partialRecord(z.enum(faultTypes), positiveInteger.max(MAX_TRIALS), { error: unknownKeyError(faultTypes) }).refine((faults) => Object.keys(faults).length > 0, 'at least one fault type'),
  mechanisms: z.array(mechanismEntry).min(1).max(MAX_LIST_LENGTH),
  /** simulated run length (default: each configuration's own) */
  runLengthMs: z.number().int().min(10).max(60_000).optional(),
  /** the host the recovery cost model prices */
  host: strictObject({ cpus: positiveInteger.max(1024), memoryGiB: positiveInteger.max(65_536) }).default(NOMINAL_HOST),
  strictNetBench: z.boolean().default(false),
  /**
   * the hypervisor built with its intended-sharing policy enforced by protection keys (PUSh):
   * true for every trial, "both" for every mechanism variant without and with (its stage "+pkeys"), on the same faults
   */
  // optional, not defaulted: a campaign without it keeps the fingerprint it had before the option existed
  pkeys: z.union([z.boolean(), z.enum(['both'])], { error: 'expected true, false or "both"' }).optional(),
  /** stop each cell once its recovery rate is known within a margin; `faults` are then the most trials per fault type */
  stop: strictObject({
    margin: z.number().gt(0).lt(0.5),
    confidence: z.number().min(MIN_CONFIDENCE).max(MAX_CONFIDENCE),
    /** recoveries attempted before a cell may stop */
    minDetected: positiveInteger.default(100),
    /** trial indexes between the checkpoints where cells may stop */
    every: positiveInteger.default(100),
  }).optional(),
});

export type CampaignFile = z.infer<typeof campaignSchema>;

/** One mechanism variant of a campaign: a group of trials in the reports. */
export interface Variant {
  readonly mechanism: 'none' | 'microreset' | 'microreboot' | 'failover' | 'replay-failover';
  readonly stage: string;
  readonly disabledSteps: readonly string[];
  /** replay-failover's options, as given (absent for every other mechanism) */
  readonly replay?: ReplaySettings;
  /** the hypervisor built with protection keys (PUSh) */
  readonly pkeys?: boolean;
  /** failover only, when the campaign sets them: the epoch and heartbeat periods */
  readonly replication?: { readonly epochMs?: number; readonly heartbeatMs?: number };
  /** 3AppVM-mt only, when the entry sets them: the key-value server's race rate and load imbalance */
  readonly kvServer?: KvServerSettings;
}

export type ReplaySettings = ReplayFailoverSettings;

/** The only configuration whose workload has the options raceRate and imbalance. */
const KV_SERVER_CONFIGURATION = '3AppVM-mt';

export interface Campaign extends CampaignFile {
  readonly variants: readonly Variant[];
}

export class CampaignError extends NinelivesError {
  constructor(readonly problems: readonly string[]) {
    super('input.campaign', problems.join('\n'));
  }
}

export function loadCampaign(path: string): Campaign {
  if (path.trim() === '') throw new CampaignError(['the campaign file name is empty: name a campaign file (campaigns/quick.yaml, say)']);
  let text: string;
  try {
    // a device, a pipe or a huge file is refused before a byte is read
    const stats = statSync(path);
    if (stats.isDirectory()) throw new CampaignError([`${path}: cannot read the campaign file`]);
    if (!stats.isFile()) throw new CampaignError([`${path}: not a regular file (a device or a pipe is not read)`]);
    if (stats.size > MAX_CAMPAIGN_FILE_BYTES) throw new CampaignError([`${path}: ${stats.size} bytes, more than a campaign file may have (${MAX_CAMPAIGN_FILE_BYTES})`]);
    text = utf8Text(readFileSync(path), path);
  } catch (error) {
    if (error instanceof CampaignError) throw error;
    throw new CampaignError([`${path}: cannot read the campaign file`]);
  }
  return parseCampaign(text, path);
}

/** A campaign file is UTF-8 text: a UTF-16 file (NUL bytes between its letters) or a binary one is named as such. */
function utf8Text(bytes: Buffer, path: string): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (!text.includes('\u0000')) return text;
  } catch {
    // not UTF-8
  }
  throw new CampaignError([`${path}: not UTF-8 text (a campaign file is YAML in UTF-8; UTF-16, say, is not read)`]);
}

export function parseCampaign(text: string, path: string): Campaign {
  if (text.length > MAX_CAMPAIGN_FILE_BYTES) throw new CampaignError([`${path}: more than ${MAX_CAMPAIGN_FILE_BYTES} characters, more than a campaign file may have`]);
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, lineCounter });
  if (document.errors.length > 0) {
    throw new CampaignError(
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        if (/call stack/i.test(error.message)) return `${path}: line ${line}, column ${col}: YAML: nested more than ${MAX_NESTING_DEPTH} levels deep`;
        return `${path}: line ${line}, column ${col}: YAML: ${error.message.split('\n')[0]}`;
      }),
    );
  }
  if (nestingDepth(document) > MAX_NESTING_DEPTH) throw new CampaignError([`${path}: YAML: nested more than ${MAX_NESTING_DEPTH} levels deep`]);
  return campaignOf(toPlainData(document, path), path);
}

/** A campaign from its file's contents as a value, checked as a file is; `path` names it in problems. */
export function campaignOf(input: unknown, path: string): Campaign {
  const parsed = campaignSchema.safeParse(input);
  if (!parsed.success) throw new CampaignError(parsed.error.issues.flatMap((issue) => problemsOf(issue, input)).map((issue) => `${path}: ${keyOf(issue.path)}: ${issue.message}`));
  const variants = expandVariants(parsed.data, path);
  const trials = plannedTrialCount({ configurations: parsed.data.configurations.length, faults: Object.values(parsed.data.faults), variants: variants.length }, undefined);
  if (trials > MAX_TRIALS) throw new CampaignError([`${path}: faults: plans ${trials} trials, more than ${MAX_TRIALS} (split the campaign, or run fewer trials per fault type)`]);
  return { ...parsed.data, variants };
}

/** The document as plain data; aliases that expand into too many nodes are refused. */
function toPlainData(document: Document, path: string): unknown {
  try {
    return document.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (error) {
    if (error instanceof ReferenceError) throw new CampaignError([`${path}: YAML: aliases expand into too many values (more than ${MAX_YAML_ALIAS_COUNT})`]);
    throw new CampaignError([`${path}: YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
}

/** The deepest nesting of collections, walked without recursion. */
function nestingDepth(document: Document): number {
  let deepest = 0;
  const pending: { node: unknown; depth: number }[] = [{ node: document.contents, depth: 0 }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { node, depth } = item;
    if (isPair(node)) {
      pending.push({ node: node.key, depth }, { node: node.value, depth });
    } else if (isCollection(node)) {
      deepest = Math.max(deepest, depth + 1);
      if (depth + 1 > MAX_NESTING_DEPTH) return deepest;
      for (const child of node.items) pending.push({ node: child, depth: depth + 1 });
    }
  }
  return deepest;
}

function keyOf(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

/**
 * Each problem on its own: each unknown key, and for a mechanism entry (a name or an object) the
 * problems of the form that was given rather than the union's "expected one or the other".
 */
function problemsOf(issue: z.core.$ZodIssue, input: unknown): { path: readonly PropertyKey[]; message: string }[] {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: [...issue.path, key], message: issue.message }));
  if (issue.code === 'invalid_union' && issue.path[0] === 'mechanisms' && issue.errors.length === 2) {
    const value = valueAt(input, issue.path);
    // the alternatives of mechanismEntry, in order: a name, then an object
    const given = typeof value === 'string' ? issue.errors[0] : isRecord(value) ? issue.errors[1] : undefined;
    if (given !== undefined) return given.flatMap((inner) => problemsOf({ ...inner, path: [...issue.path, ...inner.path] }, input));
  }
  return [{ path: issue.path, message: issue.message }];
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((value, key) => (isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[key] : undefined), input);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expandVariants(file: CampaignFile, path: string): Variant[] {
  const problems: string[] = [];
  const variants = file.mechanisms.flatMap((entry, index) => {
    const spec = typeof entry === 'string' ? { name: entry } : entry;
    const where = `${path}: mechanisms.${index}`;
    const replication = replicationOfEntry(spec);
    if (replication !== undefined && spec.name !== 'failover') problems.push(`${where}: epochMs and heartbeatMs are failover's periods, not ${spec.name}'s`);
    const kvServer = kvServerOfEntry(spec);
    const others = file.configurations.filter((name) => name !== KV_SERVER_CONFIGURATION);
    if (kvServer !== undefined && others.length > 0) problems.push(`${where}: raceRate and imbalance are options of ${KV_SERVER_CONFIGURATION}'s key-value server, and the campaign also runs ${others.join(', ')}`);
    if (kvServer !== undefined && spec.ablation === true) problems.push(`${where}: an ablation takes no raceRate or imbalance`);
    const withKv = kvServer === undefined ? {} : { kvServer };
    if (spec.name === 'none') {
      if (spec.disable !== undefined || spec.ablation === true) problems.push(`${where}: mechanism none has no steps to disable or ablate`);
      return [{ mechanism: 'none' as const, stage: spec.label ?? withServerLabel('all', kvServer), disabledSteps: [], ...withKv }];
    }
    const mechanism = mechanismNamed(spec.name);
    const unknown = unknownSteps(mechanism, spec.disable ?? []);
    if (unknown.length > 0) {
      const steps = mechanism.steps.map(({ step }) => step.name).join(', ');
      problems.push(`${where}.disable: ${spec.name} has no step ${unknown.map((name) => `"${name}"`).join(', ')} (expected one of ${steps})`);
    }
    const twice = (spec.disable ?? []).filter((name, position, names) => names.indexOf(name) !== position);
    if (twice.length > 0) problems.push(`${where}.disable: names ${[...new Set(twice)].map((name) => `"${name}"`).join(', ')} twice`);
    const replay = replaySettingsOf(spec);
    if (replay !== undefined && spec.name !== 'replay-failover') problems.push(`${where}: checkpointMs, ordering and timingAdjustment are options of replay-failover, not of ${spec.name}`);
    if (spec.ablation === true) return ablationVariants(spec.name);
    // in the mechanism's order, so that the same steps listed in another order are the same stage
    const order = mechanism.steps.map(({ step }) => step.name);
    const disabledSteps = [...new Set(spec.disable ?? [])].sort((x, y) => order.indexOf(x) - order.indexOf(y));
    if (spec.name === 'replay-failover') return [{ mechanism: spec.name, stage: spec.label ?? withServerLabel(replayStage(replay ?? {}), kvServer), disabledSteps, replay: replay ?? {}, ...withKv }];
    const stage = spec.label ?? withServerLabel(disabledSteps.length > 0 ? `without ${disabledSteps.join(', ')}` : replication === undefined ? 'all' : periodsLabel(replication), kvServer);
    return [{ mechanism: spec.name, stage, disabledSteps, ...(replication === undefined ? {} : { replication }), ...withKv }];
  });
  const keyed = withProtectionKeys(variants, file.pkeys);
  const seen = new Set<string>();
  for (const variant of keyed) {
    const key = `${variant.mechanism}/${variant.stage}`;
    if (seen.has(key)) problems.push(`${path}: mechanisms: ${variant.mechanism} appears twice with stage "${variant.stage}" (give one a label)`);
    seen.add(key);
  }
  if (problems.length > 0) throw new CampaignError(problems);
  return keyed;
}

/** Every variant keyed (true), as it is (false), or both, the keyed one's stage marked "+pkeys". */
function withProtectionKeys(variants: readonly Variant[], pkeys: boolean | 'both' | undefined): Variant[] {
  if (pkeys === undefined || pkeys === false) return [...variants];
  if (pkeys === true) return variants.map((variant) => ({ ...variant, pkeys: true }));
  return variants.flatMap((variant) => [variant, { ...variant, stage: `${variant.stage}+pkeys`, pkeys: true }]);
}

/** The replay options an entry gives, or undefined when it gives none. */
function replaySettingsOf(entry: { checkpointMs?: number; ordering?: 'log' | 'deterministic' | 'none'; timingAdjustment?: boolean }): ReplaySettings | undefined {
  const { checkpointMs, ordering, timingAdjustment } = entry;
  if (checkpointMs === undefined && ordering === undefined && timingAdjustment === undefined) return undefined;
  return { ...(checkpointMs === undefined ? {} : { checkpointMs }), ...(ordering === undefined ? {} : { ordering }), ...(timingAdjustment === undefined ? {} : { timingAdjustment }) };
}

/** A replay-failover group's default stage name: its options with the defaults filled in. */
function replayStage(replay: ReplaySettings): string {
  return `${replay.checkpointMs ?? 100}ms ${replay.ordering ?? 'log'} ${replay.timingAdjustment === false ? 'unadjusted' : 'adjusted'}`;
}

/** The periods an entry sets, or undefined when it sets none. */
function replicationOfEntry(entry: { epochMs?: number; heartbeatMs?: number }): Variant['replication'] {
  if (entry.epochMs === undefined && entry.heartbeatMs === undefined) return undefined;
  return { ...(entry.epochMs === undefined ? {} : { epochMs: entry.epochMs }), ...(entry.heartbeatMs === undefined ? {} : { heartbeatMs: entry.heartbeatMs }) };
}

/** The server options an entry sets, or undefined when it sets none. */
function kvServerOfEntry(entry: { raceRate?: number; imbalance?: number }): KvServerSettings | undefined {
  if (entry.raceRate === undefined && entry.imbalance === undefined) return undefined;
  return { ...(entry.raceRate === undefined ? {} : { raceRate: entry.raceRate }), ...(entry.imbalance === undefined ? {} : { imbalance: entry.imbalance }) };
}

/** A stage name with the server options it sets: "1000ms deterministic adjusted, race 0, imbalance 1". */
function withServerLabel(stage: string, kvServer: KvServerSettings | undefined): string {
  if (kvServer === undefined) return stage;
  const parts = [kvServer.raceRate === undefined ? [] : [`race ${kvServer.raceRate}`], kvServer.imbalance === undefined ? [] : [`imbalance ${kvServer.imbalance}`]].flat();
  return stage === 'all' ? parts.join(', ') : [stage, ...parts].join(', ');
}

function periodsLabel(replication: NonNullable<Variant['replication']>): string {
  const parts = [replication.epochMs === undefined ? [] : [`epoch ${replication.epochMs} ms`], replication.heartbeatMs === undefined ? [] : [`heartbeat ${replication.heartbeatMs} ms`]].flat();
  return parts.join(', ');
}

function ablationVariants(name: 'microreset' | 'microreboot' | 'failover' | 'replay-failover'): Variant[] {
  return ablationStages(mechanismNamed(name)).map(({ stage, disabledSteps }) => ({ mechanism: name, stage, disabledSteps }));
}

/** The JSON Schema of campaign files, for editors. */
export function campaignJsonSchema(): unknown {
  return z.toJSONSchema(campaignSchema, { io: 'input' });
}
