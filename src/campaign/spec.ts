/**
 * Campaign files: YAML validated by a zod schema, which also yields a JSON Schema for editors.
 * Every problem is reported with the file, the key and what was expected.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { configurationNames } from '../guests/configurations.js';
import { faultTypes } from '../faults/fault.js';
import { NOMINAL_HOST } from '../recovery/cost-model.js';
import { ablationStages, mechanismNamed, unknownSteps } from '../recovery/mechanisms.js';

const positiveInteger = z.number().int().positive();

const mechanismEntry = z.union([
  z.enum(['none', 'microreset', 'microreboot']),
  z
    .object({
      name: z.enum(['none', 'microreset', 'microreboot']),
      /** repair steps switched off */
      disable: z.array(z.string()).optional(),
      /** run every cumulative stage of the mechanism's repairs, from none to all */
      ablation: z.boolean().optional(),
      /** the group's stage name in reports (default: "all", or derived from `disable`) */
      label: z.string().min(1).optional(),
    })
    .strict(),
]);

export const campaignSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-"'),
    description: z.string().optional(),
    seed: z.number().int().min(0).max(2 ** 32 - 1),
    configurations: z.array(z.enum(configurationNames() as [string, ...string[]])).min(1),
    /** trials per fault type; each mechanism gets the same faults */
    faults: z.partialRecord(z.enum(faultTypes), positiveInteger).refine((faults) => Object.keys(faults).length > 0, 'at least one fault type'),
    mechanisms: z.array(mechanismEntry).min(1),
    /** simulated run length (default: each configuration's own) */
    runLengthMs: z.number().int().min(10).max(60_000).optional(),
    /** the host the recovery cost model prices */
    host: z.object({ cpus: positiveInteger.max(1024), memoryGiB: positiveInteger.max(65_536) }).strict().default(NOMINAL_HOST),
    strictNetBench: z.boolean().default(false),
  })
  .strict();

export type CampaignFile = z.infer<typeof campaignSchema>;

/** One mechanism variant of a campaign: a group of trials in the reports. */
export interface Variant {
  readonly mechanism: 'none' | 'microreset' | 'microreboot';
  readonly stage: string;
  readonly disabledSteps: readonly string[];
}

export interface Campaign extends CampaignFile {
  readonly variants: readonly Variant[];
}

export class CampaignError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'CampaignError';
  }
}

export function loadCampaign(path: string): Campaign {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CampaignError([`${path}: cannot read the campaign file`]);
  }
  return parseCampaign(text, path);
}

export function parseCampaign(text: string, path: string): Campaign {
  const document = parseDocument(text, { prettyErrors: false });
  if (document.errors.length > 0) throw new CampaignError(document.errors.map((error) => `${path}: YAML: ${error.message.split('\n')[0]}`));
  const parsed = campaignSchema.safeParse(document.toJS());
  if (!parsed.success) throw new CampaignError(parsed.error.issues.map((issue) => `${path}: ${keyOf(issue.path)}: ${describeIssue(issue)}`));
  const variants = expandVariants(parsed.data, path);
  return { ...parsed.data, variants };
}

function keyOf(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
  return issue.message;
}

function expandVariants(file: CampaignFile, path: string): Variant[] {
  const problems: string[] = [];
  const variants = file.mechanisms.flatMap((entry, index) => {
    const spec = typeof entry === 'string' ? { name: entry } : entry;
    const where = `${path}: mechanisms.${index}`;
    if (spec.name === 'none') {
      if (spec.disable !== undefined || spec.ablation === true) problems.push(`${where}: mechanism none has no steps to disable or ablate`);
      return [{ mechanism: 'none' as const, stage: spec.label ?? 'all', disabledSteps: [] }];
    }
    const mechanism = mechanismNamed(spec.name);
    const unknown = unknownSteps(mechanism, spec.disable ?? []);
    if (unknown.length > 0) problems.push(`${where}.disable: ${spec.name} has no step ${unknown.map((name) => `"${name}"`).join(', ')}`);
    if (spec.ablation === true) return ablationVariants(spec.name);
    const disabledSteps = spec.disable ?? [];
    const stage = spec.label ?? (disabledSteps.length === 0 ? 'all' : `without ${disabledSteps.join(', ')}`);
    return [{ mechanism: spec.name, stage, disabledSteps }];
  });
  const seen = new Set<string>();
  for (const variant of variants) {
    const key = `${variant.mechanism}/${variant.stage}`;
    if (seen.has(key)) problems.push(`${path}: mechanisms: ${variant.mechanism} appears twice with stage "${variant.stage}" (give one a label)`);
    seen.add(key);
  }
  if (problems.length > 0) throw new CampaignError(problems);
  return variants;
}

function ablationVariants(name: 'microreset' | 'microreboot'): Variant[] {
  return ablationStages(mechanismNamed(name)).map(({ stage, disabledSteps }) => ({ mechanism: name, stage, disabledSteps }));
}

/** The JSON Schema of campaign files, for editors. */
export function campaignJsonSchema(): unknown {
  return z.toJSONSchema(campaignSchema, { io: 'input' });
}
