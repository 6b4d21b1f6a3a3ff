/**
 * `--workers <n|auto>`: how many data-plane processes to run. 1 (the default)
 * is the single-process gateway, with no primary and no IPC. "auto" is one
 * worker per core the process may use (`os.availableParallelism()`, which
 * honours CPU affinity), so a gateway pinned with taskset or a container's
 * cpuset does not oversubscribe.
 */

/** The largest count accepted: more workers than this is a typo, not a plan. */
export const MAX_WORKERS = 256

/** Parses the flag's value; `cores` is what "auto" means. Throws an Error naming the flag. */
export function parseWorkerCount(text: string, cores: number): number {
  if (text === 'auto') return Math.max(1, cores)
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new Error(`--workers: expected a number from 1 to ${MAX_WORKERS} or "auto", got ${JSON.stringify(text)}`)
  }
  return n
}
