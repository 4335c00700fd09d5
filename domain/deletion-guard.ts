/**
 * The deletion guard (docs/product-rules.md "Synchronization integrity"; README "Synchronization"): a structurally
 * complete file can still be the wrong file (an export of one storey saved over the whole building, a filter left
 * on). A run that would delete a large share of a file's elements holds that file instead: its task ends `Error` with
 * `DeletionGuard`, nothing of the file is written, and a run asked with `{"confirmDeletions": true}` applies the
 * deletions. Pure rules, no I/O.
 */

/** A connection's deletion guard settings. */
export interface DeletionGuard {
  /** false: deletions are never held. */
  enabled: boolean;
  /** Holds a file when more than this share (0 ≤ fraction < 1) of its elements in the iModel would be deleted... */
  fraction: number;
  /** ...and at least this many (≥ 1). */
  minElements: number;
}

/** The guard of a connection that never set one: more than half of a file's elements, and at least 10. */
export const DEFAULT_DELETION_GUARD: Readonly<DeletionGuard> = Object.freeze({
  enabled: true,
  fraction: 0.5,
  minElements: 10,
});

/** The effective guard of a connection (its own settings, or the defaults). */
export function deletionGuardOf(c: { deletionGuard?: Partial<DeletionGuard> }): DeletionGuard {
  return { ...DEFAULT_DELETION_GUARD, ...(c.deletionGuard ?? {}) };
}

/**
 * Whether the guard holds a file whose write would delete `deleted` of the `existing` elements it has in the iModel:
 * enabled, `deleted ≥ minElements` and `deleted > fraction × existing`.
 */
export function deletionHeld(guard: DeletionGuard, existing: number, deleted: number): boolean {
  return guard.enabled && deleted >= guard.minElements && deleted > guard.fraction * existing;
}

/** `more than 50 % and at least 10`: the guard's rule in words, for messages. */
export function describeDeletionGuard(guard: DeletionGuard): string {
  return `more than ${formatPercent(guard.fraction)} of its elements and at least ${guard.minElements}`;
}

/** `0.5` → `50 %`, `0.125` → `12.5 %`. */
export function formatPercent(share: number): string {
  return `${Math.round(share * 1000) / 10} %`;
}
