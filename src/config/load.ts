/**
 * The first three control-plane steps — load, validate, check — as one call:
 * YAML text in, a frozen Config or every issue at file:line:col out.
 *
 *   gateway.yaml:5:15 listeners.0.tls.clientAuth.mode: Invalid option: expected one of "required"|"optional"|"none"
 *
 * Each step stops the pipeline when it finds problems (schema issues on a
 * document that did not parse would be noise), but reports all problems of
 * that step at once, sorted by position. Later steps (compile) throw
 * ConfigError with paths; {@link withPositions} places those too.
 */
import type { ConfigIssue } from './issues.js'
import { checkConfig } from './check.js'
import { deepFreeze } from './freeze.js'
import { parseForPositions, parseYaml, sortIssues } from './parse-yaml.js'
import type { SourceMap } from './locate.js'
import type { Config } from './schema/index.js'
import type { SourceContext } from './secrets.js'
import { validateConfig } from './validate.js'

/** What loading needs from outside: where relative paths start and the environment. */
export interface LoadDeps {
  readonly source: SourceContext
  /**
   * Read the files and environment variables the config references (default
   * true). False still validates and cross-checks everything else: for the
   * `ca` commands and the managed-certificate step at start, which run before
   * the files a listener names may exist.
   */
  readonly readFiles?: boolean
}

/** A loaded config, or why not. */
export type LoadResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly issues: ConfigIssue[] }

/**
 * Parses, validates and checks config text. `file` is only used in issue
 * positions (pass the name the operator knows, e.g. "gateway.yaml"). The
 * returned config is deep-frozen: the type is the plain `Config` so compile
 * code can pass parts of it around, but any write throws.
 */
export function loadConfig(text: string, file: string, deps: LoadDeps): LoadResult {
  const parsed = parseYaml(text, file)
  if (!parsed.ok) return parsed

  const validated = validateConfig(parsed.value)
  if (!validated.ok) {
    const issues = validated.issues.map((issue) => place({ path: issue.path, message: issue.message }, parsed.map, file, issue.anchor))
    return { ok: false, issues: sortIssues(issues) }
  }

  const problems = checkConfig(validated.config, deps.readFiles === false ? undefined : deps.source)
  if (problems.length > 0) {
    return { ok: false, issues: sortIssues(problems.map((issue) => place(issue, parsed.map, file))) }
  }
  return { ok: true, config: deepFreeze(validated.config) }
}

/**
 * Adds file, line and column to issues found after loading (the compile step
 * throws ConfigError with paths only). `text` must be the text the config
 * was loaded from. Issues that already have a line keep it; when the text
 * cannot be parsed (it was loaded, so that is a caller bug), issues get only
 * the file name.
 */
export function withPositions(issues: readonly ConfigIssue[], text: string, file: string): ConfigIssue[] {
  const map = parseForPositions(text)
  return sortIssues(issues.map((issue) => (issue.line !== undefined ? issue : map ? place(issue, map, file) : { ...issue, file })))
}

function place(issue: ConfigIssue, map: SourceMap, file: string, anchor: 'value' | 'key' = 'value'): ConfigIssue {
  const { line, col } = map.locate(issue.path, anchor)
  return { path: issue.path, message: issue.message, file, line, col }
}
