/**
 * The wire protocol's name and version, negotiated as the WebSocket subprotocol. An incompatible change
 * gets a new name (`comet.v2`); a server that speaks several picks the newest the client offers.
 */
export const PROTOCOL = 'comet.v1'
