// A set of input line numbers written compactly as ranges, "1-300,302,305-310":
// the lines a batch submit left out because they had already succeeded.
//
// In:  line numbers in increasing order (the split pass reads the input in
//      order), or the text a manifest recorded.  Out: the text; membership.
// Owns the format. After a partial `run` the done lines are mostly one run of
// numbers, so the text stays short; it is at worst a few bytes per line.

/** Builds the text from line numbers added in increasing order. */
export class LineRangesBuilder {
  private readonly parts: string[] = [];
  private start = 0;
  private end = 0;
  count = 0;

  add(line: number): void {
    if (this.count > 0 && line <= this.end) throw new Error(`line ${line} added after line ${this.end}: lines must increase`);
    this.count += 1;
    if (this.count > 1 && line === this.end + 1) {
      this.end = line;
      return;
    }
    this.flush();
    this.start = line;
    this.end = line;
  }

  toString(): string {
    this.flush();
    return this.parts.join(',');
  }

  private flush(): void {
    if (this.start === 0) return;
    this.parts.push(this.start === this.end ? String(this.start) : `${this.start}-${this.end}`);
    this.start = 0;
  }
}

/** The lines of a ranges text; membership by binary search. */
export class LineRanges {
  /** Flattened [start, end] pairs, sorted. */
  private readonly bounds: number[];

  constructor(text: string) {
    const bounds: number[] = [];
    for (const part of text.split(',')) {
      if (part === '') continue;
      const match = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!match) throw new Error(`not a line range: ${JSON.stringify(part)}`);
      const start = Number(match[1]);
      const end = match[2] === undefined ? start : Number(match[2]);
      if (end < start || (bounds.length > 0 && start <= (bounds[bounds.length - 1] as number))) {
        throw new Error(`line ranges out of order at ${JSON.stringify(part)}`);
      }
      bounds.push(start, end);
    }
    this.bounds = bounds;
  }

  has(line: number): boolean {
    let low = 0;
    let high = this.bounds.length / 2 - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const start = this.bounds[2 * middle] as number;
      const end = this.bounds[2 * middle + 1] as number;
      if (line < start) high = middle - 1;
      else if (line > end) low = middle + 1;
      else return true;
    }
    return false;
  }
}
