/**
 * A compact summary of the selected step: its target and id, and each execution's attempt, state,
 * workspace, timings and marks. The details themselves (arguments, results, logs, assets, actions)
 * are the run tree's.
 */
import { Widget } from '@lumino/widgets';

import type { Execution, Step } from '../types';

function seconds(from: number | null, to: number | null): string {
  if (from === null || to === null) {
    return '';
  }
  const s = Math.max(0, to - from);
  return s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : `${Math.round(s / 60)} min`;
}

function clock(epoch: number): string {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function timing(e: Execution): string {
  const parts = [`queued ${clock(e.created_at)}`];
  if (e.assigned_at !== null) {
    parts.push(`waited ${seconds(e.created_at, e.assigned_at)}`);
  }
  if (e.completed_at !== null) {
    parts.push(`took ${seconds(e.assigned_at ?? e.created_at, e.completed_at)}`);
  }
  return parts.join(', ');
}

function marks(e: Execution): string[] {
  const found: string[] = [];
  if (e.cached) {
    found.push(e.cached_from ? `cached from ${e.cached_from}` : 'cached');
  }
  if (e.retry) {
    found.push('retry');
  }
  if (e.rerun) {
    found.push('re-run');
  }
  if (e.rerun_parents) {
    found.push(e.fixed_step ? `after ${e.fixed_step} was fixed` : 'then its parents');
  }
  if (e.deferred_to) {
    found.push(`deferred to ${e.deferred_to}`);
  }
  if (e.after_run_ended) {
    found.push('after the run ended');
  }
  return found;
}

export class StepSummary extends Widget {
  constructor() {
    super();
    this.addClass('coflux-RunView-step');
    this.show_(null);
  }

  show_(step: Step | null): void {
    if (!step) {
      this.node.replaceChildren(
        Object.assign(document.createElement('div'), {
          className: 'coflux-RunView-hint',
          textContent: 'Click a step in the graph to see it here.'
        })
      );
      delete this.node.dataset.stepId;
      return;
    }
    this.node.dataset.stepId = step.step_id;
    const title = document.createElement('div');
    title.className = 'coflux-RunView-stepTitle';
    const name = Object.assign(document.createElement('span'), {
      className: 'coflux-RunView-stepName',
      textContent: `${step.module}:${step.target}`
    });
    const id = Object.assign(document.createElement('span'), {
      className: 'coflux-RunView-stepId',
      textContent: step.step_id
    });
    title.append(name, id);
    if (step.memoised) {
      title.append(
        Object.assign(document.createElement('span'), {
          className: 'coflux-RunView-mark',
          textContent: 'memoised'
        })
      );
    }
    const table = document.createElement('table');
    table.className = 'coflux-RunView-executions';
    for (const e of step.executions) {
      const row = table.insertRow();
      row.dataset.executionId = e.execution_id;
      row.dataset.state = e.state;
      row.dataset.workspace = e.workspace;
      const cells = [
        `#${e.attempt}`,
        e.cached ? 'cached' : e.state,
        e.workspace,
        timing(e),
        marks(e).join(', ')
      ];
      cells.forEach((text, i) => {
        const cell = row.insertCell();
        cell.className = `coflux-RunView-col${i}`;
        cell.textContent = text;
      });
    }
    this.node.replaceChildren(title, table);
  }
}
