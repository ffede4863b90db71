/**
 * Sluice's public entry (`import type { Deriver } from 'sluice'`): what a user needs to write a
 * derive module for a document sink or a module processor, and the error class every coded error
 * is an instance of.
 * Only stable, type-level surface lives here; the engine and the config loader are internal.
 */
export type { DerivedChange, Deriver, Doc, DocValue, DocumentStore, Filter } from './sinks/document/types.ts';
export type { JsonValue, ModuleContext, ModuleInit, ModuleOutput, ModuleRecord, ModuleTransform } from './processors/module/types.ts';
/** A schedule's transform module (`schedules[].transform.module`) and the run history's entries. */
export type { RunEntry as ScheduleRunEntry, ScheduleModuleContext, ScheduleTransform } from './schedules/types.ts';
/** Exact decimal values inside documents (`new Decimal('2500.75')`), as a deriver's documents may hold. */
export { Decimal } from './sinks/document/types.ts';
/** Every error Sluice raises for the user has this class: a documented `code` and `retriable`. */
export { SluiceError } from './core/errors.ts';
