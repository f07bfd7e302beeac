/** Renders `application/vnd.coflux.run+json` outputs live from the server, with no kernel. */
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { RUN_MIME_TYPE, type CofluxContext } from './context';
import { RunView } from './runview';
import type { RunOutput } from './types';

class RunOutputRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly ctx: CofluxContext) {
    super();
    this.addClass('coflux-RunOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[RUN_MIME_TYPE] as unknown as RunOutput;
    const view = new RunView(this.ctx, { project: data.project, runId: data.run_id, workspace: data.workspace, compact: true });
    Widget.attach(view, this.node);
  }
}

export function activateMime(ctx: CofluxContext, rendermime: IRenderMimeRegistry): void {
  rendermime.addFactory(
    { safe: true, mimeTypes: [RUN_MIME_TYPE], defaultRank: 0, createRenderer: () => new RunOutputRenderer(ctx) },
    0
  );
}
