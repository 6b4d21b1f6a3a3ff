import { runCertificateInventoryContract } from './certificate-inventory.contract.js'
import { runKeyValueStoreContract } from './key-value-store.contract.js'
import { runLockerContract } from './locker.contract.js'
import { makeSqlite } from './sqlite-fixture.js'

runKeyValueStoreContract('sqlite', makeSqlite('kv'))
runLockerContract('sqlite', makeSqlite('locker'))
runCertificateInventoryContract('sqlite', makeSqlite('inventory'))
