import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStatusBar } from '@jupyterlab/statusbar';

import { CofluxApi } from './api';
import type { CofluxContext } from './context';
import { EventsHub } from './events';
import { activateMime } from './mime';
import { activatePanel } from './panel';
import { activateRunViews } from './runview';
import { activateStatus } from './status';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-coflux:plugin',
  description: 'Coflux workspaces, workflows and live runs in JupyterLab',
  autoStart: true,
  requires: [ICommandPalette, IRenderMimeRegistry, INotebookTracker],
  optional: [ILayoutRestorer, IStatusBar, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette,
    rendermime: IRenderMimeRegistry,
    notebooks: INotebookTracker,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null
  ): void => {
    const api = new CofluxApi();
    const ctx: CofluxContext = { app, api, events: new EventsHub(api) };
    activateRunViews(ctx, palette, restorer);
    activatePanel(ctx, palette, restorer);
    activateMime(ctx, rendermime);
    activateStatus(ctx, palette, notebooks, statusBar);
  }
};

export default plugin;
