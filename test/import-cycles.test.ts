// .ci/import-cycles.js, which `npm run lint` runs: it fails on an import circle in lib/, type-only
// imports included, and passes on this project's lib/.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SCRIPT = new URL('../.ci/import-cycles.js', import.meta.url).pathname

function check (root?: string): { status: number | null, out: string } {
  const run = spawnSync(process.execPath, root === undefined ? [SCRIPT] : [SCRIPT, root], { encoding: 'utf8' })
  return { status: run.status, out: run.stdout + run.stderr }
}

test('a circle of imports in lib/ fails the check, and names its files', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cycles-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'lib', 'deep'), { recursive: true })
  writeFileSync(join(root, 'lib', 'a.ts'), "import { b } from './deep/b.ts'\nexport const a = b\n")
  writeFileSync(join(root, 'lib', 'deep', 'b.ts'), "import type {\n  C\n} from '../c.ts'\nexport const b: C = 1\n")
  writeFileSync(join(root, 'lib', 'c.ts'), "export type { A } from './a.ts'\nexport type C = number\n")
  writeFileSync(join(root, 'lib', 'd.ts'), "import { a } from './a.ts'\nexport const d = a\n")
  const { status, out } = check(root)
  assert.equal(status, 1)
  assert.match(out, /import circle: lib\/a\.ts, lib\/c\.ts, lib\/deep\/b\.ts/)
  assert.doesNotMatch(out, /d\.ts/, 'a file that only imports into the circle is not part of it')

  writeFileSync(join(root, 'lib', 'c.ts'), 'export type C = number\n')
  assert.equal(check(root).status, 0, 'without the arrow back, no circle')
})

test('lib/ has no import circle', () => {
  const { status, out } = check()
  assert.equal(status, 0, out)
})
