/**
 * A run in the main area: the header, the graph, and beside it the selected step's summary and
 * details, all following the run live.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { MessageLoop } from '@lumino/messaging';
import { Panel, SplitPanel, Widget } from '@lumino/widgets';

import { describe } from '../api';
import { CommandIds, type CofluxContext, type OpenRunArgs } from '../context';
import type { ProjectEvents } from '../events';
import type { CofluxEvent, Run, Workspace } from '../types';
import { RunSource } from './feed';
import { RunGraph } from './graph';
import { RunHeader } from './header';
import { StepSummary } from './step';

export interface RunViewOptions {
  project: string;
  runId: string;
  /** The workspace to see the run from (default: its own). */
  workspace?: string;
  /** A smaller view (graph only), for a notebook's output. */
  compact?: boolean;
}

export class RunView extends Panel {
  constructor(
    private readonly ctx: CofluxContext,
    readonly options: RunViewOptions
  ) {
    super();
    this.addClass('coflux-RunView');
    this.node.dataset.runId = options.runId;
    this.header = new RunHeader(options.runId);
    this.graph = new RunGraph();
    this.summary = new StepSummary();
    this.side = new Panel();
    this.side.addClass('coflux-RunView-side');
    this.side.addWidget(this.summary);
    const split = new SplitPanel({ orientation: 'vertical', spacing: 4 });
    split.addClass('coflux-RunView-split');
    split.addWidget(this.graph);
    split.addWidget(this.side);
    split.setRelativeSizes([1, 1]);
    this.addWidget(this.header);
    this.addWidget(split);
    // The header's height follows its content: the split below measures itself again then.
    this.resizer = new ResizeObserver(() => MessageLoop.sendMessage(split, Widget.ResizeMessage.UnknownSize));
    this.resizer.observe(split.node);
    if (options.compact) {
      this.addClass('coflux-mod-compact');
      this.side.hide();
    }

    this.source = new RunSource(ctx, options.project, options.runId, options.workspace);
    this.source.changed.connect(this.onChanged, this);
    this.graph.stepSelected.connect((_, stepId) => this.selectStep(stepId));
    this.graph.runOpened.connect((_, runId) => void this.openRun(runId));
    this.header.viewChanged.connect((_, view) => this.setView(view));
    this.events = ctx.events.project(options.project);
    this.events.received.connect(this.onEvent, this);
    void this.loadWorkspaces();
  }

  /** The run as last fetched. */
  get run(): Run | null {
    return this.source.run;
  }

  /** The workspace the run is seen from (undefined: its own). */
  get view(): string | undefined {
    return this.source.view;
  }

  /** Refetches the run (and the workspaces). */
  async refresh(): Promise<void> {
    await Promise.all([this.source.refresh(), this.loadWorkspaces()]);
  }

  /** Cancels what is still queued or running in the run; a refusal shows the server's message. */
  async cancel(): Promise<void> {
    try {
      await this.ctx.api.cancelRun(this.options.project, this.options.runId);
      this.header.setError('');
    } catch (err) {
      this.header.setError(describe(err));
      await showErrorMessage('Coflux: cancel failed', describe(err));
    }
    await this.source.refresh();
  }

  /** Selects a step: highlighted in the graph, summarised beside it. */
  selectStep(stepId: string): void {
    this.graph.select(stepId);
    this.summary.show_(this.run?.steps?.find(s => s.step_id === stepId) ?? null);
  }

  setView(view: string): void {
    this.source.setView(view);
    this._viewChanged = true;
  }

  /** True once the user picked another view (the tab's title and restore args follow it). */
  get viewPicked(): boolean {
    return this._viewChanged;
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.resizer.disconnect();
    this.source.dispose();
    this.events.received.disconnect(this.onEvent, this);
    super.dispose();
  }

  private onChanged(): void {
    const run = this.source.run;
    this.header.setError(this.source.error);
    this.header.update_(run, this.workspaces);
    this.graph.render(run, this.source.spawned, run?.workspace ?? '');
    const selected = this.graph.selected;
    this.summary.show_(selected ? run?.steps?.find(s => s.step_id === selected) ?? null : null);
  }

  private onEvent(_: ProjectEvents, event: CofluxEvent): void {
    if (event.type === 'workspace') {
      void this.loadWorkspaces();
    }
  }

  private async loadWorkspaces(): Promise<void> {
    try {
      this.workspaces = (await this.ctx.api.workspaces(this.options.project)).workspaces;
      this.header.update_(this.source.run, this.workspaces);
    } catch {
      // the run's own fetch reports the server being away
    }
  }

  private async openRun(runId: string): Promise<void> {
    const args: OpenRunArgs = { project: this.options.project, runId, workspace: this.source.view };
    await this.ctx.app.commands.execute(CommandIds.openRun, { ...args });
  }

  readonly header: RunHeader;
  readonly graph: RunGraph;
  readonly summary: StepSummary;
  readonly side: Panel;
  private readonly source: RunSource;
  private readonly resizer: ResizeObserver;
  private readonly events: ProjectEvents;
  private workspaces: Workspace[] = [];
  private _viewChanged = false;
}
