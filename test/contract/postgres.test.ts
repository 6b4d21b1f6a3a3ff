import { runCertificateInventoryContract } from './certificate-inventory.contract.js'
import { runKeyValueStoreContract } from './key-value-store.contract.js'
import { runLockerContract } from './locker.contract.js'
import { makePostgres } from './postgres-fixture.js'

runKeyValueStoreContract('postgres', makePostgres('kv'))
runLockerContract('postgres', makePostgres('locker'))
runCertificateInventoryContract('postgres', makePostgres('inventory'))
