/**
 * The chart written beside the results: grouped bars of added latency (scenario − its direct baseline,
 * µs) per scenario at p50 / p90 / p99 / p99.9. A hand-written SVG, so any browser opens it and no
 * charting dependency is needed. Negative values (the proxy measured faster than direct: noise) are
 * drawn below the zero line.
 */
import { PERCENTILES, PERCENTILE_LABEL, type BenchResults } from './results.js'

const COLORS = { p50: '#2b6cb0', p90: '#38a169', p99: '#dd6b20', p999: '#c53030' } as const

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** A "nice" axis step (1, 2 or 5 × 10^k) giving about `ticks` ticks over `span`. */
function niceStep(span: number, ticks: number): number {
  const raw = span / ticks
  const mag = 10 ** Math.floor(Math.log10(raw))
  const f = raw / mag
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag
}

export function renderSvg(run: BenchResults): string {
  const rows = run.results.filter((r) => r.added_us !== null)
  const bar = 14
  const groupGap = 26
  const left = 70
  const top = 70
  const plotH = 320
  const groupW = PERCENTILES.length * bar + groupGap
  const width = Math.max(520, left + rows.length * groupW + 30)
  const height = top + plotH + 120
  const values = rows.flatMap((r) => PERCENTILES.map((p) => r.added_us![p]))
  let max = Math.max(0, ...values)
  let min = Math.min(0, ...values)
  if (max === min) max = 1
  const step = niceStep(max - min, 6)
  max = Math.ceil(max / step) * step
  min = Math.floor(min / step) * step
  const y = (v: number) => top + ((max - v) / (max - min)) * plotH
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`)
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">Latency added by the proxy (µs, vs direct, same run)</text>`)
  const e = run.env
  out.push(`<text x="${left}" y="40" fill="#555">${esc(`${e.date} · node ${e.node} · ${e.cores} × ${e.cpu} · ${e.workers} workers · ${e.connections} conns · ${e.rate} req/s fixed rate · ${e.rounds} round(s) · load ${e.load_before.map((l) => l.toFixed(2)).join(' ')}`)}</text>`)
  // legend
  PERCENTILES.forEach((p, i) => {
    const x = left + i * 80
    out.push(`<rect x="${x}" y="50" width="10" height="10" fill="${COLORS[p]}"/><text x="${x + 14}" y="59">${PERCENTILE_LABEL[p]}</text>`)
  })
  // grid + axis labels
  for (let v = min; v <= max + step / 2; v += step) {
    const yy = y(v).toFixed(1)
    out.push(`<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#000' : '#e2e2e2'}"/>`)
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${Math.round(v)}</text>`)
  }
  rows.forEach((r, gi) => {
    const gx = left + groupGap / 2 + gi * groupW
    PERCENTILES.forEach((p, i) => {
      const v = r.added_us![p]
      const x = gx + i * bar
      const y0 = y(Math.max(0, v))
      const h = Math.max(1, Math.abs(y(v) - y(0)))
      out.push(`<rect x="${x}" y="${y0.toFixed(1)}" width="${bar - 2}" height="${h.toFixed(1)}" fill="${COLORS[p]}"><title>${esc(`${r.name} ${PERCENTILE_LABEL[p]}: ${Math.round(v)} µs added`)}</title></rect>`)
      const ty = v >= 0 ? y0 - 3 : y0 + h + 9
      out.push(`<text x="${x + (bar - 2) / 2}" y="${ty.toFixed(1)}" text-anchor="middle" font-size="8" fill="#333">${Math.round(v)}</text>`)
    })
    const cx = gx + (PERCENTILES.length * bar) / 2
    out.push(`<text x="${cx}" y="${top + plotH + 14}" text-anchor="end" transform="rotate(-35 ${cx} ${top + plotH + 14})">${esc(r.name)}</text>`)
  })
  out.push(`<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">added µs</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
