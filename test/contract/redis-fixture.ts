/**
 * Fresh Redis stores for the contract suites: each under a new key prefix on
 * 127.0.0.1:6379 (CI runs the server), whose keys are deleted on close.
 * An unreachable server fails the test with a message that says so; it never skips.
 */
import { randomBytes } from 'node:crypto'
import { type RedisStorage, openRedisStorage } from '../../src/storage/redis.js'

const redis = { host: '127.0.0.1', port: 6379 }

export function makeRedis<K extends 'kv' | 'locker'>(part: K) {
  return async (): Promise<{ store: RedisStorage[K]; close(): Promise<void> }> => {
    const prefix = `portcullis-test:${randomBytes(6).toString('hex')}:`
    let storage: RedisStorage
    try {
      storage = await openRedisStorage({ redis, prefix })
    } catch (err) {
      throw new Error(`Redis contract tests need a server at ${redis.host}:${redis.port}: ${String(err)}`, { cause: err })
    }
    return {
      store: storage[part],
      close: async () => {
        try {
          let cursor = '0'
          do {
            const [next, keys] = await storage.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
            if (keys.length > 0) await storage.client.del(...keys)
            cursor = next
          } while (cursor !== '0')
        } finally {
          await storage.close()
        }
      },
    }
  }
}
