/**
 * The workflows the worker registers (its `workflowsPath`), one file each, and the message definitions. Deterministic
 * code only (docs/architecture.md "Determinism").
 *
 * - `imodelWorkflow` (`imodel-queue.ts`): one per iModel, the iModel's single writer and run queue.
 * - `syncWorkflow` (`sync.ts`): one per run. `deleteWorkflow` (`delete.ts`): one per delete job.
 * - `scheduledRunWorkflow` (`scheduled.ts`): one per schedule fire.
 * - `ownerTokenWorkflow` (`owner-token.ts`): one per user. `ownershipNoticeWorkflow` (`notices.ts`): one per notice.
 * - `previewWorkflow` (`preview.ts`): one per dry run of a run or a delete.
 */
export * from "./definitions";
export * from "./imodel-queue";
export * from "./sync";
export * from "./delete";
export * from "./scheduled";
export * from "./owner-token";
export * from "./notices";
export * from "./preview";
export * from "./webhooks";
