/**
 * Redis storage (`ioredis`): a KeyValueStore and a Locker for several gateway
 * instances. No CertificateInventory: the inventory needs filtered queries and
 * lasting records, which belong in SQLite or Postgres.
 *
 * - Every key this backend touches starts with `prefix`, so one Redis can hold
 *   several deployments and a test run can delete exactly its own keys.
 *   For Redis Cluster put a hash tag in the prefix (`{portcullis}:`): the
 *   scripts touch several keys, which must share a slot.
 * - CAS, delete-if-version, lock acquire/takeover, release and extend are Lua
 *   scripts, so each runs atomically on the server.
 * - Key-value layout: values and versions in two hashes, a sorted set of all
 *   keys (score 0, so ZRANGEBYLEX gives memcmp order) for `list`, and a
 *   counter for versions.
 * - Locks are plain keys with a PX expiry: the server's clock judges expiry
 *   and a takeover is simply acquiring after the key expired.
 *
 * What Redis does not give: durability beyond the server's persistence
 * settings (`appendfsync always` to match the contract's "durable when
 * resolved"), and lock safety across a failover to a replica that had not
 * received the latest write (the Redlock debate). Fencing tokens come from a
 * counter in Redis, so they stay increasing only while its data survives.
 * Use Postgres where those matter.
 */
import { Redis, type RedisOptions } from 'ioredis'
import {
  type AcquireOptions,
  type DeleteOptions,
  type DeleteResult,
  type KeyValueStore,
  type ListOptions,
  type ListedKey,
  type Lock,
  type Locker,
  type PutOptions,
  type PutResult,
  type Storage,
  type VersionedValue,
  checkAcquire,
  checkKey,
  checkLimit,
  checkPrefix,
  checkValue,
  checkVersion,
  pollForLock,
} from './types.js'

/** KEYS: values hash, versions hash, index zset, version counter. ARGV: key, value, mode, expected version. Returns the version or -1. */
const PUT = `
local current = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[3] == 'absent' and current then return -1 end
if ARGV[3] == 'version' and current ~= ARGV[4] then return -1 end
local version = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], version)
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return version`

/** KEYS: values, versions, index. ARGV: key, expected version or ''. Returns 1 deleted, 0 missing, -1 conflict. */
const DELETE = `
local current = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and current ~= ARGV[2] then return -1 end
if not current then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`

/** KEYS: versions, index. ARGV: lex min, lex max, limit. Returns key, version, key, version... */
const LIST = `
local keys = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i, key in ipairs(keys) do
  out[2 * i - 1] = key
  out[2 * i] = redis.call('HGET', KEYS[1], key)
end
return out`

/** KEYS: lock, token counter. ARGV: ttl ms. Takes a free (or expired, hence deleted) lock; returns its token or nil. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token`

/** KEYS: lock. ARGV: token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** KEYS: lock. ARGV: token, ttl ms. */
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

interface Scripts {
  kvPut(vals: string, vers: string, idx: string, seq: string, key: Buffer, value: Buffer, mode: string, expected: string): Promise<number>
  kvDelete(vals: string, vers: string, idx: string, key: Buffer, expected: string): Promise<number>
  kvListBuffer(vers: string, idx: string, min: Buffer | string, max: Buffer | string, limit: number): Promise<Buffer[]>
  lockAcquire(lock: string, seq: string, ttlMs: number): Promise<number | null>
  lockRelease(lock: string, token: number): Promise<number>
  lockExtend(lock: string, token: number, ttlMs: number): Promise<number>
}
type ScriptedRedis = Redis & Scripts

export interface RedisStorageOptions {
  /** ioredis connection options (host, port, password, tls, db...). */
  readonly redis: RedisOptions
  /** Prepended to every key; non-empty, e.g. `portcullis:` or `{portcullis}:` for Cluster. */
  readonly prefix: string
}

/** The key-value store and locker over one Redis connection. */
export type RedisStorage = Storage & { readonly client: Redis; readonly prefix: string }

/** Connects (rejecting at once if Redis cannot be reached) and defines the scripts. */
export async function openRedisStorage(options: RedisStorageOptions): Promise<RedisStorage> {
  if (options.prefix === '' || /[\s*?[\]]/.test(options.prefix)) throw new Error('prefix must be non-empty, without spaces or glob characters')
  // lazyConnect so that a server that is not there fails this call instead of retrying in the background;
  // after that, ioredis reconnects by itself and a command fails after one retry rather than queueing forever.
  const client = new Redis({ connectTimeout: 5_000, maxRetriesPerRequest: 1, ...options.redis, lazyConnect: true }) as ScriptedRedis
  client.on('error', () => undefined) // surfaced by the failing command; without a listener ioredis would print them
  await client.connect()
  client.defineCommand('kvPut', { numberOfKeys: 4, lua: PUT })
  client.defineCommand('kvDelete', { numberOfKeys: 3, lua: DELETE })
  client.defineCommand('kvList', { numberOfKeys: 2, lua: LIST })
  client.defineCommand('lockAcquire', { numberOfKeys: 2, lua: ACQUIRE })
  client.defineCommand('lockRelease', { numberOfKeys: 1, lua: RELEASE })
  client.defineCommand('lockExtend', { numberOfKeys: 1, lua: EXTEND })
  return {
    client,
    prefix: options.prefix,
    kv: new RedisKeyValueStore(client, options.prefix),
    locker: new RedisLocker(client, options.prefix),
    close: async () => {
      await client.quit()
    },
  }
}

/** KeyValueStore in two hashes and a sorted set under the prefix. */
export class RedisKeyValueStore implements KeyValueStore {
  private readonly vals: string
  private readonly vers: string
  private readonly idx: string
  private readonly seq: string
  private readonly client: ScriptedRedis

  constructor(client: Redis, prefix: string) {
    this.client = client as ScriptedRedis
    this.vals = `${prefix}kv:values`
    this.vers = `${prefix}kv:versions`
    this.idx = `${prefix}kv:index`
    this.seq = `${prefix}kv:version-counter`
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const field = checkKey(key)
    // MULTI so the value and its version come from the same moment.
    const replies = await this.client.multi().hgetBuffer(this.vals, field).hget(this.vers, field).exec()
    const value = replies?.[0]?.[1] as Buffer | null | undefined
    const version = replies?.[1]?.[1] as string | null | undefined
    if (value == null || version == null) return undefined
    return { value, version: Number(version) }
  }

  async put(key: string, value: Buffer, options: PutOptions = {}): Promise<PutResult> {
    const field = checkKey(key)
    checkValue(value)
    checkVersion(options.ifVersion, true)
    const mode = options.ifVersion === undefined ? 'any' : options.ifVersion === 'absent' ? 'absent' : 'version'
    const expected = typeof options.ifVersion === 'number' ? String(options.ifVersion) : ''
    const version = await this.client.kvPut(this.vals, this.vers, this.idx, this.seq, field, value, mode, expected)
    return version === -1 ? { conflict: true } : { version }
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const field = checkKey(key)
    checkVersion(options.ifVersion, false)
    const result = await this.client.kvDelete(this.vals, this.vers, this.idx, field, options.ifVersion === undefined ? '' : String(options.ifVersion))
    return result === -1 ? { conflict: true } : { deleted: result === 1 }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<readonly ListedKey[]> {
    const start = checkPrefix(prefix)
    const after = options.after === undefined ? undefined : checkPrefix(options.after)
    const limit = checkLimit(options.limit)
    // Lex ranges compare bytes (memcmp): from the prefix (or just after the cursor, if later) to prefix + 0xFF.
    const min =
      after !== undefined && Buffer.compare(after, start) >= 0
        ? Buffer.concat([Buffer.from('('), after])
        : start.length === 0
          ? '-'
          : Buffer.concat([Buffer.from('['), start])
    const max = start.length === 0 ? '+' : Buffer.concat([Buffer.from('('), start, Buffer.from([0xff])])
    const flat = await this.client.kvListBuffer(this.vers, this.idx, min, max, limit)
    const out: ListedKey[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ key: flat[i]!.toString('utf8'), version: Number(flat[i + 1]!.toString()) })
    return out
  }
}

/** Locker of PX-expiring keys under the prefix. */
export class RedisLocker implements Locker {
  private readonly client: ScriptedRedis
  constructor(
    client: Redis,
    private readonly prefix: string,
  ) {
    this.client = client as ScriptedRedis
  }

  async acquire(name: string, options: AcquireOptions): Promise<Lock | undefined> {
    checkAcquire(name, options)
    const key = `${this.prefix}lock:${name}`
    const token = await pollForLock(async () => (await this.client.lockAcquire(key, `${this.prefix}lock-token-counter`, options.ttlMs)) ?? undefined, options)
    if (token === undefined) return undefined
    return {
      name,
      token,
      release: async () => (await this.client.lockRelease(key, token)) === 1,
      extend: async (ttlMs: number) => {
        checkAcquire(name, { ttlMs, waitMs: 0 })
        return (await this.client.lockExtend(key, token, ttlMs)) === 1
      },
    }
  }
}
