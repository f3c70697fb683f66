/**
 * The protocol codes that the server sends and the clients read, named once for lib/, devices/ and
 * the dashboard. Plain constants and no imports: `npm run build` compiles this file into the
 * server (dist/shared/) and into the browser build (web/dist/shared/).
 */

/**
 * WebSocket close codes. Harper 4.7 refuses a WebSocket request after the upgrade by closing it
 * with its HTTP status moved into the 3000 range (RFC 6455 §7.4.2: codes for libraries and
 * frameworks): 401 becomes 3000, 403 becomes 3003.
 */
export const WS_CLOSE = {
  /** Harper's 401: no valid credentials (no session, or it ended). */
  UNAUTHORIZED: 3000,
  /** Harper's 403: authenticated, but without the right to this resource. */
  FORBIDDEN: 3003,
  /** RFC 6455: a message larger than the endpoint takes (lib/mqtt/wire-limits.ts sets the limit). */
  MESSAGE_TOO_BIG: 1009,
} as const;

/** MQTT 5 reason codes (MQTT 5.0 §2.4), the ones this component sends or reads. */
export const MQTT5_REASON = {
  SUCCESS: 0x00,
  /**
   * The lowest failure code: a CONNACK, SUBACK or PUBACK code at or above it is a refusal. MQTT
   * 3.1.1's one SUBACK failure code (§3.9.3) has the same value, so a SUBACK is read alike in both.
   */
  FAILURE: 0x80,
  BAD_USERNAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  PACKET_TOO_LARGE: 0x95,
} as const;

/** MQTT 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const MQTT3_CONNACK = {
  ACCEPTED: 0,
  IDENTIFIER_REJECTED: 2,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;
