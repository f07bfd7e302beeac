/**
 * The run view's header: the run's id, workflow and live status, the workspace it is seen from
 * (a picker over the run's lineage and its descendants) and why it can't progress. Errors and
 * notices of actions are the run tree's.
 */
import { type ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import type { Run, Workspace } from '../types';
import { rootStep } from './layout';

/** The workspaces a run can be seen from: its own, its ancestors and its descendants. */
export function viewable(workspaces: Workspace[], own: string): string[] {
  const bases = new Map(workspaces.map(w => [w.name, w.base]));
  const ancestors: string[] = [];
  for (let w: string | null | undefined = bases.get(own); w && !ancestors.includes(w); w = bases.get(w)) {
    ancestors.push(w);
  }
  const descends = (name: string): boolean => {
    const seen = new Set<string>();
    for (let w: string | null | undefined = name; w && !seen.has(w); w = bases.get(w)) {
      if (w === own) {
        return true;
      }
      seen.add(w);
    }
    return false;
  };
  const below = workspaces
    .filter(w => w.state !== 'archived' && w.name !== own && descends(w.name))
    .map(w => w.name)
    .sort();
  return [...ancestors.reverse(), own, ...below];
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

export class RunHeader extends Widget {
  constructor(runId: string) {
    super();
    this.addClass('coflux-RunView-header');
    const line = el('div', 'coflux-RunView-title');
    this.status = el('span', 'coflux-RunView-status');
    this.idNode = el('span', 'coflux-RunView-id', runId);
    this.workflow = el('span', 'coflux-RunView-workflow');
    const from = el('label', 'coflux-RunView-from', 'seen from ');
    this.picker = el('select', 'jp-mod-styled coflux-RunView-workspace');
    this.picker.title = 'the workspace to see the run from (its lineage or a descendant)';
    this.picker.addEventListener('change', () => this._viewChanged.emit(this.picker.value));
    from.appendChild(this.picker);
    line.append(this.status, this.idNode, this.workflow, from);
    this.blocked = el('ul', 'coflux-RunView-blocked');
    this.node.append(line, this.blocked);
  }

  /** The user picked another workspace to see the run from. */
  get viewChanged(): ISignal<this, string> {
    return this._viewChanged;
  }

  update_(run: Run | null, workspaces: Workspace[]): void {
    if (!run) {
      this.status.textContent = 'loading';
      this.status.dataset.status = 'loading';
      return;
    }
    this.status.textContent = run.status;
    this.status.dataset.status = run.status;
    const root = rootStep(run);
    this.workflow.textContent = root ? `${root.module}:${root.target}` : '';
    const names = viewable(workspaces, run.run_workspace);
    if (!names.includes(run.workspace)) {
      names.push(run.workspace);
    }
    const current = [...this.picker.options].map(o => o.value).join('\n');
    if (current !== names.join('\n')) {
      this.picker.replaceChildren(
        ...names.map(n => new Option(n === run.run_workspace ? `${n} (the run's)` : n, n))
      );
    }
    this.picker.value = run.workspace;
    this.blocked.replaceChildren(
      ...run.blocked.map(b => {
        const item = el(
          'li',
          'coflux-RunView-blockedItem',
          `${b.steps} step${b.steps === 1 ? '' : 's'} ${b.message}`
        );
        item.dataset.reason = b.reason;
        return item;
      })
    );
  }

  private readonly status: HTMLSpanElement;
  private readonly idNode: HTMLSpanElement;
  private readonly workflow: HTMLSpanElement;
  private readonly picker: HTMLSelectElement;
  private readonly blocked: HTMLUListElement;
  private _viewChanged = new Signal<this, string>(this);
}
