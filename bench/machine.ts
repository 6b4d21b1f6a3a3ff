/**
 * Machine facts saved with every result, so a figure can be read against
 * what produced it: CPU, cores, kernel, load at the start (the 2 cores are
 * shared with whoever else is working), and the versions of everything
 * measured and measuring.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, release, totalmem } from 'node:os'

function firstLine(cmd: string, args: readonly string[]): string {
  try {
    // nginx -v and wrk -v write to stderr; wrk -v exits 1.
    const out = execFileSync('sh', ['-c', `${cmd} ${args.join(' ')} 2>&1 || true`], { encoding: 'utf8' })
    return out.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** The commit measured (all zeros outside a git checkout) and whether the tree had uncommitted changes. */
function gitState(cwd: string): { sha: string; isDirty: boolean } {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    const isDirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).trim() !== ''
    return { sha, isDirty }
  } catch {
    return { sha: '0'.repeat(40), isDirty: true }
  }
}

/** Collects the facts; `cwd` is the repository. */
export function machineFacts(cwd: string, fdHardLimit: number): Record<string, string | number | boolean> {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown'
  const git = gitState(cwd)
  return {
    cpuModel,
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    fdHardLimit,
    node: process.version,
    nginx: firstLine('nginx', ['-v']),
    // Version only: the banner goes on with a web address.
    haproxy: /HAProxy version (\S+)/.exec(firstLine('haproxy', ['-v']))?.[1] ?? 'unknown',
    openssl: firstLine('openssl', ['version']),
    wrk: firstLine('wrk', ['-v']),
    h2load: firstLine('h2load', ['--version']),
    curl: /^curl (\S+)/.exec(firstLine('curl', ['--version']))?.[1] ?? 'unknown',
    gitSha: git.sha,
    gitDirty: git.isDirty,
  }
}
