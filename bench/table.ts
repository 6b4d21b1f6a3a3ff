/**
 * The one table the bench prints: a row per figure, a column per proxy with
 * the median and the min–max over runs, then the Portcullis ratios.
 */
import { ratioBases, type Figure } from './figures.js'
import type { Summary } from './stats.js'
import { proxyNames, type ProxyName } from './topology.js'

const headers: Record<ProxyName, string> = {
  portcullis: 'Portcullis',
  'portcullis-cluster': 'cluster',
  nginx: 'nginx',
  haproxy: 'HAProxy',
  naive: 'naive',
}
const ratioHeaders = { nginx: 'P/nginx', haproxy: 'P/HAProxy', naive: 'P/naive' } as const

/** Rounds for display: 3 significant digits, no exponent. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '–'
  const abs = Math.abs(n)
  if (abs >= 100) return String(Math.round(n))
  if (abs >= 10) return n.toFixed(1)
  return n.toFixed(abs >= 1 ? 2 : 3)
}

function cell(s: Summary | undefined): string {
  if (!s) return '–'
  return s.runs > 1 ? `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})` : formatNumber(s.median)
}

/** Renders the table as Markdown (readable in a terminal and pasteable into docs). */
export function renderTable(figures: readonly Figure[], columns: readonly ProxyName[] = proxyNames): string {
  const head = ['figure', 'unit', ...columns.map((c) => headers[c]), ...ratioBases.map((b) => ratioHeaders[b])]
  const rows = figures.map((f) => [
    f.label,
    f.unit,
    ...columns.map((c) => cell(f.summary[c])),
    ...ratioBases.map((b) => (f.ratios[b] === undefined ? '–' : formatNumber(f.ratios[b]))),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}
