/** The left side panel "Coflux": projects, workspaces, workflows (with Run forms) and recent runs. */
import type { ILayoutRestorer } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import { SidePanel, ToolbarButton, refreshIcon } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { CommandIds, type CofluxContext } from './context';
import { h } from './panel/dom';
import { cofluxIcon } from './panel/icon';
import { RecentRuns } from './panel/runs';
import { PanelStore, type Part } from './panel/store';
import { WorkflowList } from './panel/workflows';
import { WorkspaceTree } from './panel/workspaces';

/** The project picker and the state of the events feed, above the sections. */
class PanelHeader extends Widget {
  constructor(private readonly store: PanelStore) {
    super();
    this.addClass('coflux-Panel-header');
    this.select.addEventListener('change', () => store.selectProject(this.select.value));
    this.select.addEventListener('focus', () => void store.refreshProjects());
    this.node.append(
      h('h2', { className: 'coflux-Panel-title' }, 'Coflux'),
      h('label', { className: 'coflux-Panel-project' }, h('span', {}, 'Project'), this.select),
      this.feed,
      this.error
    );
    store.changed.connect(this.onChanged, this);
    this.render();
  }

  private onChanged(_: PanelStore, part: Part): void {
    if (part === 'projects' || part === 'feed' || part === 'selection' || part === 'workspaces') {
      this.render();
    }
  }

  private render(): void {
    const { store } = this;
    this.select.replaceChildren(...store.projects.map(p => h('option', { value: p }, p)));
    this.select.value = store.project;
    const state = store.feedState;
    this.feed.hidden = state === 'open';
    this.feed.dataset.state = state;
    const why = store.feedError ? ` (${store.feedError})` : '';
    this.feed.textContent =
      state === 'connecting'
        ? `Connecting to Coflux's live updates...${why}`
        : `Can't reach the Coflux server: reconnecting...${why}`;
    const error = store.unreachable ?? store.error('projects');
    this.error.textContent = error ?? '';
    this.error.hidden = !error;
  }

  private readonly select = h('select', { className: 'jp-mod-styled', title: 'The Coflux project' });
  private readonly feed = h('div', { className: 'coflux-Panel-feed', attrs: { role: 'status' } });
  private readonly error = h('div', { className: 'coflux-Panel-error', attrs: { role: 'alert' } });
}

export class CofluxPanel extends SidePanel {
  constructor(ctx: CofluxContext) {
    super();
    this.id = 'coflux-panel';
    this.addClass('coflux-Panel');
    this.title.icon = cofluxIcon;
    this.title.caption = 'Coflux';
    this.store = new PanelStore(ctx);
    this.header.addWidget(new PanelHeader(this.store));
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh everything',
        onClick: () => void this.store.refreshAll()
      })
    );
    this.addWidget(new WorkspaceTree(ctx, this.store));
    this.addWidget(new WorkflowList(ctx, this.store));
    this.addWidget(new RecentRuns(ctx, this.store));
  }

  /** Shown again: workers may have declared workflows since (no event tells), projects been made. */
  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.store.refreshProjects();
    void this.store.refreshWorkflows();
  }

  override dispose(): void {
    this.store.dispose();
    super.dispose();
  }

  readonly store: PanelStore;
}

export function activatePanel(ctx: CofluxContext, palette: ICommandPalette, restorer: ILayoutRestorer | null): void {
  const panel = new CofluxPanel(ctx);
  // the file browser has rank 100, running sessions 200, the table of contents 400
  ctx.app.shell.add(panel, 'left', { rank: 150 });
  restorer?.add(panel, panel.id);
  ctx.app.commands.addCommand(CommandIds.showPanel, {
    label: 'Coflux: show panel',
    execute: () => ctx.app.shell.activateById(panel.id)
  });
  palette.addItem({ command: CommandIds.showPanel, category: 'Coflux' });
}
