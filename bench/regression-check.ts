/**
 * `--check`: the regression guard. A Portcullis ratio (Portcullis ÷ nginx,
 * HAProxy or the naive floor) fails when it is more than `tolerance` worse
 * than in the baseline — the last recorded result of the same mode. Ratios,
 * not absolute figures, because both proxies ran on the same machine in the
 * same minute: a busier machine moves both.
 *
 * "Worse" follows the figure's direction: for requests/s a falling ratio,
 * for latency, CPU per request or memory a rising one. So the compared
 * quantity is the ratio itself when higher is better, and its inverse when
 * lower is.
 */
import { ratioBases, type Figure, type RatioBase } from './figures.js'

export interface Regression {
  readonly key: string
  readonly label: string
  readonly base: RatioBase
  readonly baseline: number
  readonly current: number
  /** Relative loss of "goodness", e.g. 0.2 = 20% worse. */
  readonly loss: number
}

/** Figures and ratios present in both results whose goodness fell by more than `tolerance`. */
export function findRegressions(baseline: readonly Figure[], current: readonly Figure[], tolerance = 0.15): Regression[] {
  const before = new Map(baseline.map((f) => [f.key, f]))
  const out: Regression[] = []
  for (const figure of current) {
    const old = before.get(figure.key)
    if (!old) continue
    for (const base of ratioBases) {
      const was = old.ratios[base]
      const now = figure.ratios[base]
      if (was === undefined || now === undefined || !(was > 0) || !(now > 0)) continue
      const goodness = (r: number) => (figure.isHigherBetter ? r : 1 / r)
      const loss = 1 - goodness(now) / goodness(was)
      if (loss > tolerance) out.push({ key: figure.key, label: figure.label, base, baseline: was, current: now, loss })
    }
  }
  return out
}
