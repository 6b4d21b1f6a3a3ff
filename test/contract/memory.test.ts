import { MemoryCertificateInventory, MemoryKeyValueStore, MemoryLocker } from '../../src/storage/memory.js'
import { runCertificateInventoryContract } from './certificate-inventory.contract.js'
import { runKeyValueStoreContract } from './key-value-store.contract.js'
import { runLockerContract } from './locker.contract.js'

const close = async (): Promise<void> => undefined
runKeyValueStoreContract('memory', async () => ({ store: new MemoryKeyValueStore(), close }))
runLockerContract('memory', async () => ({ store: new MemoryLocker(), close }))
runCertificateInventoryContract('memory', async () => ({ store: new MemoryCertificateInventory(), close }))
