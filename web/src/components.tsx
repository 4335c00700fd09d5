/** Pieces several pages share: page headings, API error messages, result badges, the data table. */
import { Alert, Badge, StatusMessage, Text } from "@itwin/itwinui-react";
import { useEffect, useRef, type ReactNode } from "react";
import { ApiRequestError } from "./api";
import { resultStatus } from "./format";

/** The page's heading: sets the document title and takes the focus when the page opens (keyboard and screen readers). */
export function PageHeading({ title, children }: { title: string; children?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · imodel-sync`;
  }, [title]);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <div className="portal-page-heading">
      <h1 ref={ref} tabIndex={-1} className="portal-h1">
        {title}
      </h1>
      {children}
    </div>
  );
}

/** An error as the API words it (message, then its code), or a plain error's message. */
export function ErrorAlert({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  const e = error as Error;
  return (
    <Alert type="negative" className="portal-alert" role="alert">
      {what ? `${what}: ` : ""}
      {e.message}
      {e instanceof ApiRequestError ? <span className="portal-code"> ({e.code})</span> : null}
    </Alert>
  );
}

/** The API's words about one field: the details of `error` whose target is `target` (and the error itself when `all`). */
export function fieldMessage(error: unknown, target: string): ReactNode {
  if (!(error instanceof ApiRequestError)) return undefined;
  const details = error.detailsFor(target);
  if (details.length === 0) return undefined;
  return `${error.message} (${details.map((d) => d.code).join(", ")})`;
}

/** True when an API error has a detail for one of `targets` (so it is shown next to that field, not on its own). */
export function isFieldError(error: unknown, targets: string[]): boolean {
  return error instanceof ApiRequestError && targets.some((t) => error.detailsFor(t).length > 0);
}

/** A run, job or task result as a badge ("Success", "Error", ...). */
export function ResultBadge({ result, label }: { result: string; label?: string }) {
  const status = resultStatus(result);
  return (
    <Badge backgroundColor={status ? `${status}` : "ash"} className="portal-badge">
      {label ?? result}
    </Badge>
  );
}

/** A connection's status as a badge. */
export function StatusBadge({ status }: { status: string }) {
  const color = status === "Active" ? "positive" : status === "Deleting" ? "warning" : "ash";
  return (
    <Badge backgroundColor={color} className="portal-badge">
      {status}
    </Badge>
  );
}

/** A muted explanation under a control. */
export function Hint({ children, id }: { children: ReactNode; id?: string }) {
  return (
    <Text variant="small" isMuted as="p" id={id} className="portal-hint">
      {children}
    </Text>
  );
}

/** A message next to a field (status negative). */
export function FieldStatus({ children }: { children: ReactNode }) {
  if (!children) return null;
  return <StatusMessage status="negative">{children}</StatusMessage>;
}
