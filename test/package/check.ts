import { suite, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'

// What `npm publish` would ship, checked as a user meets it: the packed tarball, unpacked into a
// consumer's node_modules, compiled by strict TypeScript apps under each module resolution (skipLibCheck
// off) and required from CommonJS. A CI step of its own (`npm run test:package`, in .ci/run): it builds,
// and type-checking all of fastify's and Node's types four times is slow for `npm test`.

const root = fileURLToPath(new URL('../../', import.meta.url))
const work = join(root, '.tmp', 'package')
const consumer = join(work, 'consumer')
const fixtures = fileURLToPath(new URL('./consumer/', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

function run (command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' })
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`)
  return result.stdout
}

/** The same, without blocking: the compilers run side by side. */
async function runAsync (command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  const [code] = await once(child, 'close') as [number | null]
  assert.equal(code, 0, `${command} ${args.join(' ')} failed:\n${output}`)
}

/** Type-checks one consumer file with the given compiler options (skipLibCheck off). */
async function compile (name: string, file: string, compilerOptions: Record<string, unknown>): Promise<void> {
  pack()
  const config = join(consumer, `tsconfig.${name}.json`)
  writeFileSync(config, JSON.stringify({ compilerOptions: { target: 'ES2022', strict: true, skipLibCheck: false, noEmit: true, ...compilerOptions }, files: [file] }))
  await runAsync(process.execPath, [tsc, '-p', config], consumer)
}

interface Packed { filename: string, files: Array<{ path: string }> }

let packed: Packed | undefined
/** Builds and packs once (npm pack with the sources under test), and unpacks into the consumer. */
function pack (): { files: Set<string>, dir: string } {
  const dir = join(consumer, 'node_modules', 'fastify-comet')
  if (packed === undefined) {
    rmSync(work, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    run('npm', ['run', 'build', '--silent'], root)
    packed = (JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root)) as Packed[])[0]!
    run('tar', ['-xzf', join(work, packed.filename), '-C', dir, '--strip-components=1'], root)
    cpSync(fixtures, consumer, { recursive: true })
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  }
  return { files: new Set(packed.files.map((f) => f.path)), dir }
}

test('the packed package has its license, changelog, types, client bundle, and no dangling source map', () => {
  const { files, dir } = pack()
  for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/errors.d.ts', 'dist/client.js', 'dist/client/index.js', 'dist/client/index.d.ts']) {
    assert.ok(files.has(file), `${file} is in the package`)
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>>, repository?: unknown, homepage?: string, bugs?: unknown, license: string }
  assert.equal(manifest.license, 'MIT')
  assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /^MIT License/)
  assert.ok(manifest.repository !== undefined && manifest.homepage !== undefined && manifest.bugs !== undefined, 'repository, homepage and bugs are set')
  for (const [entry, target] of Object.entries(manifest.exports)) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
      assert.ok(files.has(posix.normalize(file)), `exports["${entry}"] → ${file} is shipped`)
    }
  }
  // Every JavaScript file with a .d.ts beside it, and every source map (and what it maps) shipped.
  for (const file of files) {
    if (file.startsWith('dist/') && file.endsWith('.js') && file !== 'dist/client.js') {
      assert.ok(files.has(file.replace(/\.js$/, '.d.ts')), `${file} has its .d.ts`)
    }
    if (file.endsWith('.js')) {
      const mapped = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dir, file), 'utf8'))
      if (mapped !== null && !mapped[1]!.startsWith('data:')) {
        assert.ok(files.has(posix.join(posix.dirname(file), mapped[1]!)), `${file} points at ${mapped[1]}, which is shipped`)
      }
    }
    if (file.endsWith('.map')) {
      const map = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { sources: string[], sourceRoot?: string, sourcesContent?: unknown[] }
      map.sources.forEach((source, i) => {
        if (map.sourcesContent?.[i] != null) return
        assert.ok(files.has(posix.join(posix.dirname(file), map.sourceRoot ?? '', source)), `${file} maps ${source}, which is shipped`)
      })
    }
  }
})

suite('the packed types compile, skipLibCheck off', { concurrency: true }, () => {
  for (const [resolution, module] of [['NodeNext', 'NodeNext'], ['Node16', 'Node16'], ['Bundler', 'ESNext']] as const) {
    test(`a strict app under moduleResolution ${resolution}`, async () => {
      await compile(resolution.toLowerCase(), 'server.ts', { module, moduleResolution: resolution, lib: ['ES2023'], types: ['node'] })
    })
  }
  test('a browser-only project with the client alone (DOM lib, no Node types)', async () => {
    await compile('browser', 'browser.ts', { module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM'], types: [] })
  })
})

test('a CommonJS app requires the packed package on this Node (require() of ESM, Node >= 20.19)', () => {
  pack()
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
  assert.ok(major > 20 || (major === 20 && minor >= 19), `engines says >= 20.19; this is ${process.versions.node}`)
  const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
  assert.equal(engines, '>=20.19.0')
  assert.match(run(process.execPath, ['require.cjs'], consumer), /required ok/)
})
