/**
 * The rate-limiting periods and their calendar-aligned windows, in UTC: second, minute, hour and day
 * windows are aligned to the epoch; month and year windows start on the first of the month / year.
 *
 * `createWindowClock` computes the window that holds a given time; the month and year boundaries are
 * cached and recomputed only when a window ends, so a request costs a few divisions.
 */

export const PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const
export type Period = (typeof PERIODS)[number]

const FIXED_MS: Readonly<Record<'second' | 'minute' | 'hour' | 'day', number>> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }

/** One window: [start, end) in epoch ms. */
export interface Window {
  start: number
  end: number
}

/** The window of `period` that holds `now`. */
export function windowAt(period: Period, now: number): Window {
  if (period === 'month' || period === 'year') {
    const d = new Date(now)
    const y = d.getUTCFullYear()
    if (period === 'year') return { start: Date.UTC(y, 0, 1), end: Date.UTC(y + 1, 0, 1) }
    const m = d.getUTCMonth()
    return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) }
  }
  const ms = FIXED_MS[period]
  const start = Math.floor(now / ms) * ms
  return { start, end: start + ms }
}

/** `windowAt` for one period, caching the last window (months and years change rarely). */
export function createWindowClock(period: Period): (now: number) => Window {
  let last: Window = { start: 0, end: 0 }
  return (now) => {
    if (now >= last.start && now < last.end) return last
    last = windowAt(period, now)
    return last
  }
}
