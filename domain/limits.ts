/** Limits the API enforces (docs/product-rules.md "Limits"; they mirror the public iTwin Synchronization API). */
export const LIMITS = {
  /** Connections per iModel. */
  connectionsPerIModel: 100,
  /** Composite models per iModel, across all of its connections. */
  compositeModelsPerIModel: 250,
  /** Largest page size for `$top`. */
  maxPageSize: 1000,
  /** Default page size when `$top` is absent. */
  defaultPageSize: 100,
} as const;
