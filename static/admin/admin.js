// The fastify-comet admin page: plain DOM, no library, no build. Refreshes every 2 s.
const API = new URL('api/', import.meta.url)
const REFRESH_MS = 2000
const SVG = 'http://www.w3.org/2000/svg'

const $ = (selector) => document.querySelector(selector)
let selectedUser = null
let searchTimer

async function api (path, options = {}) {
  const res = await fetch(new URL(path, API), {
    credentials: 'same-origin',
    ...options,
    headers: options.body === undefined ? {} : { 'content-type': 'application/json' }
  })
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null
  if (!res.ok) throw new Error(body?.message ?? body?.error ?? `HTTP ${res.status}`)
  return body
}

function el (tag, text, className) {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = String(text)
  if (className !== undefined) node.className = className
  return node
}

function row (cells) {
  const tr = document.createElement('tr')
  for (const [text, className] of cells) tr.append(el('td', text, className))
  return tr
}

function fill (tbody, rows, empty, columns) {
  if (rows.length === 0) {
    const tr = el('tr', undefined, 'empty')
    const td = el('td', empty)
    td.colSpan = columns
    tr.append(td)
    rows = [tr]
  }
  tbody.replaceChildren(...rows)
}

function duration (ms) {
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86400)
  const h = Math.floor(s % 86400 / 3600)
  const m = Math.floor(s % 3600 / 60)
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${s % 60}s`
  return `${s}s`
}

const time = (at) => new Date(at).toLocaleTimeString()

function renderOverview (data) {
  for (const [name, value] of Object.entries(data.totals)) {
    const node = document.querySelector(`[data-total="${name}"]`)
    if (node !== null) node.textContent = String(value)
  }
  fill($('#instances tbody'), data.instances.map((i) => {
    const tr = row([[i.id], [i.address ?? '–'], [duration(i.uptime)], [i.connections, 'num'], [i.users, 'num'], [i.rates.sent, 'num'], [i.rates.delivered, 'num']])
    tr.dataset.instance = i.id
    if (i.id === data.self) tr.classList.add('self')
    return tr
  }), 'no instance reported', 7)
  fill($('#failed tbody'), data.failedAuths.map((f) => row([[time(f.at)], [f.address], [f.userId ?? '–'], [f.reason.replaceAll('_', ' ')], [f.instance]])),
    'none lately', 5)
  renderChart(data.chart)
  const status = $('#status')
  status.dataset.status = 'live'
  status.textContent = `${data.store} store · updated ${time(data.now)}`
}

function renderChart ({ from, to, points }) {
  const box = $('#chart')
  // Drawn at the size it is shown, so its text is never stretched.
  const width = Math.max(280, box.clientWidth)
  const height = box.clientHeight > 0 ? box.clientHeight : 200
  const pad = { left: 44, right: 8, top: 10, bottom: 22 }
  const max = Math.max(1, ...points.flatMap(([, s, d]) => [s, d]))
  const top = niceCeil(max)
  const x = (at) => pad.left + (width - pad.left - pad.right) * (at - from) / (to - from)
  const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / top)
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', `messages per second over the last 15 minutes, up to ${top}`)
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag)
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
    if (text !== undefined) node.textContent = text
    svg.append(node)
  }
  for (const v of [0, top / 2, top]) {
    add('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' })
    add('text', { x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, formatRate(v))
  }
  for (const minutes of [15, 10, 5]) {
    add('text', { x: x(to - minutes * 60000), y: height - 6, 'text-anchor': minutes === 15 ? 'start' : 'middle', class: 'axis' }, `−${minutes} min`)
  }
  add('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end', class: 'axis' }, 'now')
  for (const [index, name] of [[1, 'sent'], [2, 'delivered']]) {
    add('polyline', { points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[index]).toFixed(1)}`).join(' '), class: name, 'data-series': name })
  }
  box.replaceChildren(svg)
}

function niceCeil (v) {
  const magnitude = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * magnitude) return m * magnitude
  return 10 * magnitude
}

function formatRate (v) {
  return v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(+v.toFixed(1))
}

async function refreshChannels () {
  const search = $('#channel-search').value.trim()
  const data = await api(`channels?search=${encodeURIComponent(search)}`)
  if ($('#channel-search').value.trim() !== search) return // typed meanwhile: a newer answer is coming
  fill($('#channels tbody'), data.channels.map((c) => {
    const tr = row([[c.channel], [c.subscribers, 'num'], [c.users, 'num']])
    tr.dataset.channel = c.channel
    return tr
  }), search === '' ? 'no channel has subscribers' : 'no channel matches', 3)
  $('#channels-note').textContent = data.matched > data.channels.length ? `top ${data.channels.length} of ${data.matched}, by subscribers` : ''
}

async function refreshUser () {
  if (selectedUser === null) return
  const user = await api(`users/${encodeURIComponent(selectedUser)}`)
  if (user.userId !== selectedUser) return
  const field = (name) => document.querySelector(`#user-result [data-field="${name}"]`)
  field('userId').textContent = user.userId
  field('online').textContent = user.online ? 'online' : 'offline'
  field('online').className = user.online ? 'online' : ''
  field('devices').textContent = String(user.devices)
  field('instances').textContent = user.instances.length === 0 ? '–' : user.instances.map((i) => `${i.id}: ${i.devices}`).join(', ')
  field('queued').textContent = String(user.queued)
  field('lastSeen').textContent = user.lastSeen === null ? 'never' : user.online ? 'now' : new Date(user.lastSeen).toLocaleString()
  $('#user-result').hidden = false
}

function say (text) {
  $('#user-message').textContent = text
}

let refreshing = false

async function refresh () {
  // A slow answer is not overtaken by the next tick's.
  if (refreshing) return
  refreshing = true
  try {
    const [overview] = await Promise.all([api('overview'), refreshChannels(), refreshUser()])
    renderOverview(overview)
  } catch (err) {
    const status = $('#status')
    status.dataset.status = 'error'
    status.textContent = `Could not refresh: ${err.message}`
  } finally {
    refreshing = false
  }
}

$('#lookup-form').addEventListener('submit', (event) => {
  event.preventDefault()
  selectedUser = $('#lookup-user').value.trim()
  say('')
  $('#user-result').hidden = true
  refreshUser().catch((err) => say(`Lookup failed: ${err.message}`))
})

$('#send-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const text = $('#send-text').value || 'test message from the admin page'
  api(`users/${encodeURIComponent(selectedUser)}/send`, { method: 'POST', body: JSON.stringify({ event: 'admin_test', data: { text } }) })
    .then((result) => say(result.queued ? `Queued (no device online), id ${result.id}` : `Sent, id ${result.id}`))
    .catch((err) => say(`Send failed: ${err.message}`))
})

$('#revoke').addEventListener('click', () => {
  if (!globalThis.confirm(`Revoke ${selectedUser}? Their secret is deleted and every device is signed out.`)) return
  api(`users/${encodeURIComponent(selectedUser)}/revoke`, { method: 'POST', body: '{}' })
    .then(() => { say(`Revoked ${selectedUser}`); return refreshUser() })
    .catch((err) => say(`Revoke failed: ${err.message}`))
})

$('#channel-search').addEventListener('input', () => {
  clearTimeout(searchTimer)
  searchTimer = setTimeout(() => refreshChannels().catch(() => {}), 250)
})

refresh()
setInterval(refresh, REFRESH_MS)
