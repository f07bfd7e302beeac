/**
 * Renders `application/vnd.coflux.run+json` outputs (a Run or a RunTree displayed in a notebook)
 * live from the server, with no kernel: the RunTree view over REST and the events feed, and a
 * link to the run in the main area. Ranked before ipywidgets' renderer, so a saved notebook shows
 * its runs after the kernel is gone; classic front-ends keep the widget view of the same bundle.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { PanelLayout, Widget } from '@lumino/widgets';

import { CommandIds, RUN_MIME_TYPE, type CofluxContext } from './context';
import { RunTreeWidget } from './runtree';
import type { RunOutput } from './types';

/** ipywidgets' renderer (@jupyter-widgets/jupyterlab-manager) has rank -10: lower wins. */
export const RUN_OUTPUT_RANK = -20;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Whether `url` (a kernel's Coflux URL) is the API of the Jupyter server serving this page. */
export function servedHere(url: string, baseUrl: string, here: string = window.location.href): boolean {
  let page: URL;
  let api: URL;
  try {
    page = new URL(URLExt.join(baseUrl, 'coflux'), here);
    api = new URL(url);
  } catch {
    return false;
  }
  const sameHost =
    page.hostname === api.hostname || (LOOPBACK.has(page.hostname) && LOOPBACK.has(api.hostname));
  const path = (u: URL): string => u.pathname.replace(/\/+$/, '');
  return sameHost && page.port === api.port && page.protocol === api.protocol && path(page) === path(api);
}

function text(tag: string, className: string, content: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = content;
  return node;
}

class RunOutputRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly ctx: CofluxContext) {
    super();
    this.addClass('coflux-RunOutput');
    this.layout = new PanelLayout();
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.render(model);
    return Promise.resolve();
  }

  private render(model: IRenderMime.IMimeModel): void {
    const data = (model.data[RUN_MIME_TYPE] ?? {}) as unknown as Partial<RunOutput>;
    const { run_id: runId, project } = data;
    const view = data.view || undefined;
    const workspace = data.workspace || undefined;
    const key = JSON.stringify([runId, project, view, workspace, data.url]);
    if (key === this._key) {
      return; // the same run: the tree already follows it
    }
    this._key = key;
    const layout = this.layout as PanelLayout;
    for (const widget of [...layout.widgets]) {
      widget.dispose();
    }
    if (typeof runId !== 'string' || !runId || typeof project !== 'string' || !project) {
      layout.addWidget(
        new Widget({ node: text('div', 'coflux-RunOutput-elsewhere', 'This output names no Coflux run.') })
      );
      return;
    }
    if (data.url && !servedHere(data.url, this.ctx.api.settings.baseUrl)) {
      const node = document.createElement('div');
      node.className = 'coflux-RunOutput-elsewhere';
      node.setAttribute('role', 'note');
      node.append(
        'Run ',
        text('code', '', runId),
        ` (project ${project}) is on another Coflux server, `,
        text('code', '', data.url),
        ', not the one serving this page: it is not shown here. Open the notebook from that server to see it live.'
      );
      layout.addWidget(new Widget({ node }));
      return;
    }
    const bar = document.createElement('div');
    bar.className = 'coflux-RunOutput-bar';
    const open = text('a', 'coflux-RunOutput-open', 'open in the run view');
    open.setAttribute('href', '#');
    open.title = `Open run ${runId} in the main area`;
    open.addEventListener('click', event => {
      event.preventDefault();
      const args: { [key: string]: string } = { project, runId };
      if (view) {
        args.workspace = view;
      }
      void this.ctx.app.commands.execute(CommandIds.openRun, args);
    });
    bar.append(open);
    layout.addWidget(new Widget({ node: bar }));
    layout.addWidget(new RunTreeWidget(this.ctx, { project, runId, view, workspace, remember: true }));
  }

  private _key: string | null = null;
}

export function activateMime(ctx: CofluxContext, rendermime: IRenderMimeRegistry): void {
  rendermime.addFactory(
    {
      safe: true,
      mimeTypes: [RUN_MIME_TYPE],
      defaultRank: RUN_OUTPUT_RANK,
      createRenderer: () => new RunOutputRenderer(ctx)
    },
    RUN_OUTPUT_RANK
  );
}
