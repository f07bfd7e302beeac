/**
 * Where a run view gets its run: something that holds the run as last fetched, the runs it spawned,
 * and tells when either changed. `RunSource` is the view's own fetch loop (REST plus the project's
 * events feed); the run tree widget offers the same three members, so the graph can follow either.
 */
import { type ISignal, Signal } from '@lumino/signaling';

import { describe } from '../api';
import type { CofluxContext } from '../context';
import type { ConnectionState, ProjectEvents } from '../events';
import type { CofluxEvent, Run } from '../types';

export interface RunFeed {
  /** The run as last fetched, or null before the first answer. */
  readonly run: Run | null;
  /** The runs spawned from it, by id. */
  readonly spawned: Record<string, Run>;
  /** The run or a spawned run changed. */
  readonly changed: ISignal<unknown, void>;
}

const DEBOUNCE_MS = 150;
/** While the feed is down and the run not finished, refetch this often (ms). */
const POLL_MS = 2000;

/** A run (and the runs it spawned, one level deep) followed through REST and the events feed. */
export class RunSource implements RunFeed {
  constructor(
    private readonly ctx: CofluxContext,
    readonly project: string,
    readonly runId: string,
    private _view: string | undefined
  ) {
    this.feed = ctx.events.project(project);
    this.feed.received.connect(this.onEvent, this);
    this.feed.stateChanged.connect(this.onFeedState, this);
    void this.refresh();
  }

  get run(): Run | null {
    return this._run;
  }

  get spawned(): Record<string, Run> {
    return this._spawned;
  }

  /** Why the last fetch failed (the server's message), or '' after a good one. */
  get error(): string {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get view(): string | undefined {
    return this._view;
  }

  /** Sees the run from another workspace (undefined: its own). */
  setView(view: string | undefined): void {
    this._view = view;
    void this.refresh();
  }

  /** Fetches the run and its spawned runs now. */
  async refresh(): Promise<void> {
    this.clearTimers();
    this._abort?.abort();
    const abort = (this._abort = new AbortController());
    try {
      const run = await this.ctx.api.run(this.project, this.runId, this._view, abort.signal);
      const spawned: Record<string, Run> = {};
      await Promise.all(
        (run.spawned_runs ?? []).map(async s => {
          try {
            spawned[s.run_id] = await this.ctx.api.run(this.project, s.run_id, this._view, abort.signal);
          } catch (err) {
            if (abort.signal.aborted) {
              throw err;
            }
          }
        })
      );
      if (abort.signal.aborted || this._disposed) {
        return;
      }
      this._run = run;
      this._spawned = spawned;
      this._error = '';
    } catch (err) {
      if (abort.signal.aborted || this._disposed) {
        return;
      }
      this._error = describe(err);
    }
    this._changed.emit();
    this.pollIfNeeded();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._abort?.abort();
    this.clearTimers();
    this.feed.received.disconnect(this.onEvent, this);
    this.feed.stateChanged.disconnect(this.onFeedState, this);
    Signal.clearData(this);
  }

  private onEvent(_: ProjectEvents, event: CofluxEvent): void {
    if (event.type === 'workspace') {
      return;
    }
    if (event.run_id === this.runId || event.run_id in this._spawned || this.spawnsUnknown(event)) {
      this.schedule();
    }
  }

  /** An execution event of a run we don't know yet may be a run just spawned: refetch to see. */
  private spawnsUnknown(event: CofluxEvent): boolean {
    return event.type === 'run' && this._run !== null && this._run.status === 'running';
  }

  private onFeedState(_: ProjectEvents, state: ConnectionState): void {
    if (state === 'open') {
      void this.refresh(); // events of the outage are lost
    } else {
      this.pollIfNeeded();
    }
  }

  private schedule(): void {
    if (this._debounce === null) {
      this._debounce = window.setTimeout(() => {
        this._debounce = null;
        void this.refresh();
      }, DEBOUNCE_MS);
    }
  }

  private pollIfNeeded(): void {
    const followed = this.feed.state === 'open' && this._error === '';
    if (this._disposed || followed || this._poll !== null) {
      return;
    }
    this._poll = window.setTimeout(() => {
      this._poll = null;
      void this.refresh();
    }, POLL_MS);
  }

  private clearTimers(): void {
    for (const timer of [this._debounce, this._poll]) {
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    }
    this._debounce = this._poll = null;
  }

  private readonly feed: ProjectEvents;
  private _run: Run | null = null;
  private _spawned: Record<string, Run> = {};
  private _error = '';
  private _abort: AbortController | null = null;
  private _debounce: number | null = null;
  private _poll: number | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
