/**
 * The shape of a bench result: figures (one measured quantity of one
 * scenario), each with its samples per proxy, summarised over runs, and the
 * Portcullis ratios the issue asks for. Written as JSON under bench/results/
 * so runs can be compared over time; `version` changes when the shape does.
 */
import { summarize, type Summary } from './stats.js'
import type { ProxyName } from './topology.js'

/** The proxies Portcullis is divided by, in the table's order. */
export const ratioBases = ['nginx', 'haproxy', 'naive'] as const
export type RatioBase = (typeof ratioBases)[number]

/** One figure's definition. `key` is stable across runs: the regression check matches on it. */
export interface FigureSpec {
  readonly key: string
  readonly scenario: string
  readonly label: string
  readonly unit: string
  readonly isHigherBetter: boolean
  /** False for figures near zero for some proxies (RSS growth while streaming): a ratio would be noise. */
  readonly hasRatios?: boolean
}

export interface Figure extends FigureSpec {
  readonly samples: Partial<Record<ProxyName, number[]>>
  readonly summary: Partial<Record<ProxyName, Summary>>
  /** Portcullis (single process) median ÷ the other's median. */
  readonly ratios: Partial<Record<RatioBase, number>>
}

export interface ResultFile {
  readonly version: 1
  readonly startedAt: string
  readonly mode: 'quick' | 'full'
  readonly note: string | undefined
  readonly machine: Readonly<Record<string, string | number | boolean>>
  readonly settings: Readonly<Record<string, string | number | boolean>>
  readonly notes: readonly string[]
  readonly figures: readonly Figure[]
}

/** Collects samples as the runs go, then summarises them into figures. */
export class FigureSet {
  private readonly specs = new Map<string, FigureSpec>()
  private readonly samples = new Map<string, Partial<Record<ProxyName, number[]>>>()

  /** Adds one run's value of `spec` for `proxy` (NaN: the run failed). */
  add(spec: FigureSpec, proxy: ProxyName, value: number): void {
    this.specs.set(spec.key, spec)
    const byProxy = this.samples.get(spec.key) ?? {}
    ;(byProxy[proxy] ??= []).push(value)
    this.samples.set(spec.key, byProxy)
  }

  /** The summaries and ratios, in the order figures were first added. */
  figures(): Figure[] {
    return [...this.specs.values()].map((spec) => {
      const samples = this.samples.get(spec.key) ?? {}
      const summary: Partial<Record<ProxyName, Summary>> = {}
      for (const [proxy, values] of Object.entries(samples) as [ProxyName, number[]][]) {
        const s = summarize(values)
        if (s) summary[proxy] = s
      }
      const ratios: Partial<Record<RatioBase, number>> = {}
      const mine = spec.hasRatios === false ? undefined : summary.portcullis?.median
      for (const base of ratioBases) {
        const theirs = summary[base]?.median
        if (mine !== undefined && theirs !== undefined && theirs !== 0) ratios[base] = mine / theirs
      }
      return { ...spec, samples, summary, ratios }
    })
  }
}
