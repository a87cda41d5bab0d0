/**
 * Admin API request bodies: JSON, form-urlencoded and multipart, as Kong accepts them, into one plain
 * object. Form keys nest the way Kong's forms do: `config.minute=5`, `config[minute]=5`,
 * `paths[]=/a&paths[]=/b`, `paths[1]=/a`, or a key repeated (`methods=GET&methods=POST`). Multipart is
 * parsed by Node's own fetch implementation (undici's FormData parser), not by hand. Form values stay
 * strings here; ./validate.ts coerces them by the entity's schema.
 */
import type { IncomingMessage } from 'node:http'
import { AdminError, badRequest } from './errors.js'

export interface ParsedBody {
  value: Record<string, unknown>
  /** came from a form: values are strings to be coerced */
  form: boolean
  /** the raw text (POST /config reads a declarative config from it) */
  text: string
  contentType: string
}

/** Read the whole body, refusing more than `limit` bytes with Kong's (nginx's) 413. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > limit) {
      req.resume()
      reject(tooLarge(limit))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    let failed = false
    req.on('data', (chunk: Buffer) => {
      if (failed) return
      size += chunk.length
      if (size > limit) {
        failed = true
        reject(tooLarge(limit))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)) })
    req.on('error', (err) => { if (!failed) { failed = true; reject(err) } })
  })
}

const tooLarge = (limit: number) => new AdminError(413, { message: `Request body too large (the Admin API accepts at most ${limit} bytes)` })

export async function parseBody(buf: Buffer, contentTypeHeader: string | undefined): Promise<ParsedBody> {
  const contentType = (contentTypeHeader ?? '').split(';')[0]!.trim().toLowerCase()
  const text = buf.toString('utf8')
  if (buf.length === 0) return { value: {}, form: false, text, contentType }
  if (contentType === 'application/json' || contentType.endsWith('+json') || contentType === '') {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      if (contentType === '') throw new AdminError(415, { message: 'Unsupported Content-Type: send application/json, application/x-www-form-urlencoded or multipart/form-data' })
      throw badRequest('Cannot parse JSON body')
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badRequest('Cannot parse JSON body: expected a JSON object')
    return { value: value as Record<string, unknown>, form: false, text, contentType: contentType || 'application/json' }
  }
  if (contentType === 'application/x-www-form-urlencoded') {
    return { value: decodeForm(new URLSearchParams(text)), form: true, text, contentType }
  }
  if (contentType === 'multipart/form-data') {
    let data: FormData
    try {
      data = await new Response(buf, { headers: { 'content-type': contentTypeHeader! } }).formData()
    } catch {
      throw badRequest('Cannot parse multipart/form-data body')
    }
    const pairs: Array<[string, string]> = []
    for (const [k, v] of data.entries()) pairs.push([k, typeof v === 'string' ? v : await v.text()])
    return { value: decodeForm(pairs), form: true, text, contentType }
  }
  if (contentType === 'application/x-yaml' || contentType === 'text/yaml' || contentType === 'application/yaml' || contentType === 'text/plain') {
    return { value: {}, form: false, text, contentType }
  }
  throw new AdminError(415, { message: `Unsupported Content-Type '${contentType}': send application/json, application/x-www-form-urlencoded or multipart/form-data` })
}

/** `a.b[c][]=v` → segments ['a', 'b', 'c', ''] ('' appends to an array). */
function keySegments(key: string): string[] {
  const out: string[] = []
  for (const part of key.split('.')) {
    const m = /^([^[\]]*)((?:\[[^\]]*\])*)$/.exec(part)
    if (!m) { out.push(part); continue }
    if (m[1] !== '') out.push(m[1]!)
    for (const b of m[2]!.matchAll(/\[([^\]]*)\]/g)) out.push(b[1]!)
  }
  return out
}

export function decodeForm(pairs: Iterable<[string, string]>): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const [key, value] of pairs) {
    const segs = keySegments(key)
    if (segs.length === 0) continue
    let node: Record<string, unknown> | unknown[] = root
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!
      const last = i === segs.length - 1
      const nextIsIndex = !last && (segs[i + 1] === '' || /^\d+$/.test(segs[i + 1]!))
      if (Array.isArray(node)) {
        const idx = seg === '' ? node.length : Number(seg) - 1 // Kong's form indexes start at 1
        if (last) node[Math.max(0, idx)] = value
        else node = (node[idx] ??= nextIsIndex ? [] : {}) as Record<string, unknown> | unknown[]
        continue
      }
      if (last) {
        const prev = node[seg]
        node[seg] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
      } else {
        const prev = node[seg]
        if (prev === undefined || typeof prev !== 'object' || prev === null) node[seg] = nextIsIndex ? [] : {}
        node = node[seg] as Record<string, unknown> | unknown[]
      }
    }
  }
  return root
}
