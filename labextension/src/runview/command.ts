/**
 * `coflux:open-run`: opens a run in the main area (one tab per project, run and view workspace;
 * opening it again focuses that tab), restored with the layout.
 */
import type { ILayoutRestorer } from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  showDialog,
  showErrorMessage,
  ToolbarButton,
  WidgetTracker,
  type ICommandPalette
} from '@jupyterlab/apputils';
import { refreshIcon, stopIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { describe } from '../api';
import { CommandIds, type CofluxContext, type OpenRunArgs } from '../context';
import { RunView } from './view';

const LAST_PROJECT = 'coflux:last-project';

function lastProject(): string {
  try {
    return window.localStorage.getItem(LAST_PROJECT) || 'default';
  } catch {
    return 'default';
  }
}

function rememberProject(project: string): void {
  try {
    window.localStorage.setItem(LAST_PROJECT, project);
  } catch {
    // private mode: the default stays 'default'
  }
}

/** The dialog's body: a project and a run id. */
class OpenRunBody extends Widget implements Dialog.IBodyWidget<{ project: string; runId: string }> {
  constructor(project: string) {
    super();
    this.addClass('coflux-OpenRun');
    this.project = this.field('Project', project, 'coflux-OpenRun-project');
    this.runId = this.field('Run id', '', 'coflux-OpenRun-runId');
  }

  getValue(): { project: string; runId: string } {
    return { project: this.project.value.trim(), runId: this.runId.value.trim() };
  }

  protected override onAfterAttach(): void {
    this.runId.focus();
  }

  private field(label: string, value: string, className: string): HTMLInputElement {
    const wrap = document.createElement('label');
    wrap.className = 'coflux-OpenRun-field';
    wrap.textContent = label;
    const input = document.createElement('input');
    input.className = `jp-mod-styled ${className}`;
    input.value = value;
    wrap.appendChild(input);
    this.node.appendChild(wrap);
    return input;
  }

  private readonly project: HTMLInputElement;
  private readonly runId: HTMLInputElement;
}

/** Asks for a run; checks it exists (a wrong id shows the server's message). */
async function askForRun(
  ctx: CofluxContext,
  project: string
): Promise<{ project: string; runId: string } | null> {
  const answer = await showDialog({
    title: 'Open a Coflux run',
    body: new OpenRunBody(project),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Open' })],
    focusNodeSelector: '.coflux-OpenRun-runId'
  });
  const value = answer.value;
  if (!answer.button.accept || !value || !value.runId) {
    return null;
  }
  const chosen = { project: value.project || 'default', runId: value.runId };
  try {
    await ctx.api.run(chosen.project, chosen.runId, undefined);
  } catch (err) {
    await showErrorMessage(`Coflux: can't open run ${chosen.runId}`, describe(err));
    return null;
  }
  return chosen;
}

/** What reopens a tab: its run, seen from the workspace it shows now. */
function argsOf(view: RunView): OpenRunArgs {
  const args: OpenRunArgs = { project: view.options.project, runId: view.options.runId };
  if (view.view) {
    args.workspace = view.view;
  }
  return args;
}

/** A tab of this run, seen from `workspace` if one is asked for. */
function matches(view: RunView, project: string, runId: string, workspace: string | undefined): boolean {
  const { options } = view;
  return (
    options.project === project &&
    options.runId === runId &&
    (!workspace || view.view === workspace || options.workspace === workspace)
  );
}

function makeWidget(
  ctx: CofluxContext,
  args: Required<Pick<OpenRunArgs, 'project' | 'runId'>> & OpenRunArgs
): MainAreaWidget<RunView> {
  const content = new RunView(ctx, { project: args.project, runId: args.runId, workspace: args.workspace });
  const widget = new MainAreaWidget({ content });
  widget.addClass('coflux-RunView-panel');
  widget.id = `coflux-run-${Math.random().toString(36).slice(2)}`;
  content.title.label = `Run ${args.runId}${args.workspace ? ` (${args.workspace})` : ''}`;
  content.title.caption = `Coflux run ${args.runId} of project ${args.project}`;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Refresh the run',
      className: 'coflux-RunView-refresh',
      onClick: () => void content.refresh()
    })
  );
  widget.toolbar.addItem(
    'cancel',
    new ToolbarButton({
      icon: stopIcon,
      label: 'Cancel run',
      tooltip: 'Cancel what is still queued or running in the run',
      className: 'coflux-RunView-cancel',
      onClick: () => void content.cancel()
    })
  );
  return widget;
}

export function activateRunViews(
  ctx: CofluxContext,
  palette: ICommandPalette,
  restorer: ILayoutRestorer | null
): void {
  const tracker = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'coflux-run' });
  ctx.app.commands.addCommand(CommandIds.openRun, {
    label: args =>
      typeof args.runId === 'string' && args.runId ? `Coflux: open run ${args.runId}` : 'Coflux: open run...',
    caption: 'Open a Coflux run as a live graph and tree',
    execute: async raw => {
      const given = raw as OpenRunArgs;
      let project = given.project || lastProject();
      let runId = given.runId;
      if (!runId) {
        const chosen = await askForRun(ctx, project);
        if (!chosen) {
          return;
        }
        ({ project, runId } = chosen);
      }
      rememberProject(project);
      const args = { project, runId, workspace: given.workspace || undefined };
      const open = tracker.find(w => matches(w.content, project, runId, args.workspace));
      if (open) {
        ctx.app.shell.activateById(open.id);
        return open;
      }
      const widget = makeWidget(ctx, args);
      ctx.app.shell.add(widget, 'main');
      await tracker.add(widget);
      widget.content.viewChanged.connect(() => void tracker.save(widget));
      ctx.app.shell.activateById(widget.id);
      return widget;
    }
  });
  palette.addItem({ command: CommandIds.openRun, category: 'Coflux' });
  if (restorer) {
    void restorer.restore(tracker, {
      command: CommandIds.openRun,
      args: w => ({ ...argsOf(w.content) }),
      name: w => {
        const { project, runId, workspace } = argsOf(w.content);
        return `${project ?? ''}/${runId ?? ''}/${workspace ?? ''}`;
      }
    });
  }
}
