/**
 * What the panel shows, fetched from the REST API and kept live by the project's events feed:
 * projects, workspaces, the selected workspace's workflows and recent runs, and each one's error.
 * After the feed reopens (the server restarted, the network came back) everything is fetched again.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { CofluxError, describe } from '../api';
import type { CofluxContext } from '../context';
import type { ConnectionState, ProjectEvents } from '../events';
import type { CofluxEvent, RunStatus, RunSummary, Workflow, Workspace } from '../types';

export type Part = 'projects' | 'workspaces' | 'workflows' | 'runs' | 'feed' | 'selection';

const PROJECT_KEY = 'coflux:panel:project';
const WORKSPACE_KEY = 'coflux:panel:workspace:';
export const RUNS_LIMIT = 50;
const REFETCH_DELAY = 250;
const LAG_DELAY = 1000;
const LAG_RETRIES = 5;

function load(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function save(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // private mode or full: the choice is not remembered, nothing else changes
  }
}

export class PanelStore {
  constructor(private readonly ctx: CofluxContext) {
    this._project = load(PROJECT_KEY) || 'default';
    this.follow();
    void this.refreshAll();
  }

  /** One part changed (its data or its error). */
  get changed(): ISignal<this, Part> {
    return this._changed;
  }

  get project(): string {
    return this._project;
  }
  get projects(): string[] {
    return this._projects.includes(this._project) ? this._projects : [this._project, ...this._projects];
  }
  get workspaces(): Workspace[] {
    return this._workspaces;
  }
  get workspace(): string | null {
    return this._workspace;
  }
  get workflows(): Workflow[] {
    return this._workflows;
  }
  get runs(): RunSummary[] {
    return this._runs;
  }
  /** The workflow (`module:name`) recent runs are filtered by, or '' for all. */
  get workflowFilter(): string {
    return this._workflowFilter;
  }
  get feedState(): ConnectionState {
    return this._feed?.state ?? 'closed';
  }
  get feedError(): string | null {
    return this._feed?.lastError ?? null;
  }
  /** The last failure of fetching a part, as one readable line (null once it worked again). A
   * server that can't be reached at all is told once, by `unreachable`, not by every part. */
  error(part: Part): string | null {
    return this._errors.get(part) ?? null;
  }
  /** Why the last request could not reach the server (null once one did). */
  get unreachable(): string | null {
    return this._unreachable;
  }
  /** Whether a part is being fetched for the first time (after a selection change). */
  loading(part: Part): boolean {
    return this._loading.has(part);
  }

  selectProject(project: string): void {
    if (project === this._project) {
      return;
    }
    this._project = project;
    save(PROJECT_KEY, project);
    this._workspace = null;
    this._workspaces = [];
    this._workflows = [];
    this._runs = [];
    this._workflowFilter = '';
    this.follow();
    this._changed.emit('selection');
    void this.refreshAll();
  }

  selectWorkspace(workspace: string): void {
    if (workspace === this._workspace) {
      return;
    }
    this._workspace = workspace;
    save(WORKSPACE_KEY + this._project, workspace);
    this._workflows = [];
    this._runs = [];
    this._workflowFilter = '';
    this._changed.emit('selection');
    void this.refreshWorkflows();
    void this.refreshRuns();
  }

  filterRuns(workflow: string): void {
    this._workflowFilter = workflow;
    this._runs = [];
    this._changed.emit('runs');
    void this.refreshRuns();
  }

  /** A run this panel just started: at the top of the list at once (the feed confirms it). */
  addRun(run: RunSummary): void {
    const filtered = this._workflowFilter && this._workflowFilter !== `${run.module}:${run.target}`;
    if (!filtered && run.workspace === this._workspace && !this._runs.some(r => r.run_id === run.run_id)) {
      this._runs = [run, ...this._runs];
      this._changed.emit('runs');
    }
  }

  /** Replaces a workspace as the server answered an action on it. */
  putWorkspace(workspace: Workspace, renamedFrom?: string): void {
    const old = renamedFrom ?? workspace.name;
    const rest = this._workspaces.filter(w => w.name !== old && w.name !== workspace.name);
    this._workspaces = [...rest, workspace].sort((a, b) => a.name.localeCompare(b.name));
    if (renamedFrom && this._workspace === renamedFrom) {
      this._workspace = workspace.name;
    }
    this._changed.emit('workspaces');
  }

  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshProjects(), this.refreshWorkspaces()]);
    await Promise.all([this.refreshWorkflows(), this.refreshRuns()]);
  }

  async refreshProjects(): Promise<void> {
    await this.fetch('projects', async () => {
      const { projects } = await this.ctx.api.projects();
      this._projects = projects.map(p => p.name).sort();
    });
  }

  async refreshWorkspaces(): Promise<void> {
    const project = this._project;
    await this.fetch('workspaces', async () => {
      const { workspaces } = await this.ctx.api.workspaces(project);
      if (project !== this._project) {
        return;
      }
      this._workspaces = [...workspaces].sort((a, b) => a.name.localeCompare(b.name));
      if (!this._workspace || !workspaces.some(w => w.name === this._workspace)) {
        this._workspace = this.defaultWorkspace();
        this._changed.emit('selection');
      }
    });
  }

  async refreshWorkflows(): Promise<void> {
    const { _project: project, _workspace: workspace } = this;
    if (!workspace) {
      return;
    }
    await this.fetch('workflows', async () => {
      const { workflows } = await this.ctx.api.workflows(project, workspace);
      if (project === this._project && workspace === this._workspace) {
        this._workflows = [...workflows].sort((a, b) =>
          `${a.module}:${a.name}`.localeCompare(`${b.module}:${b.name}`)
        );
      }
    });
  }

  async refreshRuns(): Promise<void> {
    const { _project: project, _workspace: workspace, _workflowFilter: workflow } = this;
    if (!workspace) {
      return;
    }
    await this.fetch('runs', async () => {
      const { runs } = await this.ctx.api.runs(project, workspace, { workflow, limit: RUNS_LIMIT });
      if (project === this._project && workspace === this._workspace && workflow === this._workflowFilter) {
        this._runs = runs.map(r => this.withEventStatus(r));
        // the list may lag the feed by a moment (an end the feed told not stored yet): ask again
        const lagging = this._runs.some(r => r.status !== 'running' && r.completed_at === null);
        if (lagging && this._lagRetries < LAG_RETRIES) {
          this._lagRetries += 1;
          this.scheduleRefetch(LAG_DELAY);
        } else if (!lagging) {
          this._lagRetries = 0;
        }
      }
    });
  }

  dispose(): void {
    this._feed?.received.disconnect(this.onEvent, this);
    this._feed?.stateChanged.disconnect(this.onFeedState, this);
    window.clearTimeout(this._refetchTimer);
    Signal.clearData(this);
  }

  private defaultWorkspace(): string | null {
    const usable = this._workspaces.filter(w => w.state !== 'archived');
    const remembered = load(WORKSPACE_KEY + this._project);
    for (const name of [remembered, 'default']) {
      if (name && usable.some(w => w.name === name)) {
        return name;
      }
    }
    return usable[0]?.name ?? this._workspaces[0]?.name ?? null;
  }

  private async fetch(part: Part, body: () => Promise<void>): Promise<void> {
    if (part === 'workflows' || part === 'runs') {
      this._loading.add(part);
    }
    try {
      await body();
      this._errors.delete(part);
      this.setUnreachable(null);
    } catch (err) {
      if (err instanceof CofluxError && err.code === 'network') {
        this._errors.delete(part);
        this.setUnreachable(err.message);
      } else {
        this._errors.set(part, describe(err));
        this.setUnreachable(null);
      }
    } finally {
      this._loading.delete(part);
    }
    this._changed.emit(part);
  }

  private setUnreachable(message: string | null): void {
    if (message !== this._unreachable) {
      this._unreachable = message;
      this._changed.emit('feed');
    }
  }

  /** Listens to the feed of the current project (and no other). */
  private follow(): void {
    this._feed?.received.disconnect(this.onEvent, this);
    this._feed?.stateChanged.disconnect(this.onFeedState, this);
    this._feed = this.ctx.events.project(this._project);
    this._feed.received.connect(this.onEvent, this);
    this._feed.stateChanged.connect(this.onFeedState, this);
    this._wasOpen = this._feed.state === 'open';
  }

  private onFeedState(_: ProjectEvents, state: ConnectionState): void {
    this._changed.emit('feed');
    if (state === 'open') {
      if (!this._wasOpen) {
        // events sent while the socket was down are lost: what the panel shows may be stale
        void this.refreshAll();
      }
      this._wasOpen = true;
    } else if (state === 'closed') {
      this._wasOpen = false;
    }
  }

  private onEvent(_: ProjectEvents, event: CofluxEvent): void {
    if (event.type === 'workspace') {
      this.putWorkspace({ name: event.name, base: event.base, state: event.state }, event.renamed_from);
    } else if (event.type === 'run') {
      this.onRun(event.run_id, event.status);
    }
  }

  /** A run as listed, with the end the feed told of if the list doesn't know it yet. */
  private withEventStatus(run: RunSummary): RunSummary {
    const told = this._ended.get(run.run_id);
    return told && run.status === 'running' ? { ...run, status: told } : run;
  }

  private onRun(runId: string, status: RunStatus): void {
    if (status === 'running') {
      this._ended.delete(runId);
    } else {
      this._ended.set(runId, status);
    }
    const known = this._runs.find(r => r.run_id === runId);
    if (known) {
      if (known.status !== status) {
        this._runs = this._runs.map(r => (r.run_id === runId ? { ...r, status } : r));
        this._changed.emit('runs');
      }
      if (status === 'running' && known.completed_at === null) {
        return;
      }
    }
    // a new run (of this workspace or not), or one that ended (its end time): ask the server
    this.scheduleRefetch();
  }

  private scheduleRefetch(delay: number = REFETCH_DELAY): void {
    window.clearTimeout(this._refetchTimer);
    this._refetchTimer = window.setTimeout(() => {
      void this.refreshRuns();
    }, delay);
  }

  private _project: string;
  private _projects: string[] = [];
  private _workspaces: Workspace[] = [];
  private _workspace: string | null = null;
  private _workflows: Workflow[] = [];
  private _runs: RunSummary[] = [];
  private _workflowFilter = '';
  private _errors = new Map<Part, string>();
  private _unreachable: string | null = null;
  private _loading = new Set<Part>();
  private _feed: ProjectEvents | null = null;
  private _wasOpen = false;
  private _refetchTimer = 0;
  private _lagRetries = 0;
  /** Runs the feed told have ended (a re-run may make one run again: then the feed says so). */
  private _ended = new Map<string, RunStatus>();
  private _changed = new Signal<this, Part>(this);
}
