import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', 'coverage/**', 'test-results/**', 'node_modules/**', '.tmp/**']
})
