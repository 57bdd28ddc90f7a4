// The demo page: everything the server sends is shown with textContent, never parsed as HTML or code.
import { CometClient } from '/comet/client.js'

const ROOM = 'web_room'
const PRESENCE = 'track_room'
const SESSION = 'comet-demo:session'
const HISTORY = 'comet-demo:history'
const KEEP = 100

const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(window.location.search)
/** One socket for all tabs of this user; ?share=0 gives each tab its own. */
const shareConnection = params.get('share') !== '0'

let comet = null

function load (key, fallback) {
  try {
    return JSON.parse(window.sessionStorage.getItem(key) ?? 'null') ?? fallback
  } catch {
    return fallback
  }
}

function save (key, value) {
  window.sessionStorage.setItem(key, JSON.stringify(value))
}

function setStatus (status, detail = '') {
  const el = $('status')
  el.dataset.status = status
  el.textContent = detail === '' ? status : `${status} (${detail})`
}

function item (parts) {
  const li = document.createElement('li')
  for (const [cls, text] of parts) {
    const span = document.createElement('span')
    span.className = cls
    span.textContent = text
    li.append(span)
  }
  return li
}

function showMessage (m) {
  const data = m.data !== null && typeof m.data === 'object' ? m.data : { text: JSON.stringify(m.data) }
  const li = item([
    ['event', m.event],
    ['from', String(data.from ?? '?')],
    ['text', String(data.text ?? '')],
    ['meta', `#${m.id}${data.via === undefined ? '' : ` via ${data.via}`}`]
  ])
  li.dataset.id = m.id
  $('messages').prepend(li)
}

function onMessage (m) {
  // The client already drops ids it has seen; the history keeps what this tab showed across a reload.
  const history = load(HISTORY, [])
  history.push({ channel: m.channel, event: m.event, data: m.data, id: m.id })
  save(HISTORY, history.slice(-KEEP))
  showMessage(m)
}

function connect (session) {
  $('signin').hidden = true
  $('chat').hidden = false
  $('signout').hidden = false
  $('whoami').hidden = false
  $('whoami').textContent = `signed in as ${session.userId}`
  $('messages').replaceChildren()
  const history = load(HISTORY, [])
  for (const m of history) showMessage(m)

  comet = new CometClient({
    url: '/comet',
    userId: session.userId,
    hash: session.hash,
    since: history.at(-1)?.id,
    shareConnection
  })
  window.comet = comet
  setStatus(comet.status)
  comet.on('status', (status, info) => {
    setStatus(status, info.retryIn === undefined ? '' : `retry in ${(info.retryIn / 1000).toFixed(1)} s`)
    if (status === 'auth-failed') {
      window.sessionStorage.removeItem(SESSION)
      $('notice').hidden = false
      $('notice').textContent = 'The server refused this sign-in. Sign out and sign in again.'
    }
  })
  comet.on('ready', (info) => {
    const notes = []
    if (info.queued > 0) notes.push(`${info.queued} message(s) arrived while you were away`)
    if (info.dropped > 0) notes.push(`${info.dropped} older one(s) did not fit in the queue`)
    // The server no longer has every message since the last one shown: a real app reloads its state here.
    if (info.recovered === false) notes.push('some messages sent while you were away could not be recovered')
    if (notes.length === 0) return
    $('notice').hidden = false
    $('notice').textContent = notes.join('; ')
  })
  comet.subscribe('msg', onMessage)
  joinRoom()
  comet.subscribe('lobby.signin', (m) => {
    $('lobby').prepend(item([['from', String(m.data?.userId)], ['text', `signed in on instance ${m.data?.instance}`]]))
  })
  comet.subscribe('lobby.online', (m) => {
    $('lobby').prepend(item([['from', String(m.data?.userId)], ['text', 'came online']]))
  })
  comet.subscribe('lobby.offline', (m) => {
    $('lobby').prepend(item([['from', String(m.data?.userId)], ['text', 'went offline']]))
  })
}

// The room: what this page shows, by id, so history and live messages never show one twice.
const roomIds = new Set()
let lastRoomId

function showRoomMessage (m) {
  if (roomIds.has(m.id)) return
  roomIds.add(m.id)
  lastRoomId = m.id
  const li = item([['from', String(m.userId ?? 'anonymous')], ['text', String(m.data?.text ?? '')]])
  li.dataset.id = m.id
  $('room').append(li)
  $('room').scrollTop = $('room').scrollHeight
}

/** After each (re)connect: what the room said since the last message shown, or all it kept. */
async function catchUpRoom () {
  let result = await comet.history(ROOM, lastRoomId)
  if (!result.recovered && lastRoomId !== undefined) result = await comet.history(ROOM)
  for (const m of result.messages) showRoomMessage(m)
}

const members = new Set()

function showMembers () {
  $('members').replaceChildren(...[...members].sort().map((id) => {
    const li = document.createElement('li')
    li.textContent = id
    return li
  }))
}

async function refreshMembers () {
  const list = await comet.members(PRESENCE)
  members.clear()
  for (const id of list) members.add(id)
  showMembers()
}

function joinRoom () {
  comet.subscribe(`${ROOM}.say`, showRoomMessage)
  comet.subscribe(PRESENCE, (m) => {
    if (m.event === 'join') members.add(m.userId)
    if (m.event === 'leave') members.delete(m.userId)
    showMembers()
  })
  const catchUp = () => {
    catchUpRoom().catch((err) => { $('room-result').textContent = `could not load the room: ${err.message}` })
    refreshMembers().catch((err) => { $('room-result').textContent = `could not list the room: ${err.message}` })
  }
  // On every (re)connect; with a shared connection, also when this tab joins a leader that is open.
  comet.on('status', (status) => { if (status === 'open') catchUp() })
}

$('room-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const text = $('room-text').value
  try {
    const id = await comet.publish(ROOM, 'say', { text })
    // The sender gets the id, not a copy of its own message.
    showRoomMessage({ id, userId: comet.userId, data: { text } })
    $('room-text').value = ''
    $('room-result').textContent = ''
  } catch (err) {
    $('room-result').textContent = `not sent: ${err.code ?? ''} ${err.message}`
  }
})

async function post (url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json = await res.json()
  if (!res.ok) throw new Error(json.message ?? json.error ?? res.statusText)
  return json
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  try {
    const session = await post('/api/login', { userId: $('signin-user').value })
    save(SESSION, session)
    window.sessionStorage.removeItem(HISTORY)
    connect(session)
  } catch (err) {
    setStatus('signed out', err.message)
  }
})

$('send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const session = load(SESSION, null)
  if (session === null) return
  const to = $('send-to').value
  try {
    const result = await post('/api/send', { ...session, to, event: $('send-event').value, text: $('send-text').value })
    $('send-result').textContent = result.queued
      ? `${to} is offline: queued as #${result.id}, delivered when they connect`
      : `delivered to ${to}'s devices as #${result.id}`
    $('send-text').value = ''
  } catch (err) {
    $('send-result').textContent = `not sent: ${err.message}`
  }
})

$('signout').addEventListener('click', () => {
  comet?.close()
  comet = null
  window.sessionStorage.removeItem(SESSION)
  window.sessionStorage.removeItem(HISTORY)
  window.location.reload()
})

const session = load(SESSION, null)
if (session !== null) connect(session)
