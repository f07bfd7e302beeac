/**
 * The RunTree view's model without a kernel: the subset of anywidget's model API the view uses
 * (`get`, `set`, `on`/`off` of `change:NAME` and `msg:custom`, `send`, `save_changes`), with the
 * fields coflux/notebook/widgets.py `RunTree` syncs, computed the way it computes them, from the
 * REST API and the project's events feed. The view's messages (`rerun`, `cancel`, `cancel_run`,
 * `refresh`, `logs`, `asset`, `asset_preview`, `asset_download`) are done through REST, their
 * errors and notices set as the Python widget sets them.
 */
import { type ISignal, Signal } from '@lumino/signaling';

import { type CofluxApi, CofluxError, describe } from '../api';
import type { CofluxContext } from '../context';
import type { ConnectionState, ProjectEvents } from '../events';
import type { CofluxEvent, LogEntry, Run, Workspace } from '../types';
import { type AssetContent, loadAsset, withPreview } from './assets';

/** Spawned runs shown inside one tree (transitively), at most. */
export const MAX_SPAWNED = 50;
/** How long a burst of events waits before the one refetch it causes (ms). */
const DEBOUNCE_MS = 100;
/** Refetch period while something shown can't be followed through the feed: the logs of a live
 * execution, or anything while the feed is down and the run not finished (ms). */
const POLL_MS = 1000;
const LIVE = new Set(['queued', 'assigned', 'running']);

/** The run as the view gets it: the server's view without `result_value` (raw tagged JSON). */
export type RunData = Omit<Run, 'result_value'>;

export interface ExecutionDetails {
  logs?: LogEntry[];
  final: boolean;
}

/** The fields the view reads (widgets.py `RunTree`'s synced traits). */
export interface RunTreeFields {
  run: RunData | Record<string, never>;
  spawned: { [runId: string]: RunData };
  view: string;
  workspace: string;
  workspaces: Workspace[];
  expanded: string[];
  details: { [executionId: string]: ExecutionDetails };
  assets: { [assetId: string]: AssetContent };
  error: string;
  notice: string;
}

export interface RunModelOptions {
  project: string;
  runId: string;
  /** The workspace the run is seen from; by default `workspace` if it sees the run's, else the run's own. */
  view?: string;
  /** Where a plain re-run goes (the kernel's workspace when the run was displayed); default: the view. */
  workspace?: string;
  /**
   * Remember the open steps in this browser (localStorage, per project and run), so that they are
   * open again after the page reloads, as a kernel's widget keeps them in its model.
   */
  remember?: boolean;
}

type Message = { [key: string]: unknown };
type Callback = (...args: unknown[]) => void;

/** `name` and its ancestors, nearest first. */
export function lineage(workspaces: Workspace[], name: string): string[] {
  const bases = new Map(workspaces.map(w => [w.name, w.base]));
  const chain: string[] = [];
  let current: string | null | undefined = name;
  while (current !== null && current !== undefined && !chain.includes(current)) {
    chain.push(current);
    current = bases.get(current);
  }
  return chain;
}

function liveExecutions(run: RunData): boolean {
  return (run.steps ?? []).some(s => s.executions.some(e => LIVE.has(e.state)));
}

function withoutValue(run: Run): RunData {
  const data: Partial<Run> = { ...run };
  delete data.result_value;
  return data as RunData;
}

function required(message: Message, key: string): string {
  const value = message[key];
  if (typeof value !== 'string' || !value) {
    throw new CofluxError(`the message lacks '${key}'`, 400, 'bad_request');
  }
  return value;
}

export class RunModel {
  constructor(
    ctx: CofluxContext,
    readonly options: RunModelOptions
  ) {
    this.api = ctx.api;
    this.project = options.project;
    this.runId = options.runId;
    this._view = options.view || null;
    this._fields = {
      run: {},
      spawned: {},
      view: options.view ?? '',
      workspace: options.workspace ?? '',
      workspaces: [],
      expanded: [],
      details: {},
      assets: {},
      error: '',
      notice: ''
    };
    if (options.remember) {
      this._fields.expanded = this.remembered();
      this._savedExpanded = this._fields.expanded.join('\n');
    }
    this.feed = ctx.events.project(options.project);
    this.feed.received.connect(this.onEvent, this);
    this.feed.stateChanged.connect(this.onFeedState, this);
    void this.refresh();
  }

  readonly api: CofluxApi;
  readonly project: string;
  readonly runId: string;

  /** The run as last fetched (with `result_value`), or null before the first answer. */
  get run(): Run | null {
    return this._run;
  }

  /** The runs spawned from it (transitively), as last fetched. */
  get spawned(): { [runId: string]: Run } {
    return this._spawned;
  }

  /** The run, or a run spawned from it, changed (after each fetch that brought something new). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The run and everything shown in it are final (nothing queued or running). */
  get finished(): boolean {
    const run = this._run;
    return (
      !!run && ![run, ...Object.values(this._spawned)].some(v => v.status === 'running' || liveExecutions(v))
    );
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  // -- anywidget's model API, as the view uses it ---------------------------------------------

  get<K extends keyof RunTreeFields>(name: K): RunTreeFields[K] {
    return this._fields[name];
  }

  set<K extends keyof RunTreeFields>(name: K, value: RunTreeFields[K]): void {
    this.update({ [name]: value });
  }

  on(event: string, callback: Callback): void {
    let callbacks = this._listeners.get(event);
    if (!callbacks) {
      callbacks = new Set();
      this._listeners.set(event, callbacks);
    }
    callbacks.add(callback);
  }

  off(event?: string, callback?: Callback): void {
    if (event === undefined) {
      this._listeners.clear();
    } else if (callback === undefined) {
      this._listeners.delete(event);
    } else {
      this._listeners.get(event)?.delete(callback);
    }
  }

  /** The view's changes (`expanded`) are the model's own: nothing to sync; the logs of steps just
   * opened are fetched. */
  save_changes(): void {
    const expanded = this._fields.expanded.join('\n');
    if (expanded !== this._savedExpanded) {
      this._savedExpanded = expanded;
      this.remember();
      this.schedule(0);
    }
  }

  private get storageKey(): string {
    return `coflux:runtree:expanded:${this.project}/${this.runId}`;
  }

  private remembered(): string[] {
    try {
      const found: unknown = JSON.parse(window.localStorage.getItem(this.storageKey) ?? '[]');
      return Array.isArray(found) ? found.filter((s): s is string => typeof s === 'string') : [];
    } catch {
      return []; // storage refused (private mode) or spoiled: nothing remembered
    }
  }

  private remember(): void {
    if (!this.options.remember) {
      return;
    }
    try {
      const expanded = this._fields.expanded;
      if (expanded.length) {
        window.localStorage.setItem(this.storageKey, JSON.stringify(expanded));
      } else {
        window.localStorage.removeItem(this.storageKey);
      }
    } catch {
      // storage refused or full: the steps are open for this page only
    }
  }

  /** A message of the view (`{action: ...}`): done through REST, then everything refetched. */
  send(content: unknown): void {
    void this.handle(content);
  }

  // -- actions, also for code ------------------------------------------------------------------

  /** Does what the view asked; sets `error` (`"ACTION: the server's message"`) or `notice`, then refetches. */
  async handle(content: unknown): Promise<void> {
    const message: Message = content && typeof content === 'object' ? (content as Message) : {};
    const action = String(message.action);
    let error = '';
    let notice = '';
    try {
      const handler = this.handlers[action];
      if (!handler) {
        throw new CofluxError(`unknown action '${action}'`, 400, 'bad_request');
      }
      notice = await handler(message);
    } catch (err) {
      if (err instanceof CofluxError) {
        error = `${action}: ${err.message}`;
      } else {
        console.error(`coflux: the run tree's action ${action} failed`, err);
        error = `${action} failed unexpectedly: ${describe(err)}`;
      }
    }
    if (this._disposed) {
      return;
    }
    this._refreshFailed = false; // this message stays until the next action
    this.update({ error, notice });
    await this.refresh();
  }

  /** Re-runs a step in `workspace` (default: the session's); with `parents`, its parents follow
   * once it succeeds. Returns the new execution's id and where it runs. */
  async rerun(stepId: string, workspace?: string, parents = false): Promise<[string, string]> {
    const target = workspace || this._fields.workspace;
    const { execution_id } = await this.api.rerun(this.project, stepId, target, parents);
    if (this._view && !lineage(this._fields.workspaces, this._view).includes(target)) {
      this._view = target; // the view couldn't see the new attempt
    }
    return [execution_id, target];
  }

  private readonly handlers: { [action: string]: (message: Message) => string | Promise<string> } = {
    rerun: async message => {
      const stepId = required(message, 'step_id');
      const parents = message.parents === true;
      const chosen =
        typeof message.workspace === 'string' && message.workspace ? message.workspace : undefined;
      const [executionId, workspace] = await this.rerun(stepId, chosen, parents);
      const then = parents ? '; once it succeeds, its parents follow' : '';
      return `re-running ${stepId} in ${workspace} as ${executionId}${then}`;
    },
    cancel: async message => {
      const executionId = required(message, 'execution_id');
      await this.api.cancelExecution(this.project, executionId);
      return `cancelled ${executionId}`;
    },
    cancel_run: async () => {
      const { cancelled } = await this.api.cancelRun(this.project, this.runId);
      return `cancelled ${cancelled} execution${cancelled !== 1 ? 's' : ''} of run ${this.runId}`;
    },
    refresh: () => '',
    logs: message => {
      const executionId = required(message, 'execution_id');
      const details = { ...this._fields.details };
      details[executionId] = { ...details[executionId], final: false }; // reloaded by the refresh that follows
      this.update({ details });
      return '';
    },
    asset: message => this.openAsset(message),
    asset_preview: message => this.openAsset(message),
    asset_download: message => {
      // The view links files of the page's own server directly; this is its fallback.
      const assetId = required(message, 'asset_id');
      const path = required(message, 'path');
      const link = document.createElement('a');
      link.href = this.api.assetFileUrl(this.project, assetId, path);
      link.download = path.split('/').pop() || path;
      link.style.display = 'none';
      document.body.append(link);
      link.click();
      link.remove();
      return '';
    }
  };

  /** Loads an asset to show inline ("View"), or the preview of one of its files (`path`). */
  private async openAsset(message: Message): Promise<string> {
    const assetId = required(message, 'asset_id');
    const path = message.path;
    let state = this._fields.assets[assetId] ?? (await loadAsset(this.api, this.project, assetId));
    if (typeof path === 'string' && path) {
      state = await withPreview(this.api, this.project, state, path);
    }
    this.update({ assets: { ...this._fields.assets, [assetId]: state } });
    return '';
  }

  // -- refreshing ------------------------------------------------------------------------------

  /** Fetches afresh now (the model also does by itself when the feed tells of a change). A
   * failure shows in `error` ("cannot refresh: ...") until a refresh succeeds. */
  refresh(): Promise<void> {
    if (this._refreshing) {
      this._again = true; // one more pass, after the one under way
      return this._refreshing;
    }
    this._refreshing = (async () => {
      do {
        this._again = false;
        await this.refreshOnce();
      } while (this._again && !this._disposed);
    })().finally(() => {
      this._refreshing = null;
    });
    return this._refreshing;
  }

  private async refreshOnce(): Promise<void> {
    this.clearTimer();
    try {
      await this.fetchAll();
    } catch (err) {
      if (this._disposed) {
        return;
      }
      this._refreshFailed = true;
      this.update({ error: `cannot refresh: ${describe(err)}` });
      this.schedulePoll();
      return;
    }
    if (this._refreshFailed) {
      this._refreshFailed = false;
      this.update({ error: '' });
    }
    this.schedulePoll();
  }

  private async fetchAll(): Promise<void> {
    const { workspaces } = await this.api.workspaces(this.project);
    let data = await this.fetchRun(this.runId, workspaces);
    if (!this._view) {
      const own = data.run_workspace || data.workspace;
      const mine = this.options.workspace;
      this._view = mine && lineage(workspaces, mine).includes(own) ? mine : own;
      if (this._view !== data.workspace) {
        data = await this.fetchRun(this.runId, workspaces);
      }
    }
    const spawned = await this.fetchSpawned(data, workspaces);
    const details = await this.loadDetails([data, ...Object.values(spawned)]);
    if (this._disposed) {
      return;
    }
    const views: { [runId: string]: RunData } = {};
    for (const [id, run] of Object.entries(spawned)) {
      views[id] = withoutValue(run);
    }
    const before = JSON.stringify([this._run, this._spawned]);
    this._run = data;
    this._spawned = spawned;
    this.update({
      workspaces,
      workspace: this.options.workspace || this._view,
      view: data.workspace,
      run: withoutValue(data),
      spawned: views,
      details
    });
    if (JSON.stringify([data, spawned]) !== before) {
      this._changed.emit();
    }
  }

  /** The run seen from the view, or from its own workspace when the view can't see it. */
  private async fetchRun(runId: string, workspaces: Workspace[]): Promise<Run> {
    const view = this._view ?? undefined;
    const data = await this.api.run(this.project, runId, view);
    if (view && !lineage(workspaces, view).includes(data.run_workspace)) {
      return this.api.run(this.project, runId);
    }
    return data;
  }

  private async fetchSpawned(data: Run, workspaces: Workspace[]): Promise<{ [runId: string]: Run }> {
    const found: { [runId: string]: Run } = {};
    const pending = (data.spawned_runs ?? []).map(r => r.run_id);
    while (pending.length && Object.keys(found).length < MAX_SPAWNED) {
      const runId = pending.shift() as string;
      if (runId in found || runId === this.runId) {
        continue;
      }
      const view = await this.fetchRun(runId, workspaces);
      found[runId] = view;
      pending.push(...(view.spawned_runs ?? []).map(r => r.run_id));
    }
    return found;
  }

  /** Logs of the expanded steps' executions: loaded once final, reloaded while live. */
  private async loadDetails(views: Run[]): Promise<RunTreeFields['details']> {
    const expanded = new Set(this._fields.expanded);
    const details = { ...this._fields.details };
    const loads: Promise<void>[] = [];
    for (const view of views) {
      for (const step of view.steps ?? []) {
        if (!expanded.has(step.step_id)) {
          continue;
        }
        for (const execution of step.executions) {
          const id = execution.execution_id;
          if (details[id]?.final) {
            continue;
          }
          const final = !LIVE.has(execution.state);
          loads.push(
            this.api.logs(this.project, id).then(({ logs }) => {
              details[id] = { logs, final };
            })
          );
        }
      }
    }
    await Promise.all(loads);
    return details;
  }

  /** Something shown is live and only polling follows it: the logs of an expanded step's live
   * execution (logs send no events), or anything while the feed is down and the run runs. */
  private needsPolling(): boolean {
    if (this._disposed) {
      return false;
    }
    if (this.feed.state !== 'open' && (!this._run || !this.finished)) {
      return true;
    }
    const expanded = new Set(this._fields.expanded);
    return [this._run, ...Object.values(this._spawned)].some(view =>
      (view?.steps ?? []).some(s => expanded.has(s.step_id) && s.executions.some(e => LIVE.has(e.state)))
    );
  }

  private schedulePoll(): void {
    if (this.needsPolling()) {
      this.schedule(POLL_MS);
    }
  }

  private schedule(delay: number): void {
    if (this._disposed || (this._timer !== null && this._timerDue <= Date.now() + delay)) {
      return; // one already comes as soon
    }
    this.clearTimer();
    this._timerDue = Date.now() + delay;
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, delay);
  }

  private clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private watches(runId: string): boolean {
    return runId === this.runId || runId in this._spawned;
  }

  private onEvent(_feed: ProjectEvents, event: CofluxEvent): void {
    if (event.type === 'worker') {
      return; // a kernel's worker came or went: nothing of this run changed
    }
    if (event.type === 'workspace') {
      this.schedule(DEBOUNCE_MS);
    } else if (this.watches(event.run_id) || (event.type === 'run' && !this.finished)) {
      this.schedule(DEBOUNCE_MS); // a new run may be one this one spawns
    }
  }

  private onFeedState(_feed: ProjectEvents, state: ConnectionState): void {
    if (state === 'open') {
      this.schedule(0); // what happened while it was down was not told: refetch everything
    } else if (state === 'closed') {
      this.schedulePoll();
    }
  }

  // -- fields ----------------------------------------------------------------------------------

  /** Sets fields; each that changed tells `change:NAME` listeners (the view redraws). */
  private update(values: Partial<RunTreeFields>): void {
    if (this._disposed) {
      return;
    }
    const changed: string[] = [];
    for (const [name, value] of Object.entries(values) as [keyof RunTreeFields, unknown][]) {
      if (JSON.stringify(this._fields[name]) !== JSON.stringify(value)) {
        (this._fields as unknown as { [key: string]: unknown })[name] = value;
        changed.push(name);
      }
    }
    for (const name of changed) {
      for (const callback of [...(this._listeners.get(`change:${name}`) ?? [])]) {
        try {
          callback(this, this._fields[name as keyof RunTreeFields]);
        } catch (err) {
          console.error(`coflux: the run tree failed to show ${name}`, err);
        }
      }
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.clearTimer();
    this.feed.received.disconnect(this.onEvent, this);
    this.feed.stateChanged.disconnect(this.onFeedState, this);
    this._listeners.clear();
    Signal.clearData(this);
  }

  private readonly feed: ProjectEvents;
  private _fields: RunTreeFields;
  private _view: string | null;
  private _run: Run | null = null;
  private _spawned: { [runId: string]: Run } = {};
  private _listeners = new Map<string, Set<Callback>>();
  private _savedExpanded = '';
  private _refreshFailed = false;
  private _refreshing: Promise<void> | null = null;
  private _again = false;
  private _timer: number | null = null;
  private _timerDue = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
