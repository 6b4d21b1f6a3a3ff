/**
 * Fresh SQLite stores for the contract suites: each in its own temporary
 * folder, removed on close.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type SqliteStorage, openSqliteStorage } from '../../src/storage/sqlite.js'

/** Opens a new database file; `close` closes it and deletes its folder. */
export function makeSqlite<K extends 'kv' | 'locker' | 'inventory'>(part: K) {
  return async (): Promise<{ store: SqliteStorage[K]; close(): Promise<void> }> => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-sqlite-'))
    const storage = openSqliteStorage({ path: join(dir, 'state.db') })
    return {
      store: storage[part],
      close: async () => {
        await storage.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
}
