import { BadRequest } from './errors.js';
import type { DoubleAsset } from './types.js';

export type Predicate = (asset: DoubleAsset) => boolean;

type Comparator = '=' | '>' | '<' | '>=' | '<=';

interface TermToken {
  kind: 'term';
  field: string;
  comparator: Comparator;
  value: string;
  /** `[from TO to]`, either end `*` for open. */
  range?: readonly [string, string];
}

type Token = TermToken | { kind: 'and' | 'or' | 'not' | 'open' | 'close' };

const DAY_MS = 86_400_000;
/** `m` is a month, as in Cloudinary's `uploaded_at>1m` ("within the past month"). */
const RELATIVE_UNITS_MS: Record<string, number> = {
  h: 3_600_000,
  d: DAY_MS,
  w: 7 * DAY_MS,
  m: 30 * DAY_MS,
  y: 365 * DAY_MS,
};
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

function readQuoted(text: string, start: number): [value: string, end: number] {
  let value = '';
  let i = start + 1;
  while (i < text.length && text[i] !== '"') {
    if (text[i] === '\\' && i + 1 < text.length) {
      // Keep `\*` distinguishable from a wildcard.
      value += text[i + 1] === '*' ? '\\*' : text[i + 1];
      i += 2;
    } else {
      value += text[i];
      i += 1;
    }
  }
  if (i >= text.length) throw new BadRequest('Unterminated quote in expression');
  return [value, i + 1];
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i] ?? '';
    if (/\s/.test(char)) {
      i += 1;
    } else if (char === '(' || char === ')') {
      tokens.push({ kind: char === '(' ? 'open' : 'close' });
      i += 1;
    } else if (char === '-' || char === '!') {
      tokens.push({ kind: 'not' });
      i += 1;
    } else {
      const word = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i))?.[0] ?? '';
      if (word === 'AND' || word === 'OR' || word === 'NOT') {
        tokens.push({ kind: word === 'AND' ? 'and' : word === 'OR' ? 'or' : 'not' });
        i += word.length;
        continue;
      }
      const operator = /^(:>=|:<=|:>|:<|:|>=|<=|>|<|=)/.exec(text.slice(i + word.length))?.[0];
      if (word.length === 0 || operator === undefined) {
        throw new BadRequest(
          `The double supports only field terms (field:value); cannot read "${text.slice(i)}"`,
        );
      }
      i += word.length + operator.length;
      const comparator = (operator === ':' ? '=' : operator.replace(':', '')) as Comparator;
      let value: string;
      let range: readonly [string, string] | undefined;
      if (text[i] === '"') {
        [value, i] = readQuoted(text, i);
      } else if (text[i] === '[') {
        const close = text.indexOf(']', i);
        if (close < 0) throw new BadRequest('Unterminated range in expression');
        const parts = text
          .slice(i + 1, close)
          .trim()
          .split(/\s+TO\s+/);
        if (parts.length !== 2) throw new BadRequest('A range reads [from TO to]');
        range = [parts[0] ?? '*', parts[1] ?? '*'];
        value = '';
        i = close + 1;
      } else {
        const bare = /^[^\s()]*/.exec(text.slice(i))?.[0] ?? '';
        value = bare;
        i += bare.length;
      }
      tokens.push({ kind: 'term', field: word, comparator, value, ...(range && { range }) });
    }
  }
  return tokens;
}

function parseDate(value: string, now: Date): number {
  const relative = /^(\d+)([hdwmy])$/.exec(value);
  if (relative)
    return now.getTime() - Number(relative[1]) * (RELATIVE_UNITS_MS[relative[2] ?? 'd'] ?? DAY_MS);
  const absolute = Date.parse(value);
  if (Number.isNaN(absolute)) throw new BadRequest(`Cannot read the date "${value}"`);
  return absolute;
}

function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(value);
  if (!match) throw new BadRequest(`Cannot read the number "${value}"`);
  return Number(match[1]) * (SIZE_UNITS[(match[2] ?? 'b').toLowerCase()] ?? 1);
}

function compareWith(comparator: Comparator, actual: number, expected: number): boolean {
  switch (comparator) {
    case '=':
      return actual === expected;
    case '>':
      return actual > expected;
    case '<':
      return actual < expected;
    case '>=':
      return actual >= expected;
    case '<=':
      return actual <= expected;
  }
}

function rangePredicate(
  [from, to]: readonly [string, string],
  read: (v: string) => number,
): (actual: number) => boolean {
  const low = from === '*' ? -Infinity : read(from);
  const high = to === '*' ? Infinity : read(to);
  return (actual) => actual >= low && actual <= high;
}

function numericPredicate(
  term: TermToken,
  read: (v: string) => number,
  dayGranular = false,
): (n: number) => boolean {
  if (term.range) return rangePredicate(term.range, read);
  const expected = read(term.value);
  if (term.comparator === '=' && dayGranular && /^\d{4}-\d{2}-\d{2}$/.test(term.value)) {
    return (actual) => actual >= expected && actual < expected + DAY_MS;
  }
  if (term.comparator === '=' && dayGranular) {
    return (actual) => Math.floor(actual / 1000) === Math.floor(expected / 1000);
  }
  return (actual) => compareWith(term.comparator, actual, expected);
}

/** Exact match, or a prefix match for a trailing unescaped `*`. */
function textPredicate(term: TermToken): (actual: string) => boolean {
  if (term.comparator !== '=' || term.range) {
    throw new BadRequest(`The double compares ${term.field} only with ":"`);
  }
  const value = term.value;
  if (value.endsWith('*') && !value.endsWith('\\*')) {
    const prefix = value.slice(0, -1).replaceAll('\\*', '*');
    return (actual) => actual.startsWith(prefix);
  }
  const exact = value.replaceAll('\\*', '*');
  return (actual) => actual === exact;
}

/** `a/b` is that folder; `a/*` is `a` and everything below it; `*` is everything. */
function folderPredicate(term: TermToken): (folder: string) => boolean {
  if (term.comparator !== '=' || term.range)
    throw new BadRequest(`The double compares ${term.field} only with ":"`);
  const value = term.value.replace(/^\/+/, '');
  if (value === '*') return () => true;
  if (value.endsWith('/*')) {
    const base = value.slice(0, -2);
    return (folder) => folder === base || folder.startsWith(`${base}/`);
  }
  const exact = value.replace(/\/+$/, '');
  return (folder) => folder === exact;
}

function folderOf(publicId: string): string {
  const slash = publicId.lastIndexOf('/');
  return slash < 0 ? '' : publicId.slice(0, slash);
}

function fileNameOf(asset: DoubleAsset): string {
  const base = asset.public_id.slice(asset.public_id.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return asset.resource_type === 'raw' && dot > 0 ? base.slice(0, dot) : base;
}

function compileTerm(term: TermToken, now: Date): Predicate {
  const readDate = (v: string): number => parseDate(v, now);
  switch (term.field) {
    case 'resource_type':
    case 'type':
    case 'asset_id':
    case 'display_name':
    case 'public_id': {
      const test = textPredicate(term);
      const field = term.field;
      return (asset) => test(asset[field]);
    }
    case 'format': {
      const test = textPredicate(term);
      return (asset) => test(asset.format ?? '');
    }
    case 'filename': {
      const test = textPredicate(term);
      return (asset) => test(fileNameOf(asset));
    }
    case 'status': {
      const test = textPredicate(term);
      return () => test('active');
    }
    case 'access_mode': {
      const test = textPredicate(term);
      return () => test('public');
    }
    case 'tags':
    case 'tag': {
      const test = textPredicate(term);
      return (asset) => asset.tags.some(test);
    }
    case 'folder': {
      // Fixed folders (the public id's path) and dynamic folders (asset_folder) both count.
      const test = folderPredicate(term);
      return (asset) => test(folderOf(asset.public_id)) || test(asset.asset_folder);
    }
    case 'asset_folder': {
      const test = folderPredicate(term);
      return (asset) => test(asset.asset_folder);
    }
    case 'bytes': {
      const test = numericPredicate(term, parseSize);
      return (asset) => test(asset.bytes);
    }
    case 'width':
    case 'height': {
      const test = numericPredicate(term, parseSize);
      const field = term.field;
      return (asset) => asset[field] !== undefined && test(asset[field] ?? 0);
    }
    case 'uploaded_at': {
      const test = numericPredicate(term, readDate, true);
      return (asset) => test(Date.parse(asset.uploaded_at));
    }
    case 'created_at': {
      const test = numericPredicate(term, readDate, true);
      return (asset) => test(Date.parse(asset.created_at));
    }
    // Both readings of the change time (CLOUDINARY.md, "Incremental listing"; the docs name
    // `last_updated` as a date field and its parts only in results): the whole, and each part.
    case 'last_updated':
    case 'last_updated.updated_at':
    case 'updated_at': {
      const test = numericPredicate(term, readDate, true);
      return (asset) => test(Date.parse(asset.updated_at));
    }
    case 'last_updated.tags_updated_at':
    case 'last_updated.context_updated_at':
    case 'last_updated.metadata_updated_at':
    case 'last_updated.public_id_updated_at': {
      const test = numericPredicate(term, readDate, true);
      const field = term.field.slice('last_updated.'.length) as
        'tags_updated_at' | 'context_updated_at' | 'metadata_updated_at' | 'public_id_updated_at';
      // An asset never changed that way has no such time and matches no comparison.
      return (asset) => asset[field] !== undefined && test(Date.parse(asset[field] ?? ''));
    }
    default:
      throw new BadRequest(`The double does not support the search field "${term.field}"`);
  }
}

/**
 * Compiles the subset of Cloudinary's Lucene-like expressions the double supports: `field:value`,
 * `field>value` (and `>=`, `<`, `<=`, `=`), quoted values, trailing `*` wildcards, `[a TO b]`
 * ranges, relative dates (`1h`, `2d`, `3w`, `1m` = a month, `1y`), AND (also implicit), OR, NOT,
 * parentheses. Anything else is a 400, so a test never silently gets the wrong result set.
 */
export function compileExpression(expression: string | undefined, now: Date): Predicate {
  if (expression === undefined || expression.trim() === '') return () => true;
  const tokens = tokenize(expression);
  let position = 0;
  const peek = (): Token | undefined => tokens[position];

  const parseUnary = (): Predicate => {
    const token = peek();
    if (token === undefined) throw new BadRequest('Unexpected end of expression');
    position += 1;
    if (token.kind === 'not') {
      const inner = parseUnary();
      return (asset) => !inner(asset);
    }
    if (token.kind === 'open') {
      const inner = parseOr();
      if (peek()?.kind !== 'close') throw new BadRequest('Missing ")" in expression');
      position += 1;
      return inner;
    }
    if (token.kind === 'term') return compileTerm(token, now);
    throw new BadRequest(`Unexpected ${token.kind.toUpperCase()} in expression`);
  };

  const parseAnd = (): Predicate => {
    let left = parseUnary();
    for (
      let next = peek();
      next !== undefined && next.kind !== 'or' && next.kind !== 'close';
      next = peek()
    ) {
      if (next.kind === 'and') position += 1;
      const right = parseUnary();
      const before = left;
      left = (asset) => before(asset) && right(asset);
    }
    return left;
  };

  const parseOr = (): Predicate => {
    let left = parseAnd();
    while (peek()?.kind === 'or') {
      position += 1;
      const right = parseAnd();
      const before = left;
      left = (asset) => before(asset) || right(asset);
    }
    return left;
  };

  const predicate = parseOr();
  if (position < tokens.length) throw new BadRequest('Unexpected ")" in expression');
  return predicate;
}
