/**
 * A partner's own (external) CA for revocation tests, run entirely by the
 * openssl CLI: `openssl ca -revoke` and `-gencrl` over the CA's index file,
 * and `openssl ocsp -index` as a real OCSP responder on a free port. Nothing
 * here uses Portcullis code, so the gateway is judged against an independent
 * implementation.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CaFiles, TestPki } from '../harness/pki.js'

function openssl(args: readonly string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** openssl ca's time format. */
function asnDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
}

/** Options for one CRL. */
export interface CrlOptions {
  /** Seconds until nextUpdate (default one day). */
  readonly seconds?: number
  /** Explicit lastUpdate / nextUpdate (for expired CRLs). */
  readonly lastUpdate?: Date
  readonly nextUpdate?: Date
  /** CRL extension lines (openssl config syntax, sections allowed after them) instead of authorityKeyIdentifier alone. */
  readonly extensions?: string
}

/** Revocation operations on a CA made by TestPki. */
export class PartnerCa {
  private readonly conf: string
  private readonly index: string
  private crlSeq = 0

  constructor(
    private readonly pki: TestPki,
    readonly ca: CaFiles,
  ) {
    const db = join(pki.dir, `${ca.name}.db`)
    this.index = join(db, 'index.txt')
    this.conf = join(pki.dir, `${ca.name}-revocation.cnf`)
    // TestPki makes the database of the CAs it creates; an intermediate made with leaf() needs one before it signs.
    mkdirSync(db, { recursive: true })
    if (!existsSync(this.index)) writeFileSync(this.index, '')
    writeFileSync(join(db, 'crlnumber'), '1000\n')
    writeFileSync(
      this.conf,
      [
        '[ca]',
        'default_ca=c',
        '[c]',
        `database=${this.index}`,
        `crlnumber=${join(pki.dir, `${ca.name}.db`, 'crlnumber')}`,
        'default_md=sha256',
        'unique_subject=no',
        'crl_extensions=crl_ext',
        '[crl_ext]',
        'authorityKeyIdentifier=keyid',
        '',
      ].join('\n'),
    )
  }

  /** The index file openssl keeps (and the OCSP responder reads). */
  get indexFile(): string {
    return this.index
  }

  /** `openssl ca -revoke` with a reason. */
  revoke(certFile: string, reason = 'keyCompromise'): void {
    openssl(['ca', '-config', this.conf, '-cert', this.ca.cert, '-keyfile', this.ca.key, '-revoke', certFile, '-crl_reason', reason], this.pki.dir)
  }

  /**
   * Appends `count` revoked entries with made-up serials straight to the
   * index (what `openssl ca -revoke` writes, without a certificate each), to
   * make large CRLs.
   */
  addRevokedSerials(count: number): void {
    const expiry = asnDate(new Date(Date.now() + 365 * 86_400_000)).slice(2)
    const revokedAt = asnDate(new Date(Date.now() - 86_400_000)).slice(2)
    const lines: string[] = []
    for (let i = 0; i < count; i++) {
      const serial = (0x10_0000_0000 + i).toString(16).toUpperCase().padStart(16, '0')
      lines.push(`R\t${expiry}\t${revokedAt},superseded\t${serial}\tunknown\t/CN=bulk-${i}`)
    }
    appendFileSync(this.index, `${lines.join('\n')}\n`)
  }

  /** A CRL from `openssl ca -gencrl` (DER), signed by this CA's key. */
  crl(options: CrlOptions = {}): Buffer {
    const pemFile = join(this.pki.dir, `${this.ca.name}-${++this.crlSeq}.crl.pem`)
    const when = options.lastUpdate || options.nextUpdate
      ? ['-crl_lastupdate', asnDate(options.lastUpdate ?? new Date()), '-crl_nextupdate', asnDate(options.nextUpdate ?? new Date(Date.now() + 86_400_000))]
      : ['-crlsec', String(options.seconds ?? 86_400)]
    let conf = this.conf
    if (options.extensions !== undefined) {
      conf = `${pemFile}.cnf`
      writeFileSync(conf, `${readFileSync(this.conf, 'utf8')}[crl_extra]\n${options.extensions}\n`)
    }
    const exts = options.extensions !== undefined ? ['-crlexts', 'crl_extra'] : []
    openssl(['ca', '-config', conf, '-cert', this.ca.cert, '-keyfile', this.ca.key, '-gencrl', ...when, ...exts, '-out', pemFile], this.pki.dir)
    const derFile = `${pemFile}.der`
    openssl(['crl', '-in', pemFile, '-outform', 'DER', '-out', derFile], this.pki.dir)
    return readFileSync(derFile)
  }
}

/** A running `openssl ocsp` responder. */
export interface OcspResponder {
  readonly url: string
  /**
   * Restarts it on the same port, so it reads the index again. openssl 3.0
   * re-reads a changed index only after answering the next request (and by
   * whole-second mtime), so a restart is the deterministic way.
   */
  restart(): Promise<void>
  close(): Promise<void>
}

function spawnResponder(partner: PartnerCa, port: number, minutes: number): { child: ChildProcess; port: Promise<number> } {
  const args = ['ocsp', '-index', partner.indexFile, '-port', String(port), '-rsigner', partner.ca.cert, '-rkey', partner.ca.key, '-CA', partner.ca.cert, '-ignore_err']
  if (minutes > 0) args.push('-nmin', String(minutes))
  const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const bound = new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${out}`)), 10_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = /ACCEPT .*:(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`openssl ocsp exited (${code}): ${out}`)))
  })
  return { child, port: bound }
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill()
  })
}

/**
 * Starts `openssl ocsp -index` on a free port (`-port 0`; openssl prints the
 * one it bound), signing with the CA itself. Responses are valid for
 * `minutes` (nextUpdate), or have no nextUpdate when 0.
 */
export async function startOcspResponder(partner: PartnerCa, minutes = 5): Promise<OcspResponder> {
  let current = spawnResponder(partner, 0, minutes)
  const port = await current.port
  return {
    url: `http://127.0.0.1:${port}/`,
    restart: async () => {
      await stop(current.child)
      current = spawnResponder(partner, port, minutes)
      await current.port
    },
    close: () => stop(current.child),
  }
}
