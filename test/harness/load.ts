/**
 * A steady load for "nothing may fail while X changes" tests: `workers`
 * loops send GET requests through one undici dispatcher until stopped, and
 * every non-200 answer or failed request is kept for the assertion.
 */
import { request, type Dispatcher } from 'undici'

export interface LoadResult {
  /** Requests answered 200. */
  readonly ok: number
  /** One entry per failed request: "status N" or the error message. */
  readonly failures: readonly string[]
}

/** Starts the loops at once; `stop()` lets each finish its request and reports. */
export function startLoad(opts: { readonly url: string; readonly dispatcher: Dispatcher; readonly workers: number }): { stop(): Promise<LoadResult> } {
  let ok = 0
  const failures: string[] = []
  let running = true
  const worker = async () => {
    while (running) {
      try {
        const res = await request(opts.url, { dispatcher: opts.dispatcher })
        await res.body.text()
        if (res.statusCode === 200) ok++
        else failures.push(`status ${res.statusCode}`)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }
  const workers = Array.from({ length: opts.workers }, worker)
  return {
    async stop() {
      running = false
      await Promise.all(workers)
      return { ok, failures }
    },
  }
}
