/** The workspace tree: bases as parents, each one's state, and its actions (new child, pause, resume). */
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { addIcon, type LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { describe } from '../api';
import type { CofluxContext } from '../context';
import type { Workspace } from '../types';
import { h } from './dom';
import { pauseIcon, resumeIcon } from './icon';
import type { Part, PanelStore } from './store';

export class WorkspaceTree extends Widget {
  constructor(
    private readonly ctx: CofluxContext,
    private readonly store: PanelStore
  ) {
    super();
    this.addClass('coflux-WorkspaceTree');
    this.title.label = 'Workspaces';
    this.archivedToggle = h('input', { type: 'checkbox', className: 'coflux-WorkspaceTree-archived' });
    this.archivedToggle.addEventListener('change', () => this.render());
    this.node.append(
      h('label', { className: 'coflux-Panel-option' }, this.archivedToggle, 'Show archived'),
      this.message,
      this.list
    );
    this.list.setAttribute('role', 'tree');
    store.changed.connect(this.onChanged, this);
    this.render();
  }

  private onChanged(_: PanelStore, part: Part): void {
    if (part === 'workspaces' || part === 'selection') {
      this.render();
    }
  }

  private render(): void {
    const error = this.actionError ?? this.store.error('workspaces');
    this.message.textContent = error ?? '';
    this.message.hidden = !error;
    const showArchived = this.archivedToggle.checked;
    const shown = this.store.workspaces.filter(w => showArchived || w.state !== 'archived');
    const names = new Set(shown.map(w => w.name));
    const children = new Map<string | null, Workspace[]>();
    for (const w of shown) {
      const parent = w.base !== null && names.has(w.base) ? w.base : null;
      children.set(parent, [...(children.get(parent) ?? []), w]);
    }
    const rows: HTMLElement[] = [];
    const visit = (parent: string | null, depth: number): void => {
      for (const w of children.get(parent) ?? []) {
        rows.push(this.row(w, depth));
        visit(w.name, depth + 1);
      }
    };
    visit(null, 0);
    if (!rows.length && !error) {
      rows.push(h('div', { className: 'coflux-Panel-empty' }, 'No workspaces yet.'));
    }
    this.list.replaceChildren(...rows);
  }

  private row(w: Workspace, depth: number): HTMLElement {
    const selected = w.name === this.store.workspace;
    const actions = h('span', { className: 'coflux-WorkspaceTree-actions' });
    if (w.state !== 'archived') {
      actions.append(this.button(addIcon, 'New child workspace...', () => this.createChild(w.name)));
    }
    if (w.state === 'active') {
      actions.append(this.button(pauseIcon, 'Pause', () => this.change(w.name, 'pause')));
    } else if (w.state === 'paused') {
      actions.append(this.button(resumeIcon, 'Resume', () => this.change(w.name, 'resume')));
    }
    const row = h(
      'div',
      {
        className: `coflux-WorkspaceTree-row${selected ? ' jp-mod-selected' : ''}`,
        title: w.base ? `${w.name} (based on ${w.base})` : w.name,
        dataset: { workspace: w.name, state: w.state, depth: String(depth) },
        attrs: { role: 'treeitem', 'aria-selected': String(selected), 'aria-level': String(depth + 1) }
      },
      h('span', { className: 'coflux-WorkspaceTree-name' }, w.name),
      w.state !== 'active' && h('span', { className: `coflux-Badge coflux-Badge-${w.state}` }, w.state),
      actions
    );
    row.style.paddingLeft = `${8 + depth * 16}px`;
    row.addEventListener('click', () => this.store.selectWorkspace(w.name));
    return row;
  }

  private button(icon: LabIcon, label: string, action: () => Promise<void>): HTMLElement {
    const button = h('button', {
      className: 'jp-Button jp-mod-minimal coflux-IconButton',
      title: label,
      attrs: { 'aria-label': label }
    });
    icon.element({ container: button, tag: null, elementSize: 'normal' });
    button.addEventListener('click', event => {
      event.stopPropagation();
      void action();
    });
    return button;
  }

  private async createChild(base: string): Promise<void> {
    const answer = await InputDialog.getText({
      title: `New child workspace of ${base}`,
      label: 'Name',
      placeholder: `e.g. ${base === 'default' ? 'dev' : `${base}/dev`}`,
      okLabel: 'Create'
    });
    if (!answer.button.accept || !answer.value?.trim()) {
      return;
    }
    const name = answer.value.trim();
    await this.act(`create ${name}`, async () => {
      this.store.putWorkspace(await this.ctx.api.createWorkspace(this.store.project, name, base));
      this.store.selectWorkspace(name);
    });
  }

  private async change(name: string, action: 'pause' | 'resume'): Promise<void> {
    await this.act(`${action} ${name}`, async () => {
      this.store.putWorkspace(await this.ctx.api.changeWorkspace(this.store.project, name, action));
    });
  }

  /** Runs an action; a refusal shows the server's message here and as a notification. */
  private async act(what: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
      this.actionError = null;
    } catch (err) {
      this.actionError = `Could not ${what}: ${describe(err)}`;
      Notification.error(this.actionError, { autoClose: 5000 });
    }
    this.render();
  }

  private readonly archivedToggle: HTMLInputElement;
  private readonly message = h('div', { className: 'coflux-Panel-error', attrs: { role: 'alert' } });
  private readonly list = h('div', { className: 'coflux-WorkspaceTree-list' });
  private actionError: string | null = null;
}
