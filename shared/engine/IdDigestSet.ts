import { createHash } from 'node:crypto';

/**
 * A set of ids held as 64-bit digests: 8 bytes an id, so the ids of a million-asset run fit in
 * 8 MB. A digest collision can only make an id look present (about one chance in 10^7 at a
 * million ids), which at worst leaves one deleted asset unmarked for a run: never the reverse.
 */
export class IdDigestSet {
  private digests = new BigUint64Array(1024);
  private count = 0;
  private sorted = true;

  get size(): number {
    return this.count;
  }

  add(id: string): void {
    if (this.count === this.digests.length) {
      const grown = new BigUint64Array(this.digests.length * 2);
      grown.set(this.digests);
      this.digests = grown;
    }
    this.digests[this.count++] = digestOf(id);
    this.sorted = false;
  }

  has(id: string): boolean {
    if (!this.sorted) {
      this.digests.subarray(0, this.count).sort();
      this.sorted = true;
    }
    const wanted = digestOf(id);
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.digests[middle] as bigint;
      if (value === wanted) return true;
      if (value < wanted) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}

function digestOf(id: string): bigint {
  return createHash('sha1').update(id, 'utf8').digest().readBigUInt64BE(0);
}
