/** The text every benchmark message carries; the MONITOR check finds a message's commands by it. */
export const BODY = 'You have a new notification: order #12345 has shipped.'
