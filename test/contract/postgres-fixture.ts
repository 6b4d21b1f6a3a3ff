/**
 * Fresh Postgres stores for the contract suites: each in a new schema of the
 * `test` database on 127.0.0.1:5432 (CI runs the server), dropped on close.
 * An unreachable server fails the test with a message that says so; it never skips.
 */
import { randomBytes } from 'node:crypto'
import { type PostgresStorage, openPostgresStorage } from '../../src/storage/postgres.js'

const pool = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: 5 }

export function makePostgres<K extends 'kv' | 'locker' | 'inventory'>(part: K) {
  return async (): Promise<{ store: PostgresStorage[K]; close(): Promise<void> }> => {
    const schema = `portcullis_test_${randomBytes(6).toString('hex')}`
    let storage: PostgresStorage
    try {
      storage = await openPostgresStorage({ pool, schema })
    } catch (err) {
      throw new Error(`Postgres contract tests need a server at ${pool.host}:${pool.port} (user ${pool.user}, database ${pool.database}, trust auth): ${String(err)}`, { cause: err })
    }
    return {
      store: storage[part],
      close: async () => {
        try {
          await storage.pool.query(`DROP SCHEMA "${schema}" CASCADE`)
        } finally {
          await storage.close()
        }
      },
    }
  }
}
