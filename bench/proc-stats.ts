/**
 * What a process tree costs, read from /proc: resident memory (VmRSS) and
 * CPU time (utime + stime) summed over a process and its descendants, so
 * nginx (master + worker), Node's cluster (primary + workers) and single
 * processes are measured the same way. Linux only, like the bench.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const ticksPerSecond = 100

function readStat(pid: number): { ppid: number; cpuTicks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) }
  } catch {
    return undefined // exited between listing and reading
  }
}

/** `root` and every live descendant. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const stat = readStat(pid)
    if (!stat) continue
    const list = children.get(stat.ppid) ?? []
    list.push(pid)
    children.set(stat.ppid, list)
  }
  const out: number[] = []
  const walk = (pid: number) => {
    out.push(pid)
    for (const c of children.get(pid) ?? []) walk(c)
  }
  walk(root)
  return out
}

/** Resident set size of one process in bytes, or 0 once it has exited. */
export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Summed RSS of a tree, in bytes. */
export function treeRssBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + rssBytes(pid), 0)
}

/** Summed CPU time of a tree, in microseconds (10 ms resolution). */
export function treeCpuMicros(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + ((readStat(pid)?.cpuTicks ?? 0) * 1_000_000) / ticksPerSecond, 0)
}

/**
 * Samples a tree's RSS every `everyMs` until stopped; reports the first and
 * the highest sample. The tree is re-listed at start only: workers forked
 * later are not counted (the bench starts sampling after the proxy is up).
 */
export function sampleRss(root: number, everyMs = 100): { stop(): { firstBytes: number; peakBytes: number } } {
  const pids = processTree(root)
  const firstBytes = treeRssBytes(pids)
  let peakBytes = firstBytes
  const timer = setInterval(() => {
    peakBytes = Math.max(peakBytes, treeRssBytes(pids))
  }, everyMs)
  return {
    stop() {
      clearInterval(timer)
      peakBytes = Math.max(peakBytes, treeRssBytes(pids))
      return { firstBytes, peakBytes }
    },
  }
}

/** Busy and total ticks of one CPU from /proc/stat, for its utilisation between two reads. */
export function cpuTicks(cpu: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  const values = (line ?? '').trim().split(/\s+/).slice(1).map(Number)
  const total = values.reduce((a, b) => a + b, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0) // idle + iowait
  return { busy: total - idle, total }
}
