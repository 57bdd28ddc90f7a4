import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'

/** Debian's Chromium, headless, driven by playwright-core (which ships no browser of its own). */
export async function launch (): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the browser tests need it (Debian: apt-get install -y chromium), or set CHROMIUM_PATH.`)
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
}

/**
 * `npm run build`: pages load the bundle the plugin serves from dist/, and the demo imports the package
 * itself, so test what a user would get, built from the sources under test.
 */
export function build (): void {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  // Once per test run: each browser test file is its own process, and a build costs most of a minute.
  const stamp = join(root, 'dist', '.built')
  const sources = ['lib', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.client.json'].map((name) => join(root, name))
  if (existsSync(stamp) && Math.max(...sources.filter(existsSync).map(newest)) < statSync(stamp).mtimeMs) return
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`)
  writeFileSync(stamp, '')
}

/** The newest modification time under a path (ms). */
function newest (path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))))
}
