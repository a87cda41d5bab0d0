// An auth service in front of your APIs (README: "An auth service in front of your APIs").
//
// POST /login  {"username","password"}  → creates (or reuses) the consumer and a new JWT credential
//              through Bouncer's Admin API, and returns a token signed with that credential's secret.
// POST /logout (Authorization: Bearer <token>) → deletes the token's credential: every gateway
//              worker refuses the token when the DELETE has returned.
//
// Plain Node (node:http + fetch) and fast-jwt. Settings from the environment:
//   PORT (3100), ADMIN_URL (http://127.0.0.1:8001), ADMIN_TOKEN (sent as Kong-Admin-Token when set),
//   USERS ("alice:alice-password,bob:bob-password"): the demo's user list; a real service checks
//   its own user store here.
import http from 'node:http'
import { createDecoder, createSigner } from 'fast-jwt'

const PORT = Number(process.env.PORT ?? 3100)
const ADMIN_URL = (process.env.ADMIN_URL ?? 'http://127.0.0.1:8001').replace(/\/$/, '')
const TOKEN_TTL_S = 3600
const USERS = new Map(
  (process.env.USERS ?? 'alice:alice-password,bob:bob-password').split(',').map((pair) => pair.split(':')),
)
const decode = createDecoder()

async function admin(method, path, body) {
  const headers = { 'content-type': 'application/json' }
  if (process.env.ADMIN_TOKEN) headers['kong-admin-token'] = process.env.ADMIN_TOKEN
  const res = await fetch(`${ADMIN_URL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function login(username, password) {
  if (typeof username !== 'string' || USERS.get(username) !== password) return { status: 401, body: { message: 'wrong username or password' } }
  // PUT upserts: the consumer is created on the first login and reused after
  const consumer = await admin('PUT', `/consumers/${encodeURIComponent(username)}`, { username, tags: ['auth-service'] })
  if (consumer.status !== 200) return { status: 502, body: { message: 'could not create the consumer', admin: consumer.body } }
  // one credential per login: logging out one session revokes only its token
  const cred = await admin('POST', `/consumers/${encodeURIComponent(username)}/jwt`, { tags: ['auth-service'] })
  if (cred.status !== 201) return { status: 502, body: { message: 'could not create the credential', admin: cred.body } }
  const sign = createSigner({ key: cred.body.secret, algorithm: cred.body.algorithm, expiresIn: TOKEN_TTL_S * 1000 })
  const token = sign({ iss: cred.body.key, sub: username })
  return { status: 200, body: { token, token_type: 'Bearer', expires_in: TOKEN_TTL_S } }
}

async function logout(authorization) {
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '')
  if (!m) return { status: 401, body: { message: 'send the token as Authorization: Bearer <token>' } }
  let claims
  try {
    claims = decode(m[1])
  } catch {
    return { status: 400, body: { message: 'not a token' } }
  }
  // the gateway already verified the token on the way here (the logout route has the jwt plugin);
  // the credential is the token's issuer
  const del = await admin('DELETE', `/consumers/${encodeURIComponent(claims.sub)}/jwt/${encodeURIComponent(claims.iss)}`)
  return del.status === 204 ? { status: 204 } : { status: 502, body: { message: 'could not revoke', admin: del.body } }
}

const server = http.createServer(async (req, res) => {
  let raw = ''
  for await (const chunk of req) raw += chunk
  let result
  try {
    const path = new URL(req.url, 'http://x').pathname.replace(/^\/auth/, '')
    if (req.method === 'POST' && path === '/login') {
      const body = raw ? JSON.parse(raw) : {}
      result = await login(body.username, body.password)
    } else if (req.method === 'POST' && path === '/logout') {
      result = await logout(req.headers.authorization)
    } else {
      result = { status: 404, body: { message: 'Not found' } }
    }
  } catch (err) {
    result = { status: 500, body: { message: err instanceof SyntaxError ? 'expected a JSON body' : 'internal error' } }
  }
  if (result.body === undefined) {
    res.writeHead(result.status).end()
    return
  }
  res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.body))
})

server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`auth service on http://127.0.0.1:${PORT} (Admin API ${ADMIN_URL})\n`)
})
