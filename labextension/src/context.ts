/** What every part of the extension shares: the REST client, the events feeds and the app. */
import type { JupyterFrontEnd } from '@jupyterlab/application';

import type { CofluxApi } from './api';
import type { EventsHub } from './events';

export interface CofluxContext {
  app: JupyterFrontEnd;
  api: CofluxApi;
  events: EventsHub;
}

/** Command ids (the palette shows their labels under "Coflux"). */
export const CommandIds = {
  showPanel: 'coflux:show-panel',
  openRun: 'coflux:open-run',
  switchWorkspace: 'coflux:switch-workspace'
} as const;

/** Arguments of `coflux:open-run`: without `runId` it asks for one. */
export interface OpenRunArgs {
  project?: string;
  runId?: string;
  workspace?: string;
}

/** The MIME type of a Run displayed in a notebook. */
export const RUN_MIME_TYPE = 'application/vnd.coflux.run+json';
