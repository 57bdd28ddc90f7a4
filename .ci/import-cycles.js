// Fails when files under lib/ import each other in a circle (type-only imports count: a newcomer reads
// them as arrows too). Run by `npm run lint`; prints each circle as the files it ties. An argument names
// another project root (test/import-cycles.test.ts).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'))
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'/gm

function files (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return files(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

const graph = new Map()
for (const file of files(join(root, 'lib'))) {
  const targets = []
  for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) targets.push(resolve(dirname(file), match[1] ?? match[2]))
  graph.set(file, targets.filter((target) => target.endsWith('.ts')))
}

// Tarjan's strongly connected components: every component of more than one file is a circle.
const index = new Map()
const low = new Map()
const stack = []
const onStack = new Set()
const circles = []
let counter = 0
function visit (file) {
  index.set(file, counter)
  low.set(file, counter++)
  stack.push(file)
  onStack.add(file)
  for (const target of graph.get(file) ?? []) {
    if (!index.has(target)) {
      visit(target)
      low.set(file, Math.min(low.get(file), low.get(target)))
    } else if (onStack.has(target)) {
      low.set(file, Math.min(low.get(file), index.get(target)))
    }
  }
  if (low.get(file) !== index.get(file)) return
  const component = []
  let member
  do {
    member = stack.pop()
    onStack.delete(member)
    component.push(relative(root, member))
  } while (member !== file)
  if (component.length > 1 || (graph.get(file) ?? []).includes(file)) circles.push(component.sort())
}
for (const file of graph.keys()) if (!index.has(file)) visit(file)

if (circles.length > 0) {
  for (const circle of circles) console.error(`import circle: ${circle.join(', ')}`)
  process.exit(1)
}
console.log(`no import circles in lib/ (${graph.size} files)`)
