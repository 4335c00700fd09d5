/** Reading the failure an activity ended with, for the workflows that turn it into a task or job error. */
import { ActivityFailure, ApplicationFailure } from "@temporalio/workflow";

/**
 * The error an activity ended with (its failure's cause): the ApplicationFailure type, if any, and the message.
 * @param err what awaiting the activity threw (usually an `ActivityFailure`).
 */
export function activityError(err: unknown): { type?: string; message: string } {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return {
    type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
    message: cause instanceof Error ? cause.message : String(cause),
  };
}
