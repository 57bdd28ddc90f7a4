export { CometClient } from './client.js'
export { CometClientError } from './errors.js'
export type {
  CometClientOptions,
  CometEvents,
  CometMessage,
  CometStatus,
  ReadyInfo,
  ServerError,
  StatusInfo
} from './types.js'
export type {
  BroadcastChannelConstructorLike,
  BroadcastChannelLike,
  EventTargetLike,
  LockManagerLike,
  WebSocketConstructorLike,
  WebSocketLike
} from './env.js'
