/**
 * The RunTree in JupyterLab: the notebook widget's own view (coflux/notebook/static/runtree.js,
 * bundled at build time) drawn from a `RunModel` that follows the run through REST and the events
 * feed, so it needs no kernel.
 */
import { type ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import type { CofluxContext } from '../context';
import view from '../generated/runtree';
import type { Run } from '../types';
import { RunModel, type RunModelOptions } from './model';

export { RunModel } from './model';
export type { RunModelOptions, RunTreeFields } from './model';

export type RunTreeOptions = RunModelOptions;

/** The tree of a run (its status, steps, spawned runs, details, logs, assets), live. */
export class RunTreeWidget extends Widget {
  constructor(ctx: CofluxContext, options: RunTreeOptions) {
    super();
    this.addClass('coflux-RunTree');
    this.model = new RunModel(ctx, options);
    this.model.changed.connect(() => this._changed.emit(), this);
    this._cleanup = view.render({ model: this.model, el: this.node });
  }

  readonly model: RunModel;

  /** The run's data changed (it, a spawned run, or their steps). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The run as last fetched, or null before the first answer. */
  get run(): Run | null {
    return this.model.run;
  }

  /** The runs spawned from it (transitively), by id. */
  get spawned(): Record<string, Run> {
    return this.model.spawned;
  }

  /** Opens a step's details (its logs load) and scrolls to it, once it shows. */
  expand(stepId: string): void {
    const expanded = this.model.get('expanded');
    if (!expanded.includes(stepId)) {
      this.model.set('expanded', [...expanded, stepId]);
      this.model.save_changes();
    }
    const scroll = (): boolean => {
      const row = this.node.querySelector(`.coflux-step[data-step-id="${CSS.escape(stepId)}"]`);
      row?.scrollIntoView({ block: 'nearest' });
      return !!row;
    };
    if (!scroll()) {
      const once = (): void => {
        if (scroll() || this.isDisposed) {
          this.model.changed.disconnect(once);
        }
      };
      this.model.changed.connect(once);
    }
  }

  override dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._cleanup?.();
    this.model.dispose();
    Signal.clearData(this);
    super.dispose();
  }

  private _cleanup: (() => void) | undefined;
  private _changed = new Signal<this, void>(this);
}
