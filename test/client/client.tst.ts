import { expect, test } from 'tstyche'
import { CometClient, CometClientError } from '../../lib/client/index.ts'
import type { CometMessage, CometStatus, ReadyInfo, ServerError, StatusInfo } from '../../lib/client/index.ts'
import WebSocket from 'ws'

const comet = new CometClient({ url: 'ws://127.0.0.1:3000/comet', userId: 42, hash: 'a-secret-of-16-chars', WebSocket })

test('subscribe returns the unsubscribe function and types the message data', () => {
  expect(comet.subscribe('msg', () => {})).type.toBe<() => void>()
  comet.subscribe<{ total: number }>('msg.invoice', (m) => {
    expect(m).type.toBe<CometMessage<{ total: number }>>()
    expect(m.data.total).type.toBe<number>()
    expect(m.id).type.toBe<string>()
  })
  comet.subscribe('news', (m) => { expect(m.data).type.toBe<unknown>() })
  expect(comet.subscribe).type.not.toBeCallableWith('msg')
  expect(comet.subscribe).type.not.toBeCallableWith(1, () => {})
})

test('requests resolve with an id and a member list', () => {
  expect(comet.publish('web_chat', 'say', { text: 'hi' })).type.toBe<Promise<string>>()
  expect(comet.members('track_room')).type.toBe<Promise<string[]>>()
  expect(comet.publish).type.not.toBeCallableWith('web_chat')
})

test('events and status', () => {
  comet.on('status', (status, info) => {
    expect(status).type.toBe<CometStatus>()
    expect(info).type.toBe<StatusInfo>()
  })
  comet.on('ready', (info) => { expect(info).type.toBe<ReadyInfo>() })
  comet.on('error', (error) => { expect(error).type.toBe<ServerError>() })
  expect(comet.on).type.not.toBeCallableWith('message', () => {})
  expect(comet.status).type.toBe<CometStatus>()
  expect(comet.lastMessageId).type.toBe<string | undefined>()
  expect(comet.close()).type.toBe<void>()
  expect<CometStatus>().type.toBe<'connecting' | 'open' | 'closed' | 'auth-failed'>()
})

test('options are checked', () => {
  expect(CometClient).type.not.toBeConstructableWith({})
  expect(CometClient).type.not.toBeConstructableWith({ url: 'ws://x', pingInterval: '1s' })
  expect(CometClient).type.not.toBeConstructableWith({ url: 'ws://x', shareConnection: 'yes' })
  expect(CometClient).type.toBeConstructableWith({ url: '/comet', shareConnection: true, reconnect: { maxDelay: 10_000 } })
  expect(CometClient).type.toBeConstructableWith({ url: '/comet', userId: 1, hash: 'h', persistLastId: false })
  expect(CometClient).type.not.toBeConstructableWith({ url: '/comet', persistLastId: 'no' })
  expect(new CometClientError('timeout', 'x').code).type.toBe<string>()
})
