export { CometClient } from './client.ts'
export { CometClientError } from './errors.ts'
export type {
  CometClientOptions,
  CometEvents,
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
