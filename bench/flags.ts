/**
 * `npm run bench -- [flags]`. Parsed strictly: a mistyped flag stops the run
 * before minutes of measuring, not after.
 */
import { parseArgs } from 'node:util'

/** The scenarios, in the order a run measures them (`--scenario` picks). */
export const scenarioNames = ['memory-idle', 'keepalive-h1', 'keepalive-h2', 'open-loop', 'handshakes', 'pipeline', 'streaming', 'idle-connections'] as const
export type ScenarioName = (typeof scenarioNames)[number]

/** What `--quick` measures: one figure of each kind the targets name, briefly. */
export const quickScenarios: readonly ScenarioName[] = ['memory-idle', 'keepalive-h1', 'handshakes', 'pipeline']

export interface BenchFlags {
  readonly isQuick: boolean
  readonly isCheck: boolean
  readonly runs: number
  readonly scenarios: readonly ScenarioName[]
  /** Free text saved in the result: what changed since the last run. */
  readonly note: string | undefined
}

export const usage = `usage: npm run bench -- [--quick] [--check] [--runs N] [--scenario NAME]... [--note TEXT]
  --quick          a subset with short durations (under 2 minutes)
  --check          exit 1 when a Portcullis ratio is >15% worse than the last result of the same mode
  --runs N         runs per figure (default 3; each figure is min/median/max over them)
  --scenario NAME  only this scenario (repeatable): ${scenarioNames.join(', ')}
  --note TEXT      saved in the result file, e.g. what an optimisation changed`

/** Parses flags; throws with the usage text on anything unknown. */
export function parseBenchFlags(args: readonly string[]): BenchFlags {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...args],
      options: {
        quick: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        runs: { type: 'string', default: '3' },
        scenario: { type: 'string', multiple: true },
        note: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }))
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`)
  }
  const runs = Number(values.runs)
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs: expected 1-20, got ${values.runs}\n${usage}`)
  for (const s of values.scenario ?? []) {
    if (!(scenarioNames as readonly string[]).includes(s)) throw new Error(`--scenario: unknown "${s}"\n${usage}`)
  }
  const picked = values.scenario as ScenarioName[] | undefined
  const scenarios = picked?.length ? scenarioNames.filter((s) => picked.includes(s)) : values.quick ? quickScenarios : scenarioNames
  return { isQuick: values.quick, isCheck: values.check, runs, scenarios, note: values.note }
}
