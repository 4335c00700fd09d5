/**
 * Signing in with an API key. The key is checked with `GET /users/me` and then kept in this tab's memory only
 * (README.md "Portal"): not in a URL, a log, localStorage, sessionStorage or a cookie. Reloading or closing the tab,
 * or signing out, forgets it.
 */
import { Button, LabeledInput, Surface, Text } from "@itwin/itwinui-react";
import { useState, type FormEvent } from "react";
import { ApiRequestError } from "../api";
import { ErrorAlert, PageHeading } from "../components";

export function SignInPage({ onSignIn, notice }: { onSignIn: (key: string) => Promise<void>; notice?: string }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!key.trim()) {
      setError(new Error("Enter your API key."));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await onSignIn(key.trim());
    } catch (err) {
      setError(
        err instanceof ApiRequestError && err.status === 401
          ? new ApiRequestError(401, { code: err.code, message: "This API key is not valid." })
          : err,
      );
      setBusy(false);
    }
  }

  return (
    <main id="main-content" className="portal-signin">
      <Surface elevation={1} className="portal-signin-card">
        <PageHeading title="Sign in to imodel-sync" />
        <Text as="p">
          Keep your iModels in step with your design files: pick source files, synchronize them, and follow every run.
        </Text>
        {notice ? (
          <Text as="p" role="status" className="portal-notice">
            {notice}
          </Text>
        ) : null}
        <form onSubmit={(e) => void submit(e)} noValidate autoComplete="off">
          <LabeledInput
            label="API key"
            type="password"
            name="api-key"
            autoComplete="off"
            spellCheck={false}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            message="The administrator gives you a key (it starts with isk_). The portal keeps it in this tab's memory only: reloading or closing the tab signs you out."
            required
          />
          <ErrorAlert error={error} />
          <Button type="submit" styleType="high-visibility" disabled={busy} className="portal-signin-button">
            {busy ? "Signing in…" : "Sign in"}
          </Button>
        </form>
      </Surface>
    </main>
  );
}
