/** What every page of a signed-in session reads: the API client, the user, and the deployment's configuration. */
import { createContext, useContext } from "react";
import type { Api } from "./api";
import type { PortalConfig, User } from "./types";

export interface Session {
  api: Api;
  user: User;
  config: PortalConfig | undefined;
  /** Reads the user again (after a change of owner or token). */
  refreshUser: () => Promise<void>;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in session");
  return s;
}

/** The Temporal UI's page of a workflow, when the API told the portal where the UI is. */
export function workflowUrl(config: PortalConfig | undefined, workflowId: string): string | undefined {
  if (!config?.temporalUi?.url) return undefined;
  const { url, namespace } = config.temporalUi;
  return `${url}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
