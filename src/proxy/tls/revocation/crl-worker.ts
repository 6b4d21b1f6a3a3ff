/**
 * The CRL worker thread (started by crl-parser-pool.ts): parses CRLs and
 * checks their signatures off the event loop. A 100k-entry CRL is ~4 MB of
 * DER and ~100 ms of parsing; in the main thread that would stall every
 * connection for as long.
 *
 * Replies carry only plain data: the serial table, dates and reasons as
 * typed arrays whose buffers are transferred, not copied.
 */
import type { KeyObject } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { checkSignature, type SignatureCheck } from '../signature.js'
import { crlDersOf, parseCrl, type ParsedCrl } from './crl-der.js'

/** The signed part of a CRL, kept to check it later against an issuer not known when it was parsed (CRL files). */
export interface SignedPart {
  readonly tbs: Uint8Array
  readonly signatureAlgorithm: { readonly oid: string; readonly params: Uint8Array | undefined }
  readonly signature: Uint8Array
}

/** A parsed CRL as it crosses back: checked against `key` when the job gave one, else with its signed part. */
export type CrlData = Omit<ParsedCrl, 'tbs' | 'signatureAlgorithm' | 'signature'> & {
  /** Set when the job gave a key. */
  readonly signatureCheck: SignatureCheck | undefined
  /** Set when the job gave no key. */
  readonly signed: SignedPart | undefined
}

/** What the pool asks. */
export type CrlJob =
  | { readonly id: number; readonly kind: 'parse'; readonly bytes: Uint8Array; readonly key: KeyObject | undefined }
  | { readonly id: number; readonly kind: 'verify'; readonly signed: SignedPart; readonly key: KeyObject }

/** What the worker answers. */
export type CrlReply =
  | { readonly id: number; readonly ok: true; readonly crls: readonly CrlData[] }
  | { readonly id: number; readonly ok: true; readonly signatureCheck: SignatureCheck }
  | { readonly id: number; readonly ok: false; readonly error: string }

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

function verify(signed: SignedPart, key: KeyObject): SignatureCheck {
  const { params } = signed.signatureAlgorithm
  return checkSignature(
    {
      tbs: asBuffer(signed.tbs),
      signatureAlgorithm: { oid: signed.signatureAlgorithm.oid, params: params ? asBuffer(params) : undefined },
      signature: asBuffer(signed.signature),
    },
    key,
  )
}

function run(job: CrlJob): { reply: CrlReply; transfer: ArrayBuffer[] } {
  if (job.kind === 'verify') return { reply: { id: job.id, ok: true, signatureCheck: verify(job.signed, job.key) }, transfer: [] }
  const transfer: ArrayBuffer[] = []
  const crls = crlDersOf(asBuffer(job.bytes)).map((der): CrlData => {
    const { tbs, signatureAlgorithm, signature, ...rest } = parseCrl(der)
    transfer.push(rest.keys.buffer as ArrayBuffer, rest.revokedAt.buffer as ArrayBuffer, rest.reasons.buffer as ArrayBuffer)
    if (job.key) return { ...rest, signatureCheck: checkSignature({ tbs, signatureAlgorithm, signature }, job.key), signed: undefined }
    // Copies: the parts are views into the whole DER, which would otherwise be cloned whole.
    const signed = { tbs: new Uint8Array(tbs), signatureAlgorithm: { oid: signatureAlgorithm.oid, params: signatureAlgorithm.params && new Uint8Array(signatureAlgorithm.params) }, signature: new Uint8Array(signature) }
    transfer.push(signed.tbs.buffer)
    return { ...rest, signatureCheck: undefined, signed }
  })
  return { reply: { id: job.id, ok: true, crls }, transfer }
}

parentPort?.on('message', (job: CrlJob) => {
  let out: { reply: CrlReply; transfer: ArrayBuffer[] }
  try {
    out = run(job)
  } catch (err) {
    out = { reply: { id: job.id, ok: false, error: (err as Error).message }, transfer: [] }
  }
  parentPort!.postMessage(out.reply, out.transfer)
})
