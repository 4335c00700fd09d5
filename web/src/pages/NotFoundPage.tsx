import { Anchor, Text } from "@itwin/itwinui-react";
import { PageHeading } from "../components";
import { href } from "../hooks";

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
