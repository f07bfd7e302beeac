/** The Run form of one workflow: a JSON field per parameter, checked inline, then `POST .../runs`. */
import { Widget } from '@lumino/widgets';

import { describe } from '../api';
import { CommandIds, type CofluxContext, type OpenRunArgs } from '../context';
import type { Parameter, Workflow } from '../types';
import { buildArguments, formParameters, initialText, readField, requiredKeywordOnly } from './args';
import { h } from './dom';
import type { PanelStore } from './store';

interface Field {
  parameter: Parameter;
  input: HTMLInputElement;
  error: HTMLElement;
}

export class RunForm extends Widget {
  constructor(
    private readonly ctx: CofluxContext,
    private readonly store: PanelStore,
    readonly workflow: Workflow
  ) {
    super({ node: document.createElement('form') });
    this.addClass('coflux-RunForm');
    const form = this.node as HTMLFormElement;
    form.noValidate = true;
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this.submit();
    });
    const blocked = requiredKeywordOnly(workflow);
    const optionalKeywords = workflow.parameters.filter(p => p.kind === 'keyword_only' && p.has_default);
    this.fields = formParameters(workflow).map(p => this.field(p, blocked.length > 0));
    if (!this.fields.length && !blocked.length) {
      form.append(h('div', { className: 'coflux-RunForm-note' }, 'No parameters.'));
    }
    form.append(...this.fields.map(f => f.input.closest('.coflux-RunForm-field')!));
    if (optionalKeywords.length) {
      form.append(
        h(
          'div',
          { className: 'coflux-RunForm-note' },
          `Keyword-only parameters keep their defaults: ${optionalKeywords.map(p => p.name).join(', ')}.`
        )
      );
    }
    if (blocked.length) {
      form.append(
        h(
          'div',
          { className: 'coflux-RunForm-note coflux-Panel-error' },
          `Can't run from here: required keyword-only parameter${blocked.length > 1 ? 's' : ''} ` +
            `${blocked.map(p => p.name).join(', ')} can't be passed by the REST API yet.`
        )
      );
    }
    this.submitButton.disabled = blocked.length > 0;
    form.append(this.serverError, h('div', { className: 'coflux-RunForm-buttons' }, this.submitButton));
  }

  private field(parameter: Parameter, disabled: boolean): Field {
    const required = !parameter.has_default && parameter.kind !== 'var_positional';
    const id = `coflux-run-${this.workflow.module}-${this.workflow.name}-${parameter.name}`.replace(/[^\w-]/g, '_');
    const input = h('input', {
      className: 'jp-mod-styled coflux-RunForm-input',
      id,
      type: 'text',
      value: initialText(parameter),
      disabled,
      spellcheck: false,
      placeholder: required
        ? 'required: a JSON value'
        : parameter.kind === 'var_positional'
          ? 'more arguments: a JSON list'
          : parameter.default === undefined
            ? 'its default (not JSON: left to the worker)'
            : '',
      dataset: { parameter: parameter.name }
    });
    const error = h('div', { className: 'coflux-RunForm-error', attrs: { role: 'alert' } });
    error.hidden = true;
    const label = h(
      'label',
      { className: 'coflux-RunForm-label', htmlFor: id },
      parameter.kind === 'var_positional' ? `*${parameter.name}` : parameter.name,
      parameter.annotation ? h('span', { className: 'coflux-RunForm-annotation' }, `: ${parameter.annotation}`) : null,
      required ? h('span', { className: 'coflux-RunForm-required', title: 'required' }, ' *') : null
    );
    h('div', { className: 'coflux-RunForm-field', dataset: { parameter: parameter.name } }, label, input, error);
    const f = { parameter, input, error };
    input.addEventListener('input', () => {
      this.showError(f, readField(parameter, input.value).kind === 'error' ? this.check().get(parameter.name) : undefined);
    });
    return f;
  }

  private showError(field: Field, message: string | undefined): void {
    field.error.textContent = message ?? '';
    field.error.hidden = !message;
    field.input.classList.toggle('coflux-mod-invalid', !!message);
    field.input.setAttribute('aria-invalid', String(!!message));
  }

  private check(): Map<string, string> {
    return buildArguments(
      this.fields.map(f => f.parameter),
      this.fields.map(f => f.input.value)
    ).errors;
  }

  private async submit(): Promise<void> {
    const { args, errors } = buildArguments(
      this.fields.map(f => f.parameter),
      this.fields.map(f => f.input.value)
    );
    for (const f of this.fields) {
      this.showError(f, errors.get(f.parameter.name));
    }
    this.serverError.hidden = true;
    if (!args) {
      this.fields.find(f => errors.has(f.parameter.name))?.input.focus();
      return;
    }
    const workspace = this.store.workspace;
    if (!workspace) {
      return;
    }
    const project = this.store.project;
    this.submitButton.disabled = true;
    try {
      const { run_id } = await this.ctx.api.startRun(project, workspace, this.workflow.module, this.workflow.name, args);
      this.store.addRun({
        run_id,
        workspace,
        module: this.workflow.module,
        target: this.workflow.name,
        status: 'running',
        created_at: Date.now() / 1000,
        completed_at: null
      });
      const open: OpenRunArgs = { project, runId: run_id, workspace };
      void this.ctx.app.commands.execute(CommandIds.openRun, { ...open });
    } catch (err) {
      this.serverError.textContent = describe(err);
      this.serverError.hidden = false;
    } finally {
      this.submitButton.disabled = false;
    }
  }

  private readonly fields: Field[];
  private readonly serverError = h('div', { className: 'coflux-Panel-error coflux-RunForm-server', attrs: { role: 'alert' } });
  private readonly submitButton = h('button', { type: 'submit', className: 'jp-Button jp-mod-styled jp-mod-accept' }, 'Run');
}
