/**
 * API errors: `{"error": {"code", "message", "details"?: [{code, message, target}]}}` with an HTTP status
 * (docs/product-rules.md "API shape"). Every rule that refuses an action has its own code.
 */
/** A problem attached to a run, job or task: `{code, message}` plus an optional target (file path, element id). */
export interface ErrorInfo {
  code: string;
  message: string;
  target?: string;
}

/** One detail of an API error: the same shape as {@link ErrorInfo}. */
export type ErrorDetail = ErrorInfo;

/** Codes and their HTTP statuses. */
export const ERROR_STATUS = {
  InvalidRequest: 400,
  InvalidSourcePath: 400,
  SourcePathNotAllowed: 400,
  SourceNotFound: 400,
  InvalidSourceFilePath: 400,
  SourceFileNotFound: 400,
  SourceFileIsFolder: 400,
  SourceFileOutsideRoots: 400,
  DuplicateSourceFile: 400,
  InvalidSchedule: 400,
  InvalidWebhookUrl: 400,
  Unauthorized: 401,
  Forbidden: 403,
  AdminOnly: 403,
  NotConnectionOwner: 403,
  OwnershipChangeForbidden: 403,
  NotTeamManager: 403,
  IModelNotFound: 404,
  ConnectionNotFound: 404,
  RunNotFound: 404,
  SourceFileNotMapped: 404,
  UserNotFound: 404,
  TeamMemberNotFound: 404,
  SourceFolderNotFound: 404,
  WebhookNotFound: 404,
  DeliveryNotFound: 404,
  NotFound: 404,
  UserAlreadyExists: 409,
  NotATeamMember: 409,
  TeamMemberNeverInteracted: 409,
  MemberOwnsConnections: 409,
  RunInProgress: 409,
  ScheduleIsManual: 409,
  ConcurrentChange: 409,
  SourceFileAlreadyMapped: 409,
  MaxConnectionsPerIModelReached: 409,
  MaxCompositeModelsPerIModelReached: 409,
  ConnectionDeleted: 409,
  GcsDefiningConnection: 409,
  GcsDefiningFile: 409,
  ReferenceFileNotUnmappable: 409,
  LastCompositeModel: 409,
  RunAlreadyCompleted: 409,
  RunNotCancellable: 409,
  NoActiveConnections: 409,
  NoFailedTasks: 409,
  RunStillActive: 409,
  RunNotRetryable: 409,
  ChangeListNotKept: 409,
  DeliveryInProgress: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  DependencyUnavailable: 503,
  /** A write failed for lack of space (DATA_DIR's filesystem or the database's disk is full). */
  InsufficientStorage: 503,
  InternalError: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error the API answers with its own status and code. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_STATUS[code];
  }

  toBody(): { error: { code: string; message: string; details?: ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}
