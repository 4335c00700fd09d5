/**
 * What each error code of a task or a run means for the person reading it, in the shape of the iTwin Synchronization
 * API's errors: a category (what failed: the source file, its connector, the iModel, or the service itself), whether
 * the user can fix it (`canUserFix`: a change to the file, the mapping, the settings or a visit) and whether running
 * again without any change can succeed (`retryable`). One table for the representations (api/representations.ts), the
 * failure notices and README.md "Codes of tasks", which lists the same rows.
 */
import type { ErrorInfo } from "./errors";

/** What an error is about (iTwin Synchronization API's error categories, in this service's words). */
export const ERROR_CATEGORIES = ["SourceFile", "Connector", "IModel", "Service"] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

/** How a code is to be read. */
export interface ErrorCodeInfo {
  category: ErrorCategory;
  /** The user can make it go away: change the file or the mapping, confirm the deletions, visit the service. */
  canUserFix: boolean;
  /** Running again without any change may succeed (the cause was passing). */
  retryable: boolean;
}

const code = (category: ErrorCategory, canUserFix: boolean, retryable: boolean): ErrorCodeInfo => ({
  category,
  canUserFix,
  retryable,
});

/**
 * Every error code a task (`error.code`, result Error) or a run (`error.code`) records, with its category,
 * `canUserFix` and `retryable` (README.md "Codes of tasks" lists the same rows).
 */
export const ERROR_CODES = {
  // Task errors.
  FileNotFound: code("SourceFile", true, false),
  FileUnreadable: code("SourceFile", true, false),
  FileOutsideSourceRoots: code("SourceFile", true, false),
  InvalidFileFormat: code("SourceFile", true, false),
  FileIncomplete: code("SourceFile", true, true),
  FileChangedDuringRead: code("SourceFile", false, true),
  DeletionGuard: code("SourceFile", true, false),
  ConnectorFailed: code("Connector", false, false),
  InvalidElementData: code("Connector", false, false),
  TaskFailed: code("Service", false, true),
  GcsDefiningFile: code("IModel", false, false),
  // Run errors.
  AllTasksFailed: code("SourceFile", true, false),
  SomeTasksFailed: code("SourceFile", true, false),
  UserNotAuthenticated: code("Service", true, false),
  RunFailed: code("Service", false, true),
  DeleteJobFailed: code("IModel", false, true),
  RunNotFound: code("Service", false, false),
  ConnectionNotFound: code("Service", false, false),
  ConnectionNotDeleted: code("Service", false, false),
} as const satisfies Record<string, ErrorCodeInfo>;
export type KnownErrorCode = keyof typeof ERROR_CODES;

/** A code the table does not know (a record of a later release): a fault of the service, not retryable. */
const UNKNOWN: ErrorCodeInfo = code("Service", false, false);

/** The category, `canUserFix` and `retryable` of an error code (see {@link ERROR_CODES}). */
export function errorCodeInfo(c: string): ErrorCodeInfo {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, c) ? ERROR_CODES[c as KnownErrorCode] : UNKNOWN;
}

/** An error as the API shows it: its code, message and target, with its category, `canUserFix` and `retryable`. */
export function describedError(e: ErrorInfo): ErrorInfo & ErrorCodeInfo {
  return { ...e, ...errorCodeInfo(e.code) };
}
