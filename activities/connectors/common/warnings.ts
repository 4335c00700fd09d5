/**
 * The connectors' warning collector: problems that repeat (per entity, per parser message) become one task warning
 * per code and target, with a count and a few examples, instead of one warning per occurrence.
 */
import type { TaskWarning } from "../types";

/** Message of a tallied warning, written once its final count and examples are known. */
export type TallyMessage = (count: number, examples: string[]) => string;

/** Options of {@link WarningTally.add}. */
export interface TallyOptions {
  /** What this occurrence was (e.g. an entity handle); the first {@link MAX_EXAMPLES} distinct ones are kept. */
  example?: string;
  /** Occurrences this call adds (default 1). */
  count?: number;
  /** Keeps apart warnings with the same code and target (e.g. the text of a parser message). */
  key?: string;
  /** Report `count` even when it is 1 (the warning is a summary that always carries its count). */
  alwaysCount?: boolean;
}

/** Examples kept per warning. */
export const MAX_EXAMPLES = 5;

interface TallyItem {
  code: string;
  target?: string;
  count: number;
  examples: string[];
  message: TallyMessage;
  alwaysCount: boolean;
}

/**
 * Deduplicates warnings by code + target (+ `key`), with a count and the first few examples, in the order each was
 * first added. The message of the first `add` of a warning is the one used.
 */
export class WarningTally {
  private readonly items = new Map<string, TallyItem>();

  add(code: string, target: string | undefined, message: TallyMessage, options: TallyOptions = {}): void {
    const key = `${code}\u0000${target ?? ""}\u0000${options.key ?? ""}`;
    let item = this.items.get(key);
    if (!item) {
      item = { code, target, count: 0, examples: [], message, alwaysCount: options.alwaysCount === true };
      this.items.set(key, item);
    }
    item.count += options.count ?? 1;
    const example = options.example;
    if (example !== undefined && item.examples.length < MAX_EXAMPLES && !item.examples.includes(example))
      item.examples.push(example);
  }

  /**
   * One warning per code + target (+ key); `count` when it is more than 1 or `alwaysCount` was asked for; `examples`
   * (the first few, see {@link MAX_EXAMPLES}) when any were given.
   */
  toWarnings(): TaskWarning[] {
    return [...this.items.values()].map((it) => {
      const w: TaskWarning = { code: it.code, message: it.message(it.count, it.examples) };
      if (it.target !== undefined) w.target = it.target;
      if (it.count > 1 || it.alwaysCount) w.count = it.count;
      if (it.examples.length > 0) w.examples = [...it.examples];
      return w;
    });
  }
}

/** `1 entity`, `2 entities`: `n` and the singular or plural noun. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The examples joined by commas, with `, …` when `count` is larger than the number of examples. */
export function listed(examples: string[], count: number): string {
  return examples.join(", ") + (count > examples.length ? ", …" : "");
}
