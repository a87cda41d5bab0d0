/**
 * The chart written beside the results: grouped bars of added latency (scenario − its direct baseline,
 * µs) per scenario at p50 / p90 / p99 / p99.9. A hand-written SVG, so any browser opens it and no
 * charting dependency is needed. The scale is logarithmic (p50 is ~100 µs where p99.9 can be ms), and
 * signed: negative values (the proxy measured faster than direct: noise) go below the zero line.
 */
import { PERCENTILES, PERCENTILE_LABEL, type BenchResults } from './results.js'

const COLORS = { p50: '#2b6cb0', p90: '#38a169', p99: '#dd6b20', p999: '#c53030' } as const

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** signed log scale: 0 → 0, ±10 → ±1, ±100 → ±2 ... (log10(1 + |v|)) */
const slog = (v: number) => Math.sign(v) * Math.log10(1 + Math.abs(v))

export function renderSvg(run: BenchResults): string {
  const rows = run.results.filter((r) => r.added_us !== null)
  const bar = 16
  const groupGap = 28
  const left = 70
  const top = 90
  const plotH = 320
  const groupW = PERCENTILES.length * bar + groupGap
  const width = Math.max(760, left + rows.length * groupW + 30)
  const height = top + plotH + 120
  const values = rows.flatMap((r) => PERCENTILES.map((p) => r.added_us![p]))
  // axis in decades of the signed log scale
  const max = Math.max(1, Math.ceil(slog(Math.max(0, ...values))))
  const min = Math.min(0, Math.floor(slog(Math.min(0, ...values))))
  const y = (v: number) => top + ((max - slog(v)) / (max - min)) * plotH
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`)
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">Latency added by the proxy (µs, vs direct, same run)</text>`)
  const e = run.env
  out.push(`<text x="${left}" y="38" fill="#555">${esc(`${e.date} · node ${e.node} · ${e.cores} × ${e.cpu} · load ${e.load_before.map((l) => l.toFixed(2)).join(' ')}`)}</text>`)
  out.push(`<text x="${left}" y="53" fill="#555">${esc(`${e.workers} workers · ${e.connections} conns · ${e.rate} req/s (${e.rate_gen}) · ${e.rounds} round(s), medians · log scale`)}</text>`)
  // legend
  PERCENTILES.forEach((p, i) => {
    const x = left + i * 80
    out.push(`<rect x="${x}" y="64" width="10" height="10" fill="${COLORS[p]}"/><text x="${x + 14}" y="73">${PERCENTILE_LABEL[p]}</text>`)
  })
  // grid + axis labels
  for (let d = min; d <= max; d++) {
    const v = d === 0 ? 0 : Math.sign(d) * 10 ** Math.abs(d)
    const yy = y(v).toFixed(1)
    out.push(`<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#000' : '#e2e2e2'}"/>`)
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v}</text>`)
  }
  rows.forEach((r, gi) => {
    const gx = left + groupGap / 2 + gi * groupW
    PERCENTILES.forEach((p, i) => {
      const v = r.added_us![p]
      const x = gx + i * bar
      const y0 = Math.min(y(v), y(0))
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
