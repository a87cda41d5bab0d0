/**
 * Request-body arguments for key-auth's `key_in_body` (Kong's `kong.request.get_body()`): form
 * (application/x-www-form-urlencoded), JSON (application/json, `+json`) and multipart/form-data.
 * Values are strings; a repeated name, or a JSON array/object, comes back as an array (key-auth's
 * "Duplicate API key found"). `without(name)` rebuilds the body with that argument removed, for
 * `hide_credentials` — other multipart parts keep their exact bytes.
 */

export interface BodyArgs {
  readonly values: Readonly<Record<string, string | string[]>>
  without(name: string): Buffer
}

export function parseBodyArgs(body: Buffer, contentType: string): BodyArgs | null {
  const type = contentType.split(';')[0]!.trim().toLowerCase()
  if (type === 'application/x-www-form-urlencoded') return formArgs(body)
  if (type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type)) return jsonArgs(body)
  if (type === 'multipart/form-data') {
    const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
    const boundary = m?.[1] ?? m?.[2]
    return boundary ? multipartArgs(body, boundary) : null
  }
  return null
}

function add(values: Record<string, string | string[]>, name: string, value: string | string[]): void {
  const prev = values[name]
  if (prev === undefined) values[name] = value
  else values[name] = [...(Array.isArray(prev) ? prev : [prev]), ...(Array.isArray(value) ? value : [value])]
}

function formArgs(body: Buffer): BodyArgs {
  const params = new URLSearchParams(body.toString('utf8'))
  const values: Record<string, string | string[]> = Object.create(null)
  for (const [k, v] of params) add(values, k, v)
  return {
    values,
    without(name) {
      params.delete(name)
      return Buffer.from(params.toString())
    },
  }
}

function jsonArgs(body: Buffer): BodyArgs | null {
  let doc: unknown
  try {
    doc = JSON.parse(body.toString('utf8'))
  } catch {
    return null
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return null
  const obj = doc as Record<string, unknown>
  const values: Record<string, string | string[]> = Object.create(null)
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') values[k] = v
    // Kong: a table (array or object) under the name is a duplicate; numbers and booleans are no key
    else if (v !== null && typeof v === 'object') values[k] = ['', '']
  }
  return {
    values,
    without(name) {
      delete obj[name]
      return Buffer.from(JSON.stringify(obj))
    },
  }
}

interface Part {
  name: string | null
  isFile: boolean
  value: string
  /** byte range of the part, from its delimiter line up to (not including) the next delimiter */
  start: number
  end: number
}

function multipartArgs(body: Buffer, boundary: string): BodyArgs | null {
  const delimiter = Buffer.from(`--${boundary}`)
  const parts: Part[] = []
  let at = body.indexOf(delimiter)
  if (at === -1) return null
  for (;;) {
    const next = body.indexOf(delimiter, at + delimiter.length)
    if (next === -1) break
    const headStart = body.indexOf('\r\n', at) + 2
    const headEnd = body.indexOf('\r\n\r\n', headStart)
    if (headStart < 2 || headEnd === -1 || headEnd > next) return null
    const head = body.subarray(headStart, headEnd).toString('latin1')
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(head)?.[1] ?? ''
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1] ?? null
    const isFile = /;\s*filename\*?=/i.test(disposition)
    // the part's content ends with the CRLF that precedes the next delimiter
    const valueEnd = body[next - 2] === 0x0d && body[next - 1] === 0x0a ? next - 2 : next
    parts.push({ name, isFile, value: body.subarray(headEnd + 4, valueEnd).toString('utf8'), start: at, end: next })
    at = next
  }
  const values: Record<string, string | string[]> = Object.create(null)
  for (const p of parts) if (p.name !== null && !p.isFile) add(values, p.name, p.value)
  return {
    values,
    without(name) {
      const kept: Buffer[] = []
      let cursor = 0
      for (const p of parts) {
        if (p.name === name && !p.isFile) {
          kept.push(body.subarray(cursor, p.start))
          cursor = p.end
        }
      }
      kept.push(body.subarray(cursor))
      return Buffer.concat(kept)
    },
  }
}
