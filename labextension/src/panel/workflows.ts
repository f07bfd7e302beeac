/** The workflows of the selected workspace (registered, or declared by a connected worker), each with its Run form. */
import { Widget } from '@lumino/widgets';

import type { CofluxContext } from '../context';
import type { Workflow } from '../types';
import { h } from './dom';
import { RunForm } from './runform';
import type { Part, PanelStore } from './store';

function key(w: Workflow): string {
  return `${w.module}:${w.name}`;
}

export class WorkflowList extends Widget {
  constructor(
    private readonly ctx: CofluxContext,
    private readonly store: PanelStore
  ) {
    super();
    this.addClass('coflux-WorkflowList');
    this.title.label = 'Workflows';
    store.changed.connect(this.onChanged, this);
    this.render();
  }

  private onChanged(_: PanelStore, part: Part): void {
    if (part === 'workflows' || part === 'selection') {
      this.render();
    }
  }

  private render(): void {
    // keep what is typed in an open form when the list is fetched again, if that workflow is unchanged
    const kept = new Map<string, RunForm>();
    for (const [name, form] of this.forms) {
      const now = this.store.workflows.find(w => key(w) === name);
      if (now && JSON.stringify(now) === JSON.stringify(form.workflow) && this.open === name) {
        kept.set(name, form);
      } else {
        form.dispose();
      }
    }
    this.forms = kept;
    const nodes: HTMLElement[] = [];
    const error = this.store.error('workflows');
    if (error) {
      nodes.push(h('div', { className: 'coflux-Panel-error', attrs: { role: 'alert' } }, error));
    }
    if (!this.store.workflows.length && !error) {
      nodes.push(
        h(
          'div',
          { className: 'coflux-Panel-empty' },
          this.store.loading('workflows')
            ? 'Loading...'
            : this.store.workspace
              ? `No workflows in ${this.store.workspace}: register some (coflux worker --register) or run a notebook that declares them.`
              : 'Select a workspace.'
        )
      );
    }
    for (const w of this.store.workflows) {
      nodes.push(this.item(w));
    }
    this.node.replaceChildren(...nodes);
  }

  private item(w: Workflow): HTMLElement {
    const name = key(w);
    const open = this.open === name;
    const header = h(
      'div',
      {
        className: `coflux-WorkflowList-row${open ? ' jp-mod-selected' : ''}`,
        title: open ? 'Hide the Run form' : 'Show the Run form',
        attrs: { role: 'button', 'aria-expanded': String(open), tabindex: '0' }
      },
      h('span', { className: 'coflux-WorkflowList-caret' }, open ? '▾' : '▸'),
      h('span', { className: 'coflux-WorkflowList-module' }, `${w.module}:`),
      h('span', { className: 'coflux-WorkflowList-name' }, w.name),
      w.type === 'task' && h('span', { className: 'coflux-Badge' }, 'task'),
      h(
        'span',
        {
          className: `coflux-Badge coflux-Badge-${w.registered ? 'registered' : 'declared'}`,
          title: w.registered
            ? 'Registered: it stays listed after its workers are gone'
            : 'Declared by a connected worker, not registered'
        },
        w.registered ? 'registered' : 'declared'
      )
    );
    const toggle = (): void => {
      this.open = open ? null : name;
      this.render();
    };
    header.addEventListener('click', toggle);
    header.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        toggle();
      }
    });
    const item = h('div', { className: 'coflux-WorkflowList-item', dataset: { workflow: name } }, header);
    if (open) {
      let form = this.forms.get(name);
      if (!form) {
        form = new RunForm(this.ctx, this.store, w);
        this.forms.set(name, form);
      }
      item.append(form.node);
    }
    return item;
  }

  override dispose(): void {
    for (const form of this.forms.values()) {
      form.dispose();
    }
    super.dispose();
  }

  private forms = new Map<string, RunForm>();
  private open: string | null = null;
}
