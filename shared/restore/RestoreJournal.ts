import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** One line per asset restored and verified into one cloud. */
interface JournalLine {
  cloud: string;
  id: string;
  md5: string;
  bytes: number;
  at: string;
}

/**
 * What earlier restores into a cloud uploaded and verified, as JSON Lines appended (synchronously)
 * after each verified asset, so a rerun after a kill skips them without an upload or an Admin call.
 * A line cut short by a kill is ignored.
 */
export class RestoreJournal {
  private readonly done = new Map<string, string>();
  /** A killed run may have left half a line: the next line starts on a line of its own. */
  private needsNewline = false;

  constructor(
    private readonly file: string,
    private readonly cloud: string,
  ) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    this.needsNewline = text.length > 0 && !text.endsWith('\n');
    for (const raw of text.split('\n')) {
      try {
        const line = JSON.parse(raw) as JournalLine;
        if (line.cloud === cloud) this.done.set(line.id, `${line.md5}/${line.bytes}`);
      } catch {
        // A partial last line from a killed run.
      }
    }
  }

  /** Whether this exact copy (id, MD5 and size) was already restored and verified into this cloud. */
  has(id: string, md5: string | undefined, bytes: number): boolean {
    return md5 !== undefined && this.done.get(id) === `${md5}/${bytes}`;
  }

  record(id: string, md5: string, bytes: number, at: Date): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const line: JournalLine = { cloud: this.cloud, id, md5, bytes, at: at.toISOString() };
    appendFileSync(this.file, `${this.needsNewline ? '\n' : ''}${JSON.stringify(line)}\n`);
    this.needsNewline = false;
    this.done.set(id, `${md5}/${bytes}`);
  }
}
