/**
 * What a run's graph is made of, before placement: its nodes (steps, folded fan-outs, spawned
 * runs) with their states and marks, the `cf.group` boxes and the grids of unfolded fan-outs.
 */
import type { Execution, Run, Step } from '../types';

/** Siblings of one target, called from one execution, beyond which they fold into one node. */
export const FOLD_AT = 12;
/** Unfolded, such siblings wrap into rows of this many. */
export const WRAP_AT = 10;
export const NODE_WIDTH = 164;
export const NODE_HEIGHT = 48;

export type NodeKind = 'step' | 'run' | 'fold';

export interface GraphNode {
  id: string;
  kind: NodeKind;
  label: string;
  /** A second line: the step's arguments, a run's id, a fold's states. */
  detail: string;
  /** `module:target` of a step or of a fold's steps ('' for a run). */
  target: string;
  /** A step's latest execution's state (`cached` for a cache hit), a run's status, a fold's worst. */
  state: string;
  /** Short marks: cached, memoised, ×N (attempts), re-run, a workspace. */
  marks: { kind: string; text: string; title: string }[];
  title: string;
  stepId?: string;
  runId?: string;
  foldKey?: string;
  group?: string;
  x: number;
  y: number;
}

export interface GraphGroup {
  id: string;
  label: string;
  /** For the box of an unfolded fan-out: its fold key (a click folds it again). */
  foldKey?: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: 'call' | 'spawn';
  points: { x: number; y: number }[];
}

export interface RunGraphLayout {
  nodes: GraphNode[];
  edges: GraphEdge[];
  groups: GraphGroup[];
  width: number;
  height: number;
}

export interface LayoutOptions {
  /** The workspace the run is seen from (marks steps whose latest execution ran elsewhere). */
  view: string;
  /** Fold keys the user unfolded. */
  unfolded: ReadonlySet<string>;
  direction: 'TB' | 'LR';
}

/** Worst first: a fold shows the state that most needs attention. */
const SEVERITY = [
  'failed',
  'timed_out',
  'abandoned',
  'cancelled',
  'running',
  'assigned',
  'queued',
  'deferred',
  'succeeded',
  'cached'
];

/** The run's root step: the one whose parent is not in the run (a spawned run's root has one). */
export function rootStep(run: Run): Step | undefined {
  const steps = run.steps ?? [];
  const ids = new Set(steps.map(s => s.step_id));
  return steps.find(s => s.parent_step_id === null || !ids.has(s.parent_step_id));
}

export function latest(step: Step): Execution | undefined {
  return step.executions[step.executions.length - 1];
}

export function stepState(step: Step): string {
  const execution = latest(step);
  if (!execution) {
    return 'queued';
  }
  return execution.cached ? 'cached' : execution.state;
}

function stepMarks(step: Step, view: string): GraphNode['marks'] {
  const marks: GraphNode['marks'] = [];
  const last = latest(step);
  if (last?.cached || last?.state === 'cached') {
    marks.push({
      kind: 'cached',
      text: 'cached',
      title: last.cached_from ? `result of ${last.cached_from}` : 'a cache hit'
    });
  }
  if (step.memoised) {
    marks.push({
      kind: 'memoised',
      text: 'memo',
      title: 'memoised: a call with the same arguments reuses it'
    });
  }
  if (step.executions.some(e => e.retry)) {
    marks.push({
      kind: 'retries',
      text: `×${step.executions.length}`,
      title: `${step.executions.length} attempts (retried)`
    });
  }
  if (step.executions.some(e => e.rerun)) {
    const reruns = step.executions.filter(e => e.rerun).map(e => `#${e.attempt} in ${e.workspace}`);
    marks.push({ kind: 'rerun', text: 're-run', title: `re-run: ${reruns.join(', ')}` });
  }
  if (last && last.workspace !== view) {
    marks.push({
      kind: 'workspace',
      text: last.workspace,
      title: `its latest execution ran in ${last.workspace}`
    });
  }
  return marks;
}

function worst(states: string[]): string {
  let best = SEVERITY.length;
  for (const state of states) {
    const rank = SEVERITY.indexOf(state);
    best = Math.min(best, rank < 0 ? SEVERITY.length : rank);
  }
  return SEVERITY[best] ?? states[0] ?? 'queued';
}

function counts(states: string[]): string {
  const tally = new Map<string, number>();
  states.forEach(s => tally.set(s, (tally.get(s) ?? 0) + 1));
  return [...tally].map(([s, n]) => `${n} ${s}`).join(', ');
}

export function groupId(step: Step): string | undefined {
  return step.group === null ? undefined : `group:${step.parent_execution_id ?? ''}:${step.group}`;
}

/** The steps to fold: big sets of siblings of one target, with everything they called. */
function folds(steps: Step[], unfolded: ReadonlySet<string>): Map<string, Step[]> {
  const ids = new Set(steps.map(s => s.step_id));
  const sets = new Map<string, Step[]>();
  for (const step of steps) {
    if (step.parent_step_id === null || !ids.has(step.parent_step_id)) {
      continue;
    }
    const key = `fold:${step.parent_execution_id ?? step.parent_step_id}:${step.group ?? ''}:${step.module}:${step.target}`;
    sets.set(key, [...(sets.get(key) ?? []), step]);
  }
  for (const [key, members] of sets) {
    if (members.length <= FOLD_AT || unfolded.has(key)) {
      sets.delete(key);
    }
  }
  return sets;
}

/** Unfolded big fan-outs, by fold key: their members drawn as a grid in one box. */
function grids(steps: Step[], unfolded: ReadonlySet<string>): Map<string, Step[]> {
  const all = folds(steps, new Set());
  for (const key of [...all.keys()]) {
    if (!unfolded.has(key)) {
      all.delete(key);
    }
  }
  return all;
}

export type Pending = Omit<GraphNode, 'x' | 'y'>;

/** The graph's parts before placement: nodes, boxes of groups, grids of unfolded fan-outs. */
export class Parts {
  constructor(
    readonly run: Run,
    readonly spawned: Record<string, Run>,
    readonly options: LayoutOptions
  ) {
    this.steps = run.steps ?? [];
    this.steps.forEach(s => this.byId.set(s.step_id, s));
    for (const [key, members] of folds(this.steps, options.unfolded)) {
      members.forEach(m => this.foldOf.set(m.step_id, key));
      this.folded.set(key, members);
    }
    for (const [key, members] of grids(this.steps, options.unfolded)) {
      members.forEach(m => this.gridOf.set(m.step_id, `grid:${key}`));
      this.grids.set(`grid:${key}`, { key, members });
    }
  }

  /** The fold hiding a step (it, or a step that called it, was folded). */
  hiddenUnder(step: Step): string | undefined {
    for (let s: Step | undefined = step, guard = 0; s && guard < 10000; guard++) {
      const key = this.foldOf.get(s.step_id);
      if (key) {
        return key;
      }
      s = s.parent_step_id === null ? undefined : this.byId.get(s.parent_step_id);
    }
    return undefined;
  }

  /** The laid-out node a step's edges attach to: its own, its fold's, or its grid's. */
  anchor(stepId: string): string | undefined {
    const step = this.byId.get(stepId);
    if (!step) {
      return undefined;
    }
    return this.hiddenUnder(step) ?? this.gridOf.get(stepId) ?? stepId;
  }

  collect(): void {
    for (const step of this.steps) {
      if (!this.hiddenUnder(step)) {
        this.addStep(step);
      }
    }
    for (const [key, members] of this.folded) {
      this.addFold(key, members);
    }
    for (const link of this.run.spawned_runs ?? []) {
      this.addSpawned(link.run_id);
    }
  }

  private addGroup(step: Step): string | undefined {
    const id = groupId(step);
    if (id && step.group !== null) {
      this.groups.set(id, step.group);
    }
    return id;
  }

  private addStep(step: Step): void {
    const group = this.addGroup(step);
    this.nodes.set(step.step_id, {
      id: step.step_id,
      kind: 'step',
      label: step.target,
      detail: `(${step.arguments_preview.join(', ')})`,
      target: `${step.module}:${step.target}`,
      state: stepState(step),
      marks: stepMarks(step, this.options.view),
      title: `${step.module}:${step.target} (${step.step_id})`,
      stepId: step.step_id,
      group
    });
  }

  private addFold(key: string, members: Step[]): void {
    const first = members[0];
    const parent = first?.parent_step_id ? this.byId.get(first.parent_step_id) : undefined;
    if (!first || (parent && this.hiddenUnder(parent))) {
      return; // a fold inside another fold stays hidden in it
    }
    const states = members.map(stepState);
    this.nodes.set(key, {
      id: key,
      kind: 'fold',
      label: `${first.target} ×${members.length}`,
      detail: counts(states),
      target: `${first.module}:${first.target}`,
      state: worst(states),
      marks: [],
      title: `${members.length} calls of ${first.module}:${first.target}: click to show each`,
      foldKey: key,
      group: this.addGroup(first)
    });
  }

  private addSpawned(runId: string): void {
    const child = this.spawned[runId];
    const root = child && rootStep(child);
    const id = `run:${runId}`;
    this.nodes.set(id, {
      id,
      kind: 'run',
      label: root ? root.target : 'spawned run',
      detail: `run ${runId}`,
      target: '',
      state: child?.status ?? 'running',
      marks: [],
      title: `spawned run ${runId}${root ? ` (${root.module}:${root.target})` : ''}: click to open it`,
      runId
    });
  }

  readonly steps: Step[];
  readonly byId = new Map<string, Step>();
  readonly foldOf = new Map<string, string>();
  readonly folded = new Map<string, Step[]>();
  readonly gridOf = new Map<string, string>();
  readonly grids = new Map<string, { key: string; members: Step[] }>();
  readonly nodes = new Map<string, Pending>();
  readonly groups = new Map<string, string>();
}
