/**
 * The per-Snapshot lookup tables every plugin shares (consumers by id / username, credentials by key,
 * ACL groups by consumer). Built once by the chain compiler, before any plugin instance is created, so
 * factories precompute from Maps instead of scanning the Snapshot's arrays.
 */
import type { Acl, Consumer, JwtSecret, KeyauthCredential, Snapshot } from '../config/model.js'
import type { SnapshotIndex } from './types.js'

export function createSnapshotIndex(snapshot: Snapshot): SnapshotIndex {
  const consumersById = new Map<string, Consumer>()
  const consumersByUsername = new Map<string, Consumer>()
  for (const consumer of snapshot.consumers) {
    consumersById.set(consumer.id, consumer)
    if (consumer.username !== null) consumersByUsername.set(consumer.username, consumer)
  }

  // A list per key, not one row: Kong keeps `key` unique, but Bouncer lets several live secrets share
  // a key claim value (key rotation); the jwt plugin tries each, in Snapshot order.
  const jwtSecretsByKey = new Map<string, JwtSecret[]>()
  for (const secret of snapshot.jwt_secrets) {
    const list = jwtSecretsByKey.get(secret.key)
    if (list === undefined) jwtSecretsByKey.set(secret.key, [secret])
    else list.push(secret)
  }

  const keyauthByKey = new Map<string, KeyauthCredential>()
  for (const credential of snapshot.keyauth_credentials) {
    // first wins: the loader rejects duplicate keys, this only keeps a hand-built Snapshot deterministic
    if (!keyauthByKey.has(credential.key)) keyauthByKey.set(credential.key, credential)
  }

  const aclsByConsumer = new Map<string, Acl[]>()
  for (const acl of snapshot.acls) {
    const list = aclsByConsumer.get(acl.consumer)
    if (list === undefined) aclsByConsumer.set(acl.consumer, [acl])
    else list.push(acl)
  }

  return { snapshot, consumersById, consumersByUsername, jwtSecretsByKey, keyauthByKey, aclsByConsumer }
}

/**
 * Kong `kong.client.load_consumer(id_or_name, search_by_username = true)`: the consumer with that id,
 * else the one with that username (how `anonymous` is resolved).
 */
export function findConsumer(index: SnapshotIndex, idOrUsername: string): Consumer | null {
  return index.consumersById.get(idOrUsername) ?? index.consumersByUsername.get(idOrUsername) ?? null
}
