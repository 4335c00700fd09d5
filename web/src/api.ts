/**
 * Calls to the API with the signed-in user's key.
 *
 * The key lives only in the closure of the client made at sign-in (and so in this tab's memory): it is sent as
 * `authorization: Bearer <key>` and never put in a URL, a log, localStorage, sessionStorage or a cookie. Signing out
 * drops the client; reloading or closing the tab forgets the key.
 */
import type { ErrorInfo, User } from "./types";

/** An answer of the API that is not a success: its status and `{code, message, details}` (README.md "API"). */
export class ApiRequestError extends Error {
  readonly code: string;
  readonly details: ErrorInfo[];
  constructor(
    readonly status: number,
    error: { code?: string; message?: string; details?: ErrorInfo[] } | undefined,
  ) {
    super(error?.message ?? `The API answered ${status}.`);
    this.code = error?.code ?? `HTTP${status}`;
    this.details = error?.details ?? [];
  }

  /** The details whose target is `target` or starts with `target.` (e.g. `sourceFiles.0.path`). */
  detailsFor(target: string): ErrorInfo[] {
    return this.details.filter((d) => d.target === target || d.target?.startsWith(`${target}.`));
  }
}

export interface Answer<T> {
  status: number;
  body: T;
}

export interface Api {
  get<T>(path: string): Promise<T>;
  send<T>(method: "POST" | "PUT" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<Answer<T>>;
}

/**
 * A client holding `key` in memory.
 * @param onUnauthorized called when the API answers 401 (the key was replaced or the user removed).
 */
export function createApi(key: string, onUnauthorized: () => void = () => undefined): Api {
  async function call<T>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    // A 303 (the run already active) is followed by the browser on the same origin, with the same headers.
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      if (res.status === 401) onUnauthorized();
      throw new ApiRequestError(res.status, (json as { error?: ErrorInfo & { details?: ErrorInfo[] } })?.error);
    }
    return { status: res.status, body: json as T };
  }
  return {
    get: async <T>(path: string) => (await call<T>("GET", path)).body,
    send: (method, path, body) => call(method, path, body),
  };
}

/** Checks a key by reading the caller's user record; the client is returned only when the key is valid. */
export async function signIn(key: string, onUnauthorized: () => void): Promise<{ api: Api; user: User }> {
  let signedIn = false;
  const api = createApi(key, () => {
    if (signedIn) onUnauthorized();
  });
  const { user } = await api.get<{ user: User }>("/users/me");
  signedIn = true;
  return { api, user };
}

/** `encodeURIComponent` for one path segment of an API URL. */
export const seg = (s: string) => encodeURIComponent(s);
