/**
 * The shapes of Coflux's REST API and events feed, as the server sends them (docs/server.md).
 *
 * Every interface here mirrors one answer of the server. `tests/jupyter_ext/test_lab_types.py`
 * checks real answers of a real server against the JSON Schema generated from this file
 * (`npm run schema`), with no extra fields allowed: a field added or renamed on either side
 * fails it.
 */

/** Any JSON value. */
export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

export interface Project {
  name: string;
}

export interface ProjectList {
  projects: Project[];
}

export type WorkspaceState = 'active' | 'paused' | 'archived';

export interface Workspace {
  name: string;
  base: string | null;
  state: WorkspaceState;
}

export interface WorkspaceList {
  workspaces: Workspace[];
}

export interface RetryOptions {
  limit: number;
  backoff_min: number;
  backoff_max: number;
  when: string[];
}

/** A target's options as its worker declared them; fields beyond these are the target's own. */
export interface TargetOptions {
  retries?: RetryOptions;
  version?: string;
  group?: string;
  [option: string]: unknown;
}

export type ParameterKind =
  'positional_only' | 'positional_or_keyword' | 'var_positional' | 'keyword_only' | 'var_keyword';

export interface Parameter {
  name: string;
  kind: ParameterKind;
  has_default: boolean;
  /** The default as plain JSON, when it has one JSON can represent. */
  default?: JSONValue;
  /** The annotation as written (`int`, `list[str]`), if any. */
  annotation?: string;
}

export interface Workflow {
  module: string;
  name: string;
  type: 'workflow' | 'task';
  parameters: Parameter[];
  options: TargetOptions;
  version: string;
  registered: boolean;
}

export interface WorkflowList {
  workflows: Workflow[];
}

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface RunSummary {
  run_id: string;
  workspace: string;
  module: string;
  target: string;
  status: RunStatus;
  created_at: number;
  completed_at: number | null;
}

export interface RunList {
  runs: RunSummary[];
}

export interface RunStarted {
  run_id: string;
}

export interface ExecutionStarted {
  execution_id: string;
}

export interface RunCancelled {
  run_id: string;
  cancelled: number;
}

export interface ErrorInfo {
  type: string;
  message: string;
  traceback: string;
}

export interface PreviewTable {
  columns: string[];
  rows: (string | number | boolean | null)[][];
  shape: number[];
  dtypes: { [column: string]: string };
}

export interface PreviewImage {
  media_type: string;
  b64: string;
  width: number;
  height: number;
}

/** What the worker that had a value wrote of it for people. */
export interface Preview {
  text: string;
  table?: PreviewTable;
  image?: PreviewImage;
}

export interface Blocked {
  reason: 'workspace_paused' | 'workspace_archived' | 'no_worker' | 'no_worker_with_tags';
  message: string;
}

export interface BlockedSteps extends Blocked {
  steps: number;
}

export interface AssetSummary {
  asset_id: string;
  name: string | null;
  entries: number;
}

export type ExecutionState =
  | 'queued'
  | 'assigned'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'timed_out'
  | 'abandoned'
  | 'cached'
  | 'deferred';

export interface Execution {
  execution_id: string;
  attempt: number;
  workspace: string;
  state: ExecutionState;
  cached: boolean;
  cached_from: string | null;
  deferred_to: string | null;
  created_at: number;
  execute_after: number | null;
  assigned_at: number | null;
  completed_at: number | null;
  rerun_parents: boolean;
  fixed_step: string | null;
  /** The result as plain JSON for display (only once succeeded). */
  result?: JSONValue;
  /** One line of text for the result (beside `result`). */
  result_preview?: string;
  error?: ErrorInfo;
  after_run_ended?: boolean;
  blocked: Blocked | null;
  assets: AssetSummary[];
  retry: boolean;
  rerun: boolean;
}

export interface Step {
  step_id: string;
  parent_step_id: string | null;
  parent_execution_id: string | null;
  module: string;
  target: string;
  type: 'workflow' | 'task';
  arguments: JSONValue[];
  arguments_preview: string[];
  group: string | null;
  options: TargetOptions;
  cache_key: string | null;
  memoised: boolean;
  executions: Execution[];
}

export interface SpawnedRun {
  run_id: string;
  parent_execution_id: string;
}

export interface Run {
  run_id: string;
  workspace: string;
  run_workspace: string;
  parent_execution_id: string | null;
  spawned_runs: SpawnedRun[] | null;
  created_at: number;
  completed_at: number | null;
  status: RunStatus;
  result: JSONValue;
  result_preview: string | null;
  result_value: JSONValue;
  error: ErrorInfo | null;
  root_execution_id: string | null;
  still_running: number;
  blocked: BlockedSteps[];
  steps: Step[] | null;
}

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'stdout' | 'stderr';

export interface LogEntry {
  timestamp: number;
  level: LogLevel;
  message: string;
}

export interface LogList {
  logs: LogEntry[];
}

export interface AssetEntry {
  path: string;
  blob_key: string;
  size: number;
  media_type: string;
}

export interface Restoration {
  execution_id: string;
  restored_at: number;
}

export interface Asset {
  asset_id: string;
  name: string | null;
  execution_id: string;
  created_at: number;
  entries: AssetEntry[];
  restored_by: Restoration[];
}

/** An error answer of the server: `{"error": {"code", "message"}}` (see `jupyter_ext/errors.py`). */
export interface ErrorAnswer {
  error: { code: string; message: string };
}

export interface RunEvent {
  type: 'run';
  run_id: string;
  status: RunStatus;
}

export interface ExecutionEvent {
  type: 'execution';
  run_id: string;
  step_id: string;
  execution_id: string;
  state: ExecutionState;
}

export interface AssetEvent {
  type: 'asset';
  run_id: string;
  execution_id: string;
  asset_id: string;
}

export interface WorkspaceEvent {
  type: 'workspace';
  name: string;
  base: string | null;
  state: WorkspaceState;
  renamed_from?: string;
}

/** One message of `coflux/ws/events?project=P`. */
export type CofluxEvent = RunEvent | ExecutionEvent | AssetEvent | WorkspaceEvent | WorkerEvent;

/** The MIME bundle a Run displayed in a notebook carries (`application/vnd.coflux.run+json`). */
export interface RunOutput {
  run_id: string;
  project: string;
  workspace: string;
  /** The Coflux API's URL as the kernel knew it (for a front-end of another server: shown, not used). */
  url: string;
  /** The workspace the run was seen from when displayed (`workspace`: where a plain re-run goes). */
  view: string;
}

/** `GET kernels/{kernel_id}`: the worker session of a notebook kernel, in the project it said hello to last. */
export interface KernelWorker {
  kernel_id: string;
  project: string;
  workspace: string;
  connected: boolean;
  session: string;
}

/** A notebook kernel's worker session connected or disconnected (a switch sends one of each). */
export interface WorkerEvent {
  type: 'worker';
  kernel_id: string;
  workspace: string;
  connected: boolean;
}
