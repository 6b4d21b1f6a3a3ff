/**
 * Opens the storage named by the config's `pki.inventory`. It lives outside
 * src/storage/ (a backend imports only storage/types.ts and shared/) and
 * outside src/proxy/ (the data plane never opens a backend): the CLI and
 * main.ts call it, the composition roots of DESIGN.md §1.
 *
 * Each backend is imported when it is configured, not before: the drivers
 * are the largest part of the gateway's idle memory (pg alone adds ~11 MB of
 * RSS when loaded), and a gateway uses one of them or none.
 */
import { isAbsolute, resolve } from 'node:path'
import type { PkiConfig } from '../config/schema/index.js'
import { readSecret, type SourceContext } from '../config/secrets.js'
import type { Clock } from '../shared/clock.js'
import type { CertificateInventory, Storage } from '../storage/types.js'

/** Storage that has an inventory (both configurable backends do). */
export type PkiStorage = Storage & { readonly inventory: CertificateInventory }

/** Opens SQLite (path relative to the config file) or Postgres (connection string from a secret). */
export async function openPkiStorage(
  inventory: PkiConfig['inventory'],
  deps: { readonly source: SourceContext; readonly clock: Clock },
): Promise<PkiStorage> {
  if ('sqlite' in inventory) {
    const path = isAbsolute(inventory.sqlite) ? inventory.sqlite : resolve(deps.source.baseDir, inventory.sqlite)
    const { openSqliteStorage } = await import('../storage/sqlite.js')
    return openSqliteStorage({ path, clock: deps.clock }) as PkiStorage
  }
  const connectionString = readSecret(inventory.postgres.connectionString, deps.source)
  const { openPostgresStorage } = await import('../storage/postgres.js')
  return (await openPostgresStorage({ pool: { connectionString }, schema: inventory.postgres.schema, clock: deps.clock })) as PkiStorage
}
