/**
 * Config problems, reported at file:line:col with the schema path, e.g.
 *   gateway.yaml:5:15 listeners.0.tls.clientAuth.mode: Invalid option: expected one of ...
 * Every stage that can reject a config (load, validate, check, compile)
 * reports through these, so the operator sees one format.
 */

/** One problem in a config, located by its path in the document. */
export interface ConfigIssue {
  /** Path of keys and indexes from the document root. */
  readonly path: readonly (string | number)[]
  readonly message: string
  /** Filled in by the loader from the YAML node at `path` (1-based). */
  readonly file?: string
  readonly line?: number
  readonly col?: number
}

/** Thrown by check and compile steps; the loader adds positions before reporting. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
  }
}

/** "file:line:col path: message", dropping the parts that are unknown. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.file ? `${issue.file}${issue.line ? `:${issue.line}:${issue.col ?? 1}` : ''} ` : ''
  const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
  return `${where}${path}${issue.message}`
}
