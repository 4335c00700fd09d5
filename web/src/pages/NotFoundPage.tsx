/**
 * Pages for addresses that lead nowhere: an address that names no page of the portal, and an iModel or connection
 * that is not found or not shared with the signed-in user. The API answers both of the latter alike (404, as for an
 * unknown id: README.md "Authentication and users"), so the portal cannot tell them apart, and says so.
 */
import { Anchor, Text } from "@itwin/itwinui-react";
import { ApiRequestError } from "../api";
import { Hint, PageHeading } from "../components";
import { href } from "../hooks";

/** Whether an API error is the 404 of an unknown id or of one the caller may not see. */
export const isNotFound = (error: unknown): boolean => error instanceof ApiRequestError && error.status === 404;

export function NotFoundPage() {
  return (
    <>
      <PageHeading title="Page not found" />
      <Text as="p">
        This address names no page of the portal. <Anchor href={href("imodels")}>Go to the iModels</Anchor>.
      </Text>
    </>
  );
}

const KIND_TEXT = {
  iModel: { what: "iModel", title: "iModel not found or not shared with you", whose: "its team" },
  connection: {
    what: "connection",
    title: "Connection not found or not shared with you",
    whose: "the team of its iModel",
  },
} as const;

/** An iModel or connection the API answered 404 for: it does not exist, or the user is not in the team that sees it. */
export function NotSharedPage({ kind, id }: { kind: keyof typeof KIND_TEXT; id: string }) {
  const { what, title, whose } = KIND_TEXT[kind];
  return (
    <div data-testid="not-shared">
      <PageHeading title={title} />
      <Text as="p">
        There is no {what} <code>{id}</code> that you may see. Either it does not exist (it may have been deleted, or
        the address is mistyped), or it is not shared with you: an iModel, its connections and its runs are visible only
        to the members of its team and to administrators.
      </Text>
      <Hint>
        If you should see it, ask a manager of {whose} to add you; they need your user id, shown on your{" "}
        <Anchor href={href("account")}>Account</Anchor> page.
      </Hint>
      <Text as="p">
        <Anchor href={href("imodels")}>Go to your iModels</Anchor>
      </Text>
    </div>
  );
}
