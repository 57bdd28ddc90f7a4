export { CometClient } from './client.ts'
export { CometClientError } from './errors.ts'
export { PROTOCOL } from '../protocol/names.ts'
export type { CometEvents, EventData, TopicData } from './events.ts'
export type {
  CometClientEvents,
  CometClientOptions,
  CometHistory,
  CometMessage,
  CometStatus,
  ReadyInfo,
  ServerError,
  StatusInfo
} from './types.ts'
export type {
  BroadcastChannelConstructorLike,
  BroadcastChannelLike,
  EventTargetLike,
  LockManagerLike,
  WebSocketConstructorLike,
  WebSocketLike
} from './env.ts'
