/**
 * The status bar item: the workspace the active notebook's kernel serves, as the server knows it
 * (`GET kernels/{kernel_id}`, then the project feed's `worker` events), and the state of the
 * server's events feed. Clicking it, or the command "Coflux: switch workspace", opens a chooser of
 * the project's workspaces; choosing one runs `%coflux workspace NAME` in the kernel, silently.
 */
import { Dialog, ICommandPalette, InputDialog, Notification, showErrorMessage } from '@jupyterlab/apputils';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { IStatusBar } from '@jupyterlab/statusbar';
import { checkIcon } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { CofluxError, describe } from './api';
import { CommandIds, type CofluxContext } from './context';
import type { ConnectionState, ProjectEvents } from './events';
import type { CofluxEvent, KernelWorker, Workspace } from './types';

/** What the server accepts as a workspace name (`coflux.models.valid_workspace_name`). */
const WORKSPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}(\/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}){0,7}$/;
/** After this long without the kernel's answer, the user is told that the kernel is busy. */
const BUSY_NOTICE_MS = 8000;
/** How long a switch the kernel confirmed may wait for the server to see the kernel's new session. */
const CONFIRM_MS = 30000;
const NEW_WORKSPACE = 'New workspace…';
const SWITCH = 'Switch';

/** The events feed as the user sees it. */
export type FeedState = 'connected' | 'connecting' | 'reconnecting' | 'unreachable';

/** A switch that could not be done, in words for the user. */
class SwitchError extends Error {}

/**
 * The active notebook's kernel and its worker session, kept up to date: notebook switches, kernel
 * changes and restarts, the project feed's `worker` events, and a refetch after a feed outage.
 */
export class KernelStatus {
  constructor(
    private readonly ctx: CofluxContext,
    private readonly notebooks: INotebookTracker
  ) {
    notebooks.currentChanged.connect((_, panel) => this.follow(panel));
    this.follow(notebooks.currentWidget);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The active notebook (null when there is none). */
  get panel(): NotebookPanel | null {
    return this._panel;
  }

  get kernelId(): string | null {
    return this._panel?.sessionContext.session?.kernel?.id ?? null;
  }

  /** The kernel's worker session (null: it has none, or it is not known yet). */
  get worker(): KernelWorker | null {
    return this._worker;
  }

  /** The server was asked about this kernel at least once since it became the active one. */
  get known(): boolean {
    return this._known;
  }

  /** Why the server could not be asked (null: it answered). */
  get error(): string | null {
    return this._error;
  }

  /** The workspace the kernel is switching to, while it is. */
  get switching(): string | null {
    return this._switching;
  }

  /** The project whose feed is followed: the kernel's, or `default` (where kernels start). */
  get project(): string {
    return this._worker?.project ?? 'default';
  }

  get feedState(): FeedState {
    return this._feedState;
  }

  /** Why the feed is down (null while it is up). */
  get feedError(): string | null {
    return this._feed?.state === 'open' ? null : (this._feed?.lastError ?? null);
  }

  /** Ask the server again which workspace the kernel serves. */
  async refresh(): Promise<void> {
    const kernelId = this.kernelId;
    this._lookup?.abort();
    if (kernelId === null) {
      this._lookup = null;
      this.setWorker(null, null, false);
      return;
    }
    const lookup = new AbortController();
    this._lookup = lookup;
    try {
      const worker = await this.ctx.api.kernelWorker(kernelId, lookup.signal);
      if (!lookup.signal.aborted) {
        this.setWorker(worker, null, true);
      }
    } catch (err) {
      if (lookup.signal.aborted || (err instanceof DOMException && err.name === 'AbortError')) {
        return;
      }
      if (err instanceof CofluxError && err.status === 404) {
        this.setWorker(null, null, true); // the kernel has no worker session
      } else {
        this.setWorker(this._worker, describe(err), true);
      }
    }
  }

  /**
   * Switch the kernel to `workspace`: `%coflux workspace NAME` runs silently in the kernel; this
   * resolves once the server has the kernel's session in that workspace, and rejects with a
   * readable `Error` otherwise.
   */
  async switchTo(workspace: string): Promise<void> {
    const kernel = this._panel?.sessionContext.session?.kernel ?? null;
    if (kernel === null) {
      throw new SwitchError('There is no notebook kernel to switch: open a notebook and start its kernel.');
    }
    if (!WORKSPACE_NAME.test(workspace)) {
      throw new SwitchError(invalidName(workspace));
    }
    if (this._switching !== null) {
      throw new SwitchError(`The kernel is already switching to workspace '${this._switching}'.`);
    }
    this._switching = workspace;
    this._changed.emit();
    try {
      await this.execute(kernel, `%coflux workspace ${workspace}`, workspace);
      await this.confirmed(kernel.id, workspace);
    } finally {
      this._switching = null;
      this._changed.emit();
      void this.refresh();
    }
  }

  dispose(): void {
    this._lookup?.abort();
    Signal.clearData(this);
  }

  private async execute(kernel: Kernel.IKernelConnection, code: string, workspace: string): Promise<void> {
    const future = kernel.requestExecute({ code, silent: true, store_history: false });
    const busy = window.setTimeout(() => {
      Notification.warning(
        `The kernel is busy: it switches to workspace '${workspace}' once what it runs now has finished.`,
        { autoClose: 6000 }
      );
    }, BUSY_NOTICE_MS);
    let reply: KernelMessage.IExecuteReplyMsg;
    try {
      reply = await future.done;
    } catch (err) {
      throw new SwitchError(
        `The kernel stopped before it switched to workspace '${workspace}' (${describe(err)}).`
      );
    } finally {
      window.clearTimeout(busy);
    }
    const content = reply.content;
    if (content.status === 'error') {
      const message = content.ename === 'UsageError' ? content.evalue : `${content.ename}: ${content.evalue}`;
      throw new SwitchError(`The kernel could not switch to workspace '${workspace}': ${message}`);
    }
    if (content.status === 'aborted') {
      throw new SwitchError(`The kernel did not switch to workspace '${workspace}': it aborted the request.`);
    }
  }

  /** Resolves once the server says kernel `kernelId` serves `workspace`, connected. */
  private confirmed(kernelId: string, workspace: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        const worker = this._worker;
        if (this.kernelId !== kernelId) {
          done();
          resolve(); // another notebook is active now: the kernel's own answer is all there is
        } else if (worker !== null && worker.workspace === workspace && worker.connected) {
          done();
          resolve();
        }
      };
      const timer = window.setTimeout(() => {
        done();
        const now = this._worker;
        const seen = now ? `its worker is in workspace '${now.workspace}'` : 'it has no worker session';
        reject(
          new SwitchError(
            `The kernel switched to workspace '${workspace}', but the server does not show it there yet: ${seen}` +
              (this._error ? ` (${this._error})` : '') +
              '.'
          )
        );
      }, CONFIRM_MS);
      const done = (): void => {
        window.clearTimeout(timer);
        this._changed.disconnect(check);
      };
      this._changed.connect(check);
      void this.refresh();
    });
  }

  private follow(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    const previous = this._panel;
    if (previous !== null) {
      previous.sessionContext.kernelChanged.disconnect(this.onKernelChanged);
      previous.sessionContext.statusChanged.disconnect(this.onKernelStatus);
      previous.disposed.disconnect(this.onPanelDisposed);
    }
    this._panel = panel;
    this._worker = null;
    this._known = false;
    this._error = null;
    if (panel !== null) {
      panel.sessionContext.kernelChanged.connect(this.onKernelChanged);
      panel.sessionContext.statusChanged.connect(this.onKernelStatus);
      panel.disposed.connect(this.onPanelDisposed);
      panel.sessionContext.ready
        .then(() => {
          if (this._panel === panel) {
            void this.refresh();
          }
        })
        .catch(() => undefined); // no kernel after all: the item says so already
    }
    this._changed.emit();
    void this.refresh();
  }

  private readonly onPanelDisposed = (): void => {
    this.follow(this.notebooks.currentWidget);
  };

  private readonly onKernelChanged = (): void => {
    this._worker = null;
    this._known = false;
    this._changed.emit();
    void this.refresh();
  };

  /** After a cell ran (it may have been `%coflux connect`), and after a restart: ask again. */
  private readonly onKernelStatus = (_: unknown, status: Kernel.Status): void => {
    const before = this._kernelStatus;
    this._kernelStatus = status;
    if (status === 'idle' && before !== 'idle') {
      void this.refresh();
    } else if (status === 'dead' || status === 'restarting' || status === 'autorestarting') {
      this._changed.emit();
    }
  };

  private setWorker(worker: KernelWorker | null, error: string | null, known: boolean): void {
    this._worker = worker;
    this._error = error;
    this._known = known;
    this.watch(this.project);
    this._changed.emit();
  }

  /** Follow project `name`'s feed: its `worker` events and its connection state. */
  private watch(name: string): void {
    if (this._feed?.project === name) {
      return;
    }
    if (this._feed !== null) {
      this._feed.received.disconnect(this.onEvent);
      this._feed.stateChanged.disconnect(this.onFeedState);
    }
    const feed = this.ctx.events.project(name);
    this._feed = feed;
    this._failures = 0;
    this._wasOpen = feed.state === 'open';
    feed.received.connect(this.onEvent);
    feed.stateChanged.connect(this.onFeedState);
    this._feedState = this.computeFeedState(feed.state);
  }

  private readonly onEvent = (_: ProjectEvents, event: CofluxEvent): void => {
    if (event.type === 'worker' && event.kernel_id === this.kernelId) {
      void this.refresh();
    }
  };

  private readonly onFeedState = (_: ProjectEvents, state: ConnectionState): void => {
    if (state === 'open') {
      const outage = this._failures > 0 || !this._wasOpen;
      this._failures = 0;
      this._wasOpen = true;
      if (outage) {
        void this.refresh(); // what happened meanwhile was not sent
      }
    } else if (state === 'closed') {
      this._failures += 1;
    }
    this._feedState = this.computeFeedState(state);
    this._changed.emit();
  };

  private computeFeedState(state: ConnectionState): FeedState {
    if (state === 'open') {
      return 'connected';
    }
    if (this._failures === 0) {
      return this._wasOpen ? 'reconnecting' : 'connecting';
    }
    // One lost connection is a reconnect; a failed attempt after it, or before any success, is not.
    return this._wasOpen && this._failures === 1 ? 'reconnecting' : 'unreachable';
  }

  private _panel: NotebookPanel | null = null;
  private _worker: KernelWorker | null = null;
  private _known = false;
  private _error: string | null = null;
  private _switching: string | null = null;
  private _lookup: AbortController | null = null;
  private _kernelStatus: Kernel.Status = 'unknown';
  private _feed: ProjectEvents | null = null;
  private _feedState: FeedState = 'connecting';
  private _failures = 0;
  private _wasOpen = false;
  private _changed = new Signal<this, void>(this);
}

function invalidName(name: string): string {
  return (
    `'${name}' is not a workspace name: use letters, digits, '_', '.' or '-' ` +
    "(not first), and '/' between parts (dev/ana)"
  );
}

function shortId(id: string): string {
  return id.slice(0, 8);
}

/** The status bar's item: "Coflux: <workspace>" and a dot for the events feed. */
export class CofluxStatusItem extends Widget {
  constructor(
    private readonly model: KernelStatus,
    private readonly onActivate: () => void
  ) {
    super();
    this.addClass('coflux-StatusItem');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this._dot.className = 'coflux-StatusItem-dot';
    this._label.className = 'coflux-StatusItem-label jp-StatusBar-TextItem';
    this.node.append(this._dot, this._label);
    this.node.addEventListener('click', () => this.onActivate());
    this.node.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this.onActivate();
      }
    });
    model.changed.connect(this.render);
    this.render();
  }

  private readonly render = (): void => {
    const model = this.model;
    const worker = model.worker;
    const kernelId = model.kernelId;
    let text: string;
    let state: string;
    const lines: string[] = [];
    if (model.switching !== null) {
      text = `Coflux: switching to ${model.switching}…`;
      state = 'switching';
      lines.push(`The kernel is switching to workspace '${model.switching}'.`);
    } else if (model.panel === null) {
      text = 'Coflux';
      state = 'no-notebook';
      lines.push('No notebook is active: open one to see the workspace its kernel serves.');
    } else if (kernelId === null) {
      text = 'Coflux: no kernel';
      state = 'no-kernel';
      lines.push("The notebook's kernel is not running.");
    } else if (worker !== null && worker.connected) {
      const where =
        worker.project === 'default' ? worker.workspace : `${worker.project} / ${worker.workspace}`;
      text = `Coflux: ${where}`;
      state = 'connected';
      lines.push(
        `The kernel (${shortId(kernelId)}) serves and runs in workspace '${worker.workspace}' of project ` +
          `'${worker.project}' (worker session ${worker.session}).`,
        'Click to switch workspace.'
      );
    } else if (model.error !== null && worker === null) {
      text = 'Coflux: unknown';
      state = 'error';
      lines.push(`The server could not say which workspace the kernel serves: ${model.error}`);
    } else if (!model.known) {
      text = 'Coflux: …';
      state = 'loading';
      lines.push('Asking the server which workspace the kernel serves…');
    } else {
      text = 'Coflux: not connected';
      state = 'not-connected';
      lines.push(
        worker !== null
          ? `The kernel's worker left workspace '${worker.workspace}' of project '${worker.project}'; it comes back by itself.`
          : 'The kernel has no Coflux worker session: run %coflux connect in the notebook (or %coflux status to see why).'
      );
    }
    if (model.error !== null && state !== 'error') {
      lines.push(`(Last lookup failed: ${model.error})`);
    }
    const feed = model.feedState;
    const reason = model.feedError;
    const feedLine: Record<FeedState, string> = {
      connected: `Server events (project '${model.project}'): connected.`,
      connecting: `Server events (project '${model.project}'): connecting…`,
      reconnecting: `Server events (project '${model.project}'): reconnecting${reason ? ` (${reason})` : ''}…`,
      unreachable: `Server events (project '${model.project}'): the server is unreachable${reason ? `: ${reason}` : ''}; retrying.`
    };
    lines.push(feedLine[feed]);
    this._label.textContent = text;
    this._dot.dataset.state = feed;
    this._dot.title = feedLine[feed];
    this.node.dataset.state = state;
    this.node.title = lines.join('\n');
  };

  private _dot = document.createElement('span');
  private _label = document.createElement('span');
}

/** A workspace of the chooser's tree, and its depth. */
interface TreeRow {
  workspace: Workspace;
  depth: number;
}

/** The project's workspaces in tree order: each after its base, siblings by name. */
export function treeOrder(workspaces: Workspace[]): TreeRow[] {
  const names = new Set(workspaces.map(w => w.name));
  const children = new Map<string | null, Workspace[]>();
  for (const workspace of workspaces) {
    const base = workspace.base !== null && names.has(workspace.base) ? workspace.base : null;
    const siblings = children.get(base) ?? [];
    siblings.push(workspace);
    children.set(base, siblings);
  }
  const rows: TreeRow[] = [];
  const visit = (base: string | null, depth: number): void => {
    const siblings = [...(children.get(base) ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    for (const workspace of siblings) {
      rows.push({ workspace, depth });
      visit(workspace.name, depth + 1);
    }
  };
  visit(null, 0);
  return rows;
}

/** The chooser dialog's body: the workspaces as a tree, the current one marked; one is selected. */
class WorkspaceChooser extends Widget implements Dialog.IBodyWidget<string | null> {
  constructor(
    workspaces: Workspace[],
    private readonly current: string,
    project: string,
    notebook: string
  ) {
    super();
    this.addClass('coflux-WorkspaceChooser');
    const intro = document.createElement('p');
    intro.className = 'coflux-WorkspaceChooser-intro';
    intro.textContent =
      `The kernel of ${notebook} serves workspace '${current}' of project '${project}'. ` +
      'Choose the workspace it should serve and run in:';
    const list = document.createElement('ul');
    list.className = 'coflux-WorkspaceChooser-list';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Workspaces');
    for (const { workspace, depth } of treeOrder(workspaces)) {
      list.append(this.row(workspace, depth));
    }
    list.addEventListener('keydown', (event: KeyboardEvent) => this.onKey(event));
    this.node.append(intro, list);
    this._list = list;
    this.select(current);
  }

  /** Called with a double-clicked workspace: the dialog switches to it at once. */
  onChosen: (() => void) | null = null;

  getValue(): string | null {
    return this._selected;
  }

  private row(workspace: Workspace, depth: number): HTMLLIElement {
    const item = document.createElement('li');
    item.className = 'coflux-WorkspaceChooser-item';
    item.setAttribute('role', 'option');
    item.dataset.workspace = workspace.name;
    item.dataset.state = workspace.state;
    item.style.setProperty('--coflux-depth', String(depth));
    item.tabIndex = -1;
    const mark = document.createElement('span');
    mark.className = 'coflux-WorkspaceChooser-mark';
    if (workspace.name === this.current) {
      item.classList.add('coflux-mod-current');
      item.setAttribute('aria-current', 'true');
      checkIcon.element({ container: mark, tag: 'span', elementSize: 'small' });
    }
    const name = document.createElement('span');
    name.className = 'coflux-WorkspaceChooser-name';
    name.textContent = workspace.name;
    item.append(mark, name);
    if (workspace.name === this.current) {
      item.append(badge('current', 'coflux-WorkspaceChooser-current'));
    }
    if (workspace.state !== 'active') {
      item.append(badge(workspace.state, 'coflux-WorkspaceChooser-state'));
    }
    const base = document.createElement('span');
    base.className = 'coflux-WorkspaceChooser-base';
    base.textContent = workspace.base !== null ? `base: ${workspace.base}` : 'no base';
    item.append(base);
    if (workspace.state === 'archived') {
      item.setAttribute('aria-disabled', 'true');
      item.title = 'Archived: no new runs, so a kernel cannot serve it';
    } else {
      item.addEventListener('click', () => this.select(workspace.name));
      item.addEventListener('dblclick', () => {
        this.select(workspace.name);
        this.onChosen?.();
      });
    }
    return item;
  }

  private items(): HTMLLIElement[] {
    return [
      ...this._list.querySelectorAll<HTMLLIElement>('.coflux-WorkspaceChooser-item:not([aria-disabled])')
    ];
  }

  private select(name: string): void {
    this._selected = name;
    for (const item of this._list.querySelectorAll<HTMLLIElement>('.coflux-WorkspaceChooser-item')) {
      const selected = item.dataset.workspace === name;
      item.setAttribute('aria-selected', String(selected));
      item.classList.toggle('jp-mod-selected', selected);
      if (selected && this.isAttached) {
        item.focus();
      }
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') {
      return;
    }
    event.preventDefault();
    const items = this.items();
    const at = items.findIndex(item => item.dataset.workspace === this._selected);
    const next = items[Math.max(0, Math.min(items.length - 1, at + (event.key === 'ArrowDown' ? 1 : -1)))];
    if (next?.dataset.workspace) {
      this.select(next.dataset.workspace);
    }
  }

  protected override onAfterAttach(): void {
    if (this._selected !== null) {
      this.select(this._selected);
    }
  }

  private _list: HTMLUListElement;
  private _selected: string | null = null;
}

function badge(text: string, className: string): HTMLSpanElement {
  const span = document.createElement('span');
  span.className = `coflux-WorkspaceChooser-badge ${className}`;
  span.textContent = text;
  return span;
}

/** Why the chooser can't open for the active notebook, or null when it can. */
function unavailable(model: KernelStatus): string | null {
  if (model.panel === null) {
    return 'Open a notebook first: the workspace switcher acts on the active notebook’s kernel.';
  }
  if (model.kernelId === null) {
    return "The notebook's kernel is not running: start it (Kernel ▸ Restart Kernel) and try again.";
  }
  if (model.worker === null || !model.worker.connected) {
    return (
      "This notebook's kernel has no Coflux worker session, so it can't switch workspace: " +
      'run %coflux connect in the notebook (%coflux status says why it is not connected).' +
      (model.error ? ` The server said: ${model.error}` : '')
    );
  }
  if (model.switching !== null) {
    return `The kernel is already switching to workspace '${model.switching}'.`;
  }
  return null;
}

const TITLE = "Switch the kernel's workspace";

/** The chooser for the active notebook's kernel: switch, or create a child workspace and switch. */
async function chooseWorkspace(ctx: CofluxContext, model: KernelStatus): Promise<void> {
  await model.refresh();
  const why = unavailable(model);
  const worker = model.worker;
  const panel = model.panel;
  if (why !== null || worker === null || panel === null) {
    await showErrorMessage(TITLE, why ?? 'There is no notebook kernel to switch.');
    return;
  }
  let workspaces: Workspace[];
  try {
    workspaces = (await ctx.api.workspaces(worker.project)).workspaces;
  } catch (err) {
    await showErrorMessage(
      TITLE,
      `The workspaces of project '${worker.project}' could not be listed: ${describe(err)}`
    );
    return;
  }
  const body = new WorkspaceChooser(
    workspaces,
    worker.workspace,
    worker.project,
    panel.title.label || 'this notebook'
  );
  const dialog = new Dialog<string | null>({
    title: TITLE,
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.createButton({ label: NEW_WORKSPACE, accept: true, className: 'coflux-WorkspaceChooser-new' }),
      Dialog.okButton({ label: SWITCH })
    ]
  });
  dialog.addClass('coflux-WorkspaceDialog');
  body.onChosen = () => dialog.resolve();
  const result = await dialog.launch();
  if (!result.button.accept) {
    return;
  }
  if (result.button.label === NEW_WORKSPACE) {
    await createAndSwitch(ctx, model, worker);
    return;
  }
  const chosen = result.value;
  if (chosen === null || chosen === worker.workspace) {
    return;
  }
  await switchReporting(model, chosen);
}

async function createAndSwitch(ctx: CofluxContext, model: KernelStatus, worker: KernelWorker): Promise<void> {
  const base = worker.workspace;
  const answer = await InputDialog.getText({
    title: 'New workspace',
    label: `A child of '${base}' in project '${worker.project}', that the kernel then serves. Name:`,
    placeholder: `${base}-feature`,
    okLabel: 'Create and switch'
  });
  const name = answer.value?.trim() ?? '';
  if (!answer.button.accept || !name) {
    return;
  }
  if (!WORKSPACE_NAME.test(name)) {
    await showErrorMessage('New workspace', invalidName(name));
    return;
  }
  try {
    await ctx.api.createWorkspace(worker.project, name, base);
  } catch (err) {
    await showErrorMessage('New workspace', `Workspace '${name}' could not be created: ${describe(err)}`);
    return;
  }
  await switchReporting(model, name);
}

async function switchReporting(model: KernelStatus, workspace: string): Promise<void> {
  try {
    await model.switchTo(workspace);
  } catch (err) {
    await showErrorMessage(TITLE, err instanceof SwitchError ? err.message : describe(err));
  }
}

export function activateStatus(
  ctx: CofluxContext,
  palette: ICommandPalette,
  notebooks: INotebookTracker,
  statusBar: IStatusBar | null
): void {
  const model = new KernelStatus(ctx, notebooks);
  const { commands } = ctx.app;
  commands.addCommand(CommandIds.switchWorkspace, {
    label: () =>
      model.panel !== null && model.kernelId !== null
        ? 'Coflux: switch workspace'
        : 'Coflux: switch workspace (needs a notebook with a running kernel)',
    caption: "Choose the workspace the active notebook's kernel serves and runs in",
    isEnabled: () => model.panel !== null && model.kernelId !== null,
    execute: () => chooseWorkspace(ctx, model)
  });
  palette.addItem({ command: CommandIds.switchWorkspace, category: 'Coflux' });
  model.changed.connect(() => commands.notifyCommandChanged(CommandIds.switchWorkspace));
  if (!statusBar) {
    return;
  }
  const item = new CofluxStatusItem(model, () => {
    void commands.execute(CommandIds.switchWorkspace);
  });
  statusBar.registerStatusItem('jupyter-coflux:status', { item, align: 'left', rank: 100 });
}
