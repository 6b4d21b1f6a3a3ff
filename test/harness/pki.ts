/**
 * Test certificates made by the `openssl` CLI, never by Portcullis's own code,
 * so one bug on both sides cannot cancel out. `openssl ca` is used for signing
 * because it can set past and future validity dates (OpenSSL 3.0's `x509 -req`
 * cannot).
 *
 * A PKI is made once per test file (a few hundred ms) in a temp directory.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface CertFiles {
  readonly cert: string
  readonly key: string
  /** Leaf followed by the intermediates the holder presents. */
  readonly chain: string
}

export interface CaFiles {
  readonly cert: string
  readonly key: string
  readonly name: string
}

export interface IssueOptions {
  /** Subject, e.g. "/CN=partner-a/O=Acme". */
  readonly subject: string
  /** subjectAltName value, e.g. "DNS:localhost,IP:127.0.0.1,URI:spiffe://td/x". */
  readonly san?: string
  /** extendedKeyUsage value. Default: clientAuth for clients, serverAuth for servers. */
  readonly eku?: string
  /** keyUsage value. Default: critical,digitalSignature. */
  readonly keyUsage?: string
  /** Validity; openssl ca date format YYYYMMDDHHMMSSZ. Default: now-1h .. now+30d. */
  readonly notBefore?: Date
  readonly notAfter?: Date
  /** 'ec' (P-256, default) or 'rsa' (2048). */
  readonly keyType?: 'ec' | 'rsa'
  /** Extra lines appended to the extension section. */
  readonly extraExtensions?: string
}

function run(args: readonly string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function asnDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
}

/** A throwaway PKI directory with helpers to make CAs and leaves. */
export class TestPki {
  readonly dir: string
  private seq = 0

  constructor(dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'portcullis-pki-'))
  }

  private newKey(path: string, keyType: 'ec' | 'rsa' = 'ec'): void {
    if (keyType === 'rsa') run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path], this.dir)
    else run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], this.dir)
  }

  /** A self-signed root CA. */
  root(name: string): CaFiles {
    const key = join(this.dir, `${name}.key`)
    const cert = join(this.dir, `${name}.crt`)
    this.newKey(key)
    const ext = join(this.dir, `${name}.ext`)
    writeFileSync(
      ext,
      '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
    )
    run(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}/O=Portcullis Test`, '-days', '3650', '-config', ext, '-extensions', 'v3', '-out', cert], this.dir)
    this.initDb(name)
    return { cert, key, name }
  }

  /** An intermediate CA signed by `parent`. */
  intermediate(name: string, parent: CaFiles, pathLen = 0): CaFiles {
    const key = join(this.dir, `${name}.key`)
    this.newKey(key)
    const cert = this.sign(parent, key, {
      subject: `/CN=${name}/O=Portcullis Test`,
      eku: '',
      keyUsage: 'critical,keyCertSign,cRLSign',
      extraExtensions: `basicConstraints=critical,CA:TRUE,pathlen:${pathLen}\n`,
    }, `${name}.crt`)
    this.initDb(name)
    return { cert, key, name }
  }

  /** A leaf for a client (EKU clientAuth unless overridden). */
  client(name: string, issuer: CaFiles, opts: Partial<IssueOptions> = {}, chainWith: readonly CaFiles[] = []): CertFiles {
    return this.leaf(name, issuer, { subject: `/CN=${name}/O=Portcullis Test`, eku: 'clientAuth', ...opts }, chainWith)
  }

  /** A leaf for a server (EKU serverAuth, SAN localhost and loopback unless overridden). */
  server(name: string, issuer: CaFiles, opts: Partial<IssueOptions> = {}, chainWith: readonly CaFiles[] = []): CertFiles {
    return this.leaf(
      name,
      issuer,
      { subject: `/CN=${name}`, eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1,IP:::1', ...opts },
      chainWith,
    )
  }

  /** A leaf with a fresh key, plus `chain` = leaf + the given intermediates. */
  leaf(name: string, issuer: CaFiles, opts: IssueOptions, chainWith: readonly CaFiles[] = []): CertFiles {
    const key = join(this.dir, `${name}.key`)
    this.newKey(key, opts.keyType)
    const cert = this.sign(issuer, key, opts, `${name}.crt`)
    const chain = join(this.dir, `${name}.chain.pem`)
    writeFileSync(chain, [cert, ...chainWith.map((c) => c.cert)].map((p) => readFileSync(p, 'utf8')).join(''))
    return { cert, key, chain }
  }

  private initDb(name: string): void {
    const db = join(this.dir, `${name}.db`)
    mkdirSync(db, { recursive: true })
    writeFileSync(join(db, 'index.txt'), '')
  }

  private sign(ca: CaFiles, key: string, opts: IssueOptions, outName: string): string {
    const n = ++this.seq
    const csr = join(this.dir, `req-${n}.csr`)
    run(['req', '-new', '-key', key, '-subj', opts.subject, '-out', csr], this.dir)
    const db = join(this.dir, `${ca.name}.db`)
    const conf = join(this.dir, `ca-${n}.cnf`)
    const ext = [
      opts.extraExtensions?.includes('basicConstraints') ? '' : 'basicConstraints=critical,CA:FALSE',
      `keyUsage=${opts.keyUsage ?? 'critical,digitalSignature'}`,
      opts.eku ? `extendedKeyUsage=${opts.eku}` : '',
      opts.san ? `subjectAltName=${opts.san}` : '',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      opts.extraExtensions ?? '',
    ].filter(Boolean)
    writeFileSync(
      conf,
      [
        '[ca]',
        'default_ca=c',
        '[c]',
        `database=${join(db, 'index.txt')}`,
        `new_certs_dir=${db}`,
        'rand_serial=yes',
        'default_md=sha256',
        'policy=p',
        'unique_subject=no',
        'copy_extensions=none',
        '[p]',
        'commonName=supplied',
        'organizationName=optional',
        'organizationalUnitName=optional',
        'countryName=optional',
        '[ext]',
        ...ext,
        '',
      ].join('\n'),
    )
    const notBefore = opts.notBefore ?? new Date(Date.now() - 3_600_000)
    const notAfter = opts.notAfter ?? new Date(Date.now() + 30 * 86_400_000)
    const out = join(this.dir, outName)
    run(
      ['ca', '-batch', '-notext', '-config', conf, '-extensions', 'ext', '-cert', ca.cert, '-keyfile', ca.key,
        '-startdate', asnDate(notBefore), '-enddate', asnDate(notAfter), '-in', csr, '-out', out],
      this.dir,
    )
    return out
  }
}

/** Reads a file as text; shorthand for tests building inline PEM config. */
export function pem(path: string): string {
  return readFileSync(path, 'utf8')
}
