/** The recent runs of the selected workspace, live, filtered by workflow (server) and status (here). */
import { Widget } from '@lumino/widgets';

import { CommandIds, type CofluxContext, type OpenRunArgs } from '../context';
import type { RunStatus, RunSummary } from '../types';
import { formatAgo, formatDuration, h } from './dom';
import type { Part, PanelStore } from './store';

const STATUSES: RunStatus[] = ['running', 'succeeded', 'failed', 'cancelled'];
const TICK = 10000;

export class RecentRuns extends Widget {
  constructor(
    private readonly ctx: CofluxContext,
    private readonly store: PanelStore
  ) {
    super();
    this.addClass('coflux-RecentRuns');
    this.title.label = 'Recent runs';
    this.workflowSelect.addEventListener('change', () => this.store.filterRuns(this.workflowSelect.value));
    this.statusSelect.addEventListener('change', () => this.renderList());
    this.node.append(
      h('div', { className: 'coflux-RecentRuns-filters' }, this.workflowSelect, this.statusSelect),
      this.message,
      this.list
    );
    this.statusSelect.replaceChildren(
      h('option', { value: '' }, 'All statuses'),
      ...STATUSES.map(s => h('option', { value: s }, s))
    );
    store.changed.connect(this.onChanged, this);
    this.timer = window.setInterval(() => this.renderList(), TICK);
    this.render();
  }

  override dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  private onChanged(_: PanelStore, part: Part): void {
    if (part === 'runs' || part === 'workflows' || part === 'selection') {
      this.render();
    }
  }

  private render(): void {
    const names = new Set([
      ...this.store.workflows.map(w => `${w.module}:${w.name}`),
      ...this.store.runs.map(r => `${r.module}:${r.target}`)
    ]);
    if (this.store.workflowFilter) {
      names.add(this.store.workflowFilter);
    }
    this.workflowSelect.replaceChildren(
      h('option', { value: '' }, 'All workflows'),
      ...[...names].sort().map(name => h('option', { value: name }, name))
    );
    this.workflowSelect.value = this.store.workflowFilter;
    this.renderList();
  }

  private renderList(): void {
    const error = this.store.error('runs');
    this.message.textContent = error ?? '';
    this.message.hidden = !error;
    const status = this.statusSelect.value;
    const runs = this.store.runs.filter(r => !status || r.status === status);
    const now = Date.now() / 1000;
    const rows = runs.map(r => this.row(r, now));
    if (!rows.length) {
      const empty = this.store.loading('runs')
        ? 'Loading...'
        : this.store.runs.length
          ? `No ${status} runs among the last ${this.store.runs.length}.`
          : 'No runs yet.';
      rows.push(h('div', { className: 'coflux-Panel-empty' }, empty));
    }
    this.list.replaceChildren(...rows);
  }

  private row(run: RunSummary, now: number): HTMLElement {
    const end = run.completed_at ?? (run.status === 'running' ? now : null);
    const duration = end !== null ? formatDuration(end - run.created_at) : '';
    const row = h(
      'div',
      {
        className: 'coflux-RecentRuns-row',
        title: `Open run ${run.run_id} (started ${new Date(run.created_at * 1000).toLocaleString()})`,
        dataset: { runId: run.run_id, status: run.status },
        attrs: { role: 'button', tabindex: '0' }
      },
      h('span', { className: `coflux-Status coflux-Status-${run.status}`, title: run.status }),
      h(
        'span',
        { className: 'coflux-RecentRuns-main' },
        h('span', { className: 'coflux-RecentRuns-target' }, `${run.module}:${run.target}`),
        h(
          'span',
          { className: 'coflux-RecentRuns-meta' },
          h('span', { className: 'coflux-RecentRuns-id' }, run.run_id),
          ' · ',
          h('span', { className: 'coflux-RecentRuns-status' }, run.status),
          ' · ',
          formatAgo(run.created_at, now),
          duration && ` · ${duration}`
        )
      )
    );
    const open = (): void => {
      const args: OpenRunArgs = { project: this.store.project, runId: run.run_id, workspace: run.workspace };
      void this.ctx.app.commands.execute(CommandIds.openRun, { ...args });
    };
    row.addEventListener('click', open);
    row.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        open();
      }
    });
    return row;
  }

  private readonly workflowSelect = h('select', {
    className: 'jp-mod-styled coflux-RecentRuns-workflow',
    title: 'Only the runs of this workflow'
  });
  private readonly statusSelect = h('select', {
    className: 'jp-mod-styled coflux-RecentRuns-status-filter',
    title: 'Only the runs in this state'
  });
  private readonly message = h('div', { className: 'coflux-Panel-error', attrs: { role: 'alert' } });
  private readonly list = h('div', { className: 'coflux-RecentRuns-list' });
  private readonly timer: number;
}
