/**
 * The accounting of a file's items (README "Synchronization": what an item is per format): the items a connector or
 * the writer did not turn into elements, grouped by reason code and source class, with a count and a few example
 * identifiers.
 */
import type { NotWrittenItems } from "../../../domain/model";
import { MAX_EXAMPLES } from "./warnings";

/** Collects not-written items by code + class name, in the order each group was first added. */
export class NotWrittenTally {
  private readonly groups = new Map<string, NotWrittenItems>();

  /**
   * Counts `count` items (default 1) of `className` not written for reason `code`; `example` (an identifier) is kept
   * among the first {@link MAX_EXAMPLES} distinct ones.
   */
  add(code: string, className: string, example?: string, count = 1): void {
    this.merge(code, className, count, example === undefined ? [] : [example]);
  }

  /** Adds groups counted elsewhere (their examples merged, at most {@link MAX_EXAMPLES}). */
  addAll(items: readonly NotWrittenItems[]): void {
    for (const it of items) this.merge(it.code, it.className, it.count, it.examples);
  }

  private merge(code: string, className: string, count: number, examples: readonly string[]): void {
    if (count <= 0) return;
    const key = `${code}\u0000${className}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { code, className, count: 0, examples: [] };
      this.groups.set(key, g);
    }
    g.count += count;
    for (const example of examples)
      if (g.examples.length < MAX_EXAMPLES && !g.examples.includes(example)) g.examples.push(example);
  }

  /** Sum of the counts. */
  total(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.count;
    return n;
  }

  /** The groups, copies, in the order they were first added. */
  toList(): NotWrittenItems[] {
    return [...this.groups.values()].map((g) => ({ ...g, examples: [...g.examples] }));
  }
}

/** Sum of the counts of `items`. */
export function notWrittenTotal(items: readonly NotWrittenItems[]): number {
  return items.reduce((n, it) => n + it.count, 0);
}
