/**
 * The signed-in user's account: name, email, role, owner token, and the user id that a manager needs to add them to an
 * iModel's team (only administrators can list users: README.md "Authentication and users").
 */
import { Button, Text } from "@itwin/itwinui-react";
import { useState } from "react";
import { Hint, PageHeading } from "../components";
import { useSession } from "../context";
import { formatDateTime } from "../format";

/** Puts `text` on the clipboard when the browser allows it (a secure context); false otherwise. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A value to copy: shown selectable, with a Copy button. */
export function CopyableValue({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState<string>();
  return (
    <span className="portal-copyable">
      <code className="portal-copy-value">{value}</code>{" "}
      <Button
        size="small"
        aria-label={`Copy ${label}`}
        onClick={() =>
          void copyText(value).then((ok) => setCopied(ok ? "Copied." : "Select the text and copy it by hand."))
        }
      >
        Copy
      </Button>
      <span role="status" className="portal-copy-status">
        {copied ? ` ${copied}` : ""}
      </span>
    </span>
  );
}

export function AccountPage() {
  const { user } = useSession();
  const token = user.token;
  return (
    <>
      <PageHeading title="Your account" />
      <dl className="portal-facts">
        <dt>Name</dt>
        <dd>{user.name}</dd>
        <dt>Email</dt>
        <dd>{user.email}</dd>
        <dt>Role</dt>
        <dd>{user.role === "admin" ? "administrator: sees and may change everything" : "user"}</dd>
        <dt>User id</dt>
        <dd data-testid="user-id">
          <CopyableValue value={user.id} label="your user id" />
          <Hint>
            A manager of an iModel&apos;s team adds you with this id (only administrators can list users). Nothing else
            is needed: your API key stays with you.
          </Hint>
        </dd>
        <dt>Owner token</dt>
        <dd>
          {token
            ? token.state === "Expired"
              ? `expired on ${formatDateTime(token.expiresDateTime)}: your next request renews it`
              : `valid until ${formatDateTime(token.expiresDateTime)}; renewed by any visit from ${formatDateTime(token.refreshFromDateTime)}`
            : "none yet"}
          <Hint>Scheduled syncs of the connections you own run on your behalf with it.</Hint>
        </dd>
      </dl>
      <Text as="p">
        Your API key is kept in this tab&apos;s memory only: reloading or closing the tab, or Sign out, forgets it.
      </Text>
    </>
  );
}
