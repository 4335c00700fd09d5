import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";

/**
 * Search attributes the launcher registers on the Temporal server (Keyword), so operators can filter runs in the
 * Temporal UI, e.g. `ConnectionId = "..."`.
 */
export const SEARCH_ATTRIBUTES = {
  connectionId: defineSearchAttributeKey("ConnectionId", SearchAttributeType.KEYWORD),
  iModelId: defineSearchAttributeKey("IModelId", SearchAttributeType.KEYWORD),
  runTrigger: defineSearchAttributeKey("RunTrigger", SearchAttributeType.KEYWORD),
};
