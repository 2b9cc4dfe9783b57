/** A titled table of preformatted cells; numeric-looking cells are right-aligned. */
export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  notes?: string[];
}

const NUMERIC = /^[-+−]?[\d.,]+\s*(%|×|s|ms|MB|MiB|GiB|KB|\/s|MB\/s)?$|^[-+−]?\$[\d.,]+$|^—$/u;

export function renderTable(table: Table): string {
  const widths = table.head.map((h, i) =>
    Math.max(h.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) =>
        NUMERIC.test(cell) && i > 0 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  const out = [`\n${table.title}`, line(table.head), rule, ...table.rows.map(line)];
  for (const note of table.notes ?? []) out.push(`  ${note}`);
  return out.join('\n');
}

/** A number with a fixed count of decimals and thousands separators. */
export function num(value: number | undefined, decimals = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Megabytes (10^6 bytes), as throughput is usually quoted. */
export function mb(bytes: number | undefined, decimals = 0): string {
  return bytes === undefined ? '—' : num(bytes / 1e6, decimals);
}

/** Mebibytes (2^20 bytes), as memory is usually quoted. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? '—' : `${num(bytes / 2 ** 20)} MiB`;
}

export function pct(ratio: number | undefined, decimals = 0): string {
  return ratio === undefined || !Number.isFinite(ratio) ? '—' : `${num(ratio * 100, decimals)}%`;
}

export function usd(value: number): string {
  return value >= 100 ? `$${num(value, 0)}` : value >= 1 ? `$${num(value, 2)}` : `$${num(value, 4)}`;
}

export function seconds(value: number | undefined, decimals = 1): string {
  return value === undefined ? '—' : `${num(value, decimals)} s`;
}
