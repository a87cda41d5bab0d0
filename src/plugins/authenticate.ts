/**
 * What every auth plugin does once it knows who is calling: Kong's `set_consumer` (jwt, key-auth,
 * basic-auth... all share it). The consumer headers are set when known and actively cleared when not,
 * so a client cannot spoof `X-Consumer-ID` & co. through a route whose auth plugin let it in.
 */
import type { Consumer } from '../config/model.js'
import type { AuthenticatedCredential, PluginContext, PluginExit } from './types.js'

export const CONSUMER_ID_HEADER = 'X-Consumer-ID'
export const CONSUMER_CUSTOM_ID_HEADER = 'X-Consumer-Custom-ID'
export const CONSUMER_USERNAME_HEADER = 'X-Consumer-Username'
export const CREDENTIAL_IDENTIFIER_HEADER = 'X-Credential-Identifier'
export const ANONYMOUS_HEADER = 'X-Anonymous-Consumer'

/**
 * `kong.client.authenticate(consumer, credential)` plus the upstream identity headers. A null
 * credential means the anonymous consumer: `X-Anonymous-Consumer: true`, no credential identifier.
 */
export function setConsumer(ctx: PluginContext, consumer: Consumer, credential: AuthenticatedCredential | null): void {
  ctx.consumer = consumer
  ctx.credential = credential
  ctx.setUpstreamHeader(CONSUMER_ID_HEADER, consumer.id)
  ctx.setUpstreamHeader(CONSUMER_CUSTOM_ID_HEADER, consumer.custom_id)
  ctx.setUpstreamHeader(CONSUMER_USERNAME_HEADER, consumer.username)
  ctx.setUpstreamHeader(CREDENTIAL_IDENTIFIER_HEADER, credential === null ? null : credential.identifier)
  ctx.setUpstreamHeader(ANONYMOUS_HEADER, credential === null ? 'true' : null)
}

/**
 * The `anonymous` config resolved once per plugin instance (Kong looks it up per request through its
 * cache; the Snapshot makes that a constant). `exit` is Kong's 500 when the id/username names nobody.
 */
export type AnonymousFallback =
  | { kind: 'none' }
  | { kind: 'consumer'; consumer: Consumer }
  | { kind: 'missing'; exit: PluginExit }

export function anonymousFallback(anonymous: string | null, find: (idOrUsername: string) => Consumer | null): AnonymousFallback {
  if (anonymous === null) return { kind: 'none' }
  const consumer = find(anonymous)
  if (consumer !== null) return { kind: 'consumer', consumer }
  return {
    kind: 'missing',
    exit: Object.freeze({ status: 500, body: `anonymous consumer ${anonymous} is configured but doesn't exist`, error: true }),
  }
}
