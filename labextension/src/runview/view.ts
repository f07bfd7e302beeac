/**
 * A run in the main area: the header, the graph, and below it the selected step's summary and the
 * run tree (the step's details: arguments, results, logs, assets, re-run and cancel). The tree's
 * model is the one fetch loop: the graph and the header draw what it fetched.
 */
import { MessageLoop } from '@lumino/messaging';
import { type ISignal, Signal } from '@lumino/signaling';
import { Panel, SplitPanel, Widget } from '@lumino/widgets';

import { CommandIds, type CofluxContext, type OpenRunArgs } from '../context';
import { RunTreeWidget } from '../runtree';
import type { Run, Step } from '../types';
import { RunGraph } from './graph';
import { RunHeader } from './header';
import { StepSummary } from './step';

export interface RunViewOptions {
  project: string;
  runId: string;
  /** The workspace to see the run from (default: its own). */
  workspace?: string;
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
    this.side.node.addEventListener('click', this.onTreeClick);
    const split = new SplitPanel({ orientation: 'vertical', spacing: 4 });
    split.addClass('coflux-RunView-split');
    split.addWidget(this.graph);
    split.addWidget(this.side);
    split.setRelativeSizes([2, 3]);
    this.addWidget(this.header);
    this.addWidget(split);
    // The header's height follows its content: the split below measures itself again then.
    this.resizer = new ResizeObserver(() => MessageLoop.sendMessage(split, Widget.ResizeMessage.UnknownSize));
    this.resizer.observe(split.node);

    this._tree = this.makeTree(options.workspace);
    this.graph.stepSelected.connect((_, stepId) => this.selectStep(stepId));
    this.graph.runOpened.connect((_, runId) => void this.openRun(runId));
    this.header.viewChanged.connect((_, view) => this.setView(view));
  }

  /** The run as last fetched. */
  get run(): Run | null {
    return this.tree.run;
  }

  /** The workspace the run is seen from (undefined before the first answer). */
  get view(): string | undefined {
    return this.tree.run?.workspace ?? this.options.workspace;
  }

  /** The workspace the run is seen from changed (picked, or followed after a re-run). */
  get viewChanged(): ISignal<this, string> {
    return this._viewChanged;
  }

  /** The run tree beside the graph (the selected step's details). */
  get tree(): RunTreeWidget {
    return this._tree;
  }

  /** Refetches the run. */
  async refresh(): Promise<void> {
    await this.tree.model.refresh();
  }

  /** Cancels what is still queued or running in the run; the tree says what was done, or the
   * server's refusal. */
  async cancel(): Promise<void> {
    await this.tree.model.handle({ action: 'cancel_run' });
  }

  /** Selects a step: highlighted in the graph, summarised and opened in the tree. */
  selectStep(stepId: string): void {
    this.graph.select(stepId);
    this.summary.show_(this.findStep(stepId));
    this.tree.expand(stepId);
  }

  /** Sees the run from another workspace (a new tree for that view; the open steps stay open). */
  setView(view: string): void {
    if (view === this.view) {
      return;
    }
    this.tree.dispose();
    this._tree = this.makeTree(view);
    this.onChanged();
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.resizer.disconnect();
    Signal.clearData(this);
    this.side.node.removeEventListener('click', this.onTreeClick);
    super.dispose();
  }

  private makeTree(view: string | undefined): RunTreeWidget {
    const { project, runId } = this.options;
    const tree = new RunTreeWidget(this.ctx, { project, runId, view, remember: true });
    tree.addClass('coflux-RunView-tree');
    tree.changed.connect(() => this.onChanged());
    this.side.addWidget(tree);
    return tree;
  }

  private findStep(stepId: string): Step | null {
    for (const run of [this.run, ...Object.values(this.tree.spawned)]) {
      const step = run?.steps?.find(s => s.step_id === stepId);
      if (step) {
        return step;
      }
    }
    return null;
  }

  private onChanged(): void {
    const run = this.tree.run;
    if (run && run.workspace !== this.shownView) {
      this.shownView = run.workspace;
      this.title.label = `Run ${this.options.runId}${run.workspace === run.run_workspace ? '' : ` (${run.workspace})`}`;
      this._viewChanged.emit(run.workspace);
    }
    this.header.update_(run, this.tree.model.get('workspaces'));
    this.graph.render(run, this.tree.spawned, run?.workspace ?? '');
    const selected = this.graph.selected;
    this.summary.show_(selected ? this.findStep(selected) : null);
  }

  /** A step clicked in the tree is selected in the graph too. */
  private readonly onTreeClick = (event: MouseEvent): void => {
    const row = (event.target as Element | null)?.closest?.('.coflux-step[data-step-id]');
    const stepId = row?.getAttribute('data-step-id');
    if (stepId && this.findStep(stepId)) {
      this.graph.select(stepId);
      this.summary.show_(this.findStep(stepId));
    }
  };

  private async openRun(runId: string): Promise<void> {
    const args: OpenRunArgs = { project: this.options.project, runId };
    if (this.view) {
      args.workspace = this.view;
    }
    await this.ctx.app.commands.execute(CommandIds.openRun, { ...args });
  }

  readonly header: RunHeader;
  readonly graph: RunGraph;
  readonly summary: StepSummary;
  private readonly side: Panel;
  private readonly resizer: ResizeObserver;
  private _tree: RunTreeWidget;
  private shownView: string | null = null;
  private _viewChanged = new Signal<this, string>(this);
}
