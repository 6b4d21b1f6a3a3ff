/**
 * A small pool of CRL worker threads (crl-worker.ts), one per process
 * (compile.ts carries it from one config version to the next), shared by
 * every listener.
 *
 * Decisions:
 * - Workers start on the first job and stop after `idleMs` without one: a
 *   gateway that checks no external CA never holds a thread, and one that
 *   refreshes a CRL a day holds one only around the refresh.
 * - Workers are unref'd: they never keep the process alive on their own.
 * - A job that runs past `jobTimeoutMs` terminates its worker (a hostile CRL
 *   cannot hold a thread forever); a crashed worker fails its job only, and
 *   the next job gets a new worker.
 * - Input bytes are transferred to the worker, not copied (unless they are a
 *   view into a larger buffer): callers must not use them afterwards.
 */
import type { KeyObject } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import type { SignatureCheck } from '../signature.js'
import type { CrlData, CrlJob, CrlReply, SignedPart } from './crl-worker.js'

/** Sizing of a pool. */
export interface CrlParserPoolOptions {
  /** Threads at most. Default 1: CRL parsing is rare and a second core serves connections. */
  readonly size?: number
  /** Idle time before a thread stops, ms. Default 30 s. */
  readonly idleMs?: number
  /** Longest a job may run, ms. Default 60 s. */
  readonly jobTimeoutMs?: number
}

type JobInput = { kind: 'parse'; bytes: Uint8Array; key: KeyObject | undefined } | { kind: 'verify'; signed: SignedPart; key: KeyObject }

interface Queued {
  readonly input: JobInput
  readonly resolve: (reply: CrlReply) => void
  readonly reject: (err: Error) => void
}

interface Slot {
  readonly worker: Worker
  job: Queued | undefined
  timer: NodeJS.Timeout | undefined
}

/**
 * The worker script: the compiled `.js` beside this file, or, when running
 * from TypeScript sources under tsx (tests, `node --import tsx`), the `.ts`
 * through tsx's loader, which worker threads do not inherit in Node 20.
 */
function startWorker(): Worker {
  const isSource = import.meta.url.endsWith('.ts')
  const url = new URL(isSource ? './crl-worker.ts' : './crl-worker.js', import.meta.url)
  if (!isSource) return new Worker(url)
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(boot, { eval: true })
}

/** Parses and verifies CRLs on worker threads. */
export class CrlParserPool {
  private readonly slots = new Set<Slot>()
  private readonly queue: Queued[] = []
  private nextId = 1
  private readonly size: number
  private readonly idleMs: number
  private readonly jobTimeoutMs: number

  constructor(options: CrlParserPoolOptions = {}) {
    this.size = options.size ?? 1
    this.idleMs = options.idleMs ?? 30_000
    this.jobTimeoutMs = options.jobTimeoutMs ?? 60_000
  }

  /**
   * Parses the CRLs in `bytes` (PEM or DER). With `key`, each signature is
   * checked against it and no signed part comes back; without, the signed
   * part comes back for a later {@link verify}. Rejects when malformed.
   */
  async parse(bytes: Uint8Array, key?: KeyObject): Promise<CrlData[]> {
    // A view into a larger buffer (Node's small-Buffer pool among them) is copied: only a whole buffer can be transferred.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
    const reply = await this.submit({ kind: 'parse', bytes: own, key })
    if (!reply.ok) throw new Error(reply.error)
    if (!('crls' in reply)) throw new Error('unexpected worker reply')
    return [...reply.crls]
  }

  /** Whether `signed` carries a valid signature by `key`. */
  async verify(signed: SignedPart, key: KeyObject): Promise<SignatureCheck> {
    const reply = await this.submit({ kind: 'verify', signed, key })
    if (!reply.ok) throw new Error(reply.error)
    if (!('signatureCheck' in reply)) throw new Error('unexpected worker reply')
    return reply.signatureCheck
  }

  /** Stops every thread; queued and running jobs fail. */
  async close(): Promise<void> {
    for (const q of this.queue.splice(0)) q.reject(new Error('CRL parser pool closed'))
    await Promise.all([...this.slots].map((slot) => this.retire(slot, new Error('CRL parser pool closed'))))
  }

  private submit(input: JobInput): Promise<CrlReply> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject })
      this.dispatch()
    })
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = [...this.slots].find((s) => s.job === undefined)
      if (!slot && this.slots.size < this.size) slot = this.spawn()
      if (!slot) return
      this.begin(slot, this.queue.shift()!)
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(), job: undefined, timer: undefined }
    slot.worker.unref()
    slot.worker.on('message', (reply: CrlReply) => this.finish(slot, reply))
    slot.worker.on('error', (err) => void this.retire(slot, err))
    slot.worker.on('exit', (code) => void this.retire(slot, new Error(`CRL worker exited with code ${code}`)))
    this.slots.add(slot)
    return slot
  }

  private begin(slot: Slot, job: Queued): void {
    clearTimeout(slot.timer)
    slot.job = job
    slot.timer = setTimeout(() => void this.retire(slot, new Error(`CRL worker job took longer than ${this.jobTimeoutMs} ms`)), this.jobTimeoutMs)
    slot.timer.unref()
    const id = this.nextId++
    const message: CrlJob = { id, ...job.input }
    const transfer = job.input.kind === 'parse' ? [job.input.bytes.buffer as ArrayBuffer] : []
    slot.worker.postMessage(message, transfer)
  }

  private finish(slot: Slot, reply: CrlReply): void {
    const job = slot.job
    slot.job = undefined
    clearTimeout(slot.timer)
    job?.resolve(reply)
    if (this.queue.length > 0) {
      this.dispatch()
      return
    }
    slot.timer = setTimeout(() => void this.retire(slot, undefined), this.idleMs)
    slot.timer.unref()
  }

  /** Removes a thread; its running job (if any) fails with `reason`. */
  private async retire(slot: Slot, reason: Error | undefined): Promise<void> {
    if (!this.slots.delete(slot)) return
    clearTimeout(slot.timer)
    const job = slot.job
    slot.job = undefined
    if (job) job.reject(reason ?? new Error('CRL worker stopped'))
    await slot.worker.terminate()
    this.dispatch()
  }
}
