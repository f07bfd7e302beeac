/** The status bar item: the active notebook's kernel workspace, and the server's connection. */
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import type { CofluxContext } from './context';

export function activateStatus(
  ctx: CofluxContext,
  _palette: ICommandPalette,
  _notebooks: INotebookTracker,
  statusBar: IStatusBar | null
): void {
  if (!statusBar) {
    return;
  }
  const item = new Widget();
  item.addClass('coflux-StatusItem');
  item.node.textContent = 'Coflux';
  const events = ctx.events.project('default');
  events.stateChanged.connect((_, state) => {
    item.node.textContent = `Coflux: ${state}`;
  });
  statusBar.registerStatusItem('jupyter-coflux:status', { item, align: 'left', rank: 100 });
}
