import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { processTree, rssBytes, treeCpuMicros, treeRssBytes } from './proc-stats.js'

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return check()
}

test('a process tree includes every descendant, and its RSS sums theirs', async () => {
  const root = spawn('sh', ['-c', 'sleep 5 & sleep 5 & wait'], { stdio: 'ignore' })
  try {
    assert.ok(await until(() => processTree(root.pid!).length === 3), `tree: ${processTree(root.pid!).join(',')}`)
    const pids = processTree(root.pid!)
    assert.equal(pids[0], root.pid)
    assert.ok(treeRssBytes(pids) > rssBytes(root.pid!))
  } finally {
    root.kill('SIGKILL')
    for (const pid of processTree(root.pid!)) if (pid !== root.pid) process.kill(pid, 'SIGKILL')
  }
})

test('the CPU time of a busy process grows', async () => {
  const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end);'], { stdio: 'ignore' })
  try {
    await new Promise((r) => setTimeout(r, 200))
    const before = treeCpuMicros([busy.pid!])
    assert.ok(await until(() => treeCpuMicros([busy.pid!]) >= before + 200_000, 2500), 'at least 200 ms of CPU within 2.5 s')
  } finally {
    busy.kill('SIGKILL')
  }
})

test('an exited process has no RSS and no CPU time, instead of an error', () => {
  assert.equal(rssBytes(2 ** 22 + 12345), 0)
  assert.equal(treeCpuMicros([2 ** 22 + 12345]), 0)
})
