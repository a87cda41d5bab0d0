/**
 * Signed JWTs for the jwt scenarios, made with node:crypto (the bench signs with an independent
 * implementation, not the gateway's). One token per scenario, reused on every request (warm cache).
 */
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto'

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url')

/** claims the bench uses: the key claim (`iss`) and an `exp` a day ahead (claims_to_verify: exp). */
export function benchClaims(iss: string): Record<string, unknown> {
  return { iss, sub: 'bench-user', exp: Math.floor(Date.now() / 1000) + 86_400 }
}

export function signHs256(payload: object, secret: string): string {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`
  return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`
}

export function signRs256(payload: object, privateKeyPem: string): string {
  const input = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`
  return `${input}.${b64url(createSign('RSA-SHA256').update(input).sign(privateKeyPem))}`
}

export function rsaKeyPair(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
}
