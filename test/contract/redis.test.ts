import { runKeyValueStoreContract } from './key-value-store.contract.js'
import { runLockerContract } from './locker.contract.js'
import { makeRedis } from './redis-fixture.js'

runKeyValueStoreContract('redis', makeRedis('kv'))
runLockerContract('redis', makeRedis('locker'))
