/** The left side panel "Coflux": projects, workspaces, workflows and recent runs. */
import type { ILayoutRestorer } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { describe } from './api';
import { CommandIds, type CofluxContext } from './context';

export class CofluxPanel extends Widget {
  constructor(private readonly ctx: CofluxContext) {
    super();
    this.id = 'coflux-panel';
    this.addClass('coflux-Panel');
    this.title.caption = 'Coflux';
    this.title.label = 'Coflux';
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      const { workspaces } = await this.ctx.api.workspaces('default');
      this.node.textContent = workspaces.map(w => w.name).join(', ');
    } catch (err) {
      this.node.textContent = describe(err);
    }
  }
}

export function activatePanel(ctx: CofluxContext, palette: ICommandPalette, restorer: ILayoutRestorer | null): void {
  const panel = new CofluxPanel(ctx);
  ctx.app.shell.add(panel, 'left', { rank: 600 });
  restorer?.add(panel, panel.id);
  ctx.app.commands.addCommand(CommandIds.showPanel, {
    label: 'Coflux: show panel',
    execute: () => ctx.app.shell.activateById(panel.id)
  });
  palette.addItem({ command: CommandIds.showPanel, category: 'Coflux' });
}
