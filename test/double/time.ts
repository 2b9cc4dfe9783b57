const HOUR_MS = 3_600_000;

/** Cloudinary's timestamp style: `2025-08-08T16:12:34Z`. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function startOfNextHour(ms: number): Date {
  return new Date((Math.floor(ms / HOUR_MS) + 1) * HOUR_MS);
}

export function hourWindow(ms: number): number {
  return Math.floor(ms / HOUR_MS);
}

/** The date style of the 420 message: `2025-08-08 17:00:00 UTC`. */
export function rateLimitMessageDate(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
