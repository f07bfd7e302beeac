/**
 * The run's graph as SVG (laid out by `layout.ts`), with pan (drag), zoom (wheel, buttons) and fit.
 * Clicking a step selects it (`stepSelected`); a spawned run's node asks to open that run
 * (`runOpened`); a folded fan-out unfolds.
 */
import { type ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import type { Run } from '../types';
import { type GraphNode, layoutRun, NODE_HEIGHT, NODE_WIDTH, type RunGraphLayout } from './layout';

const SVG = 'http://www.w3.org/2000/svg';
const MIN_SCALE = 0.1;
const MAX_SCALE = 2.5;
/** The smallest scale a fit chooses (text stays readable). */
const FIT_MIN = 0.45;

const ICONS: Record<string, string> = {
  queued: '◷',
  assigned: '◔',
  running: '●',
  succeeded: '✓',
  cached: '↺',
  failed: '✗',
  timed_out: '⏱',
  abandoned: '⚠',
  cancelled: '⊘',
  deferred: '→'
};

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  parent?: Element
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    el.setAttribute(name, String(value));
  }
  parent?.appendChild(el);
  return el;
}

function clip(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

export class RunGraph extends Widget {
  constructor() {
    super();
    this.addClass('coflux-RunGraph');
    this.node.tabIndex = -1;
    const tools = document.createElement('div');
    tools.className = 'coflux-RunGraph-tools';
    for (const [text, title, act] of [
      ['+', 'zoom in', () => this.zoomBy(1.25)],
      ['−', 'zoom out', () => this.zoomBy(0.8)],
      ['⤢', 'fit the graph', () => this.fitGraph()],
      ['⇄', 'lay out left to right / top to bottom', () => this.turn()]
    ] as const) {
      const button = document.createElement('button');
      button.className = 'jp-Button jp-mod-minimal coflux-RunGraph-tool';
      button.textContent = text;
      button.title = title;
      button.addEventListener('click', act);
      tools.appendChild(button);
    }
    this.svg = svg('svg', { class: 'coflux-RunGraph-canvas' });
    const defs = svg('defs', {}, this.svg);
    const marker = svg(
      'marker',
      {
        id: this.markerId,
        viewBox: '0 0 10 10',
        refX: 9,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        orient: 'auto-start-reverse'
      },
      defs
    );
    svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'coflux-RunGraph-arrow' }, marker);
    this.scene = svg('g', { class: 'coflux-RunGraph-scene' }, this.svg);
    this.empty = document.createElement('div');
    this.empty.className = 'coflux-RunGraph-empty';
    this.node.append(this.svg, tools, this.empty);
    this.listen();
  }

  /** A step was clicked (its id). */
  get stepSelected(): ISignal<this, string> {
    return this._stepSelected;
  }

  /** A spawned run's node was clicked (its run id). */
  get runOpened(): ISignal<this, string> {
    return this._runOpened;
  }

  get selected(): string | null {
    return this._selected;
  }

  /** Highlights a step (null: none). */
  select(stepId: string | null): void {
    this._selected = stepId;
    this.scene.querySelectorAll('.coflux-RunGraph-node').forEach(el => {
      el.classList.toggle(
        'coflux-mod-selected',
        stepId !== null && el.getAttribute('data-step-id') === stepId
      );
    });
  }

  /** Draws the run as seen from `view` (the spawned runs name their nodes). */
  render(run: Run | null, spawned: Record<string, Run>, view: string): void {
    if (!run) {
      this.scene.replaceChildren();
      this.empty.textContent = 'Loading the run…';
      return;
    }
    this._last = { run, spawned, view };
    const layout = layoutRun(run, spawned, { view, unfolded: this.unfolded, direction: this.direction });
    this.empty.textContent = layout.nodes.length ? '' : 'No steps yet';
    this.draw(layout);
    const shape = `${layout.nodes.length}:${this.unfolded.size}:${this.direction}`;
    if (!this.moved && shape !== this.shape) {
      this.fitGraph();
    }
    this.shape = shape;
  }

  /** Scales and centres the graph to show all of it (at most at full size). */
  fitGraph(): void {
    const { width, height } = this.size;
    const box = this.node.getBoundingClientRect();
    if (!width || !height || !box.width || !box.height) {
      return;
    }
    // Whole if it can be read (at least FIT_MIN); else at FIT_MIN from the top left, to pan or zoom out.
    this.scale = Math.max(FIT_MIN, Math.min(1, box.width / width, box.height / height));
    this.tx = Math.max(0, (box.width - width * this.scale) / 2);
    this.ty = 8;
    this.apply();
  }

  protected override onResize(): void {
    if (!this.moved) {
      this.fitGraph();
    }
  }

  protected override onAfterShow(): void {
    if (!this.moved) {
      this.fitGraph();
    }
  }

  private draw(layout: RunGraphLayout): void {
    this.size = { width: layout.width, height: layout.height };
    const groups = svg('g', { class: 'coflux-RunGraph-groups' });
    for (const group of layout.groups) {
      const g = svg(
        'g',
        { class: `coflux-RunGraph-group${group.foldKey ? ' coflux-mod-grid' : ''}` },
        groups
      );
      g.setAttribute(group.foldKey ? 'data-fold' : 'data-group', group.label);
      svg('rect', { x: group.x, y: group.y, width: group.width, height: group.height, rx: 6 }, g);
      const label = svg('text', { x: group.x + 8, y: group.y + 14, class: 'coflux-RunGraph-groupLabel' }, g);
      label.textContent = group.foldKey ? `${group.label} (click to fold)` : group.label;
      const key = group.foldKey;
      if (key) {
        label.addEventListener('click', () => this.refold(key));
      }
    }
    const edges = svg('g', { class: 'coflux-RunGraph-edges' });
    for (const edge of layout.edges) {
      const d = edge.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' ');
      svg(
        'path',
        { d, class: `coflux-RunGraph-edge coflux-mod-${edge.kind}`, 'marker-end': `url(#${this.markerId})` },
        edges
      );
    }
    const nodes = svg('g', { class: 'coflux-RunGraph-nodes' });
    layout.nodes.forEach(n => nodes.appendChild(this.drawNode(n)));
    this.scene.replaceChildren(groups, edges, nodes);
    this.select(this._selected);
  }

  private drawNode(n: GraphNode): SVGGElement {
    const g = svg('g', {
      class: `coflux-RunGraph-node coflux-mod-${n.kind}`,
      transform: `translate(${n.x - NODE_WIDTH / 2} ${n.y - NODE_HEIGHT / 2})`,
      'data-state': n.state,
      'data-kind': n.kind,
      tabindex: 0,
      role: 'button'
    });
    if (n.stepId) {
      g.setAttribute('data-step-id', n.stepId);
    }
    if (n.runId) {
      g.setAttribute('data-run-id', n.runId);
    }
    if (n.target) {
      g.setAttribute('data-target', n.target);
    }
    svg('title', {}, g).textContent = n.title;
    svg(
      'rect',
      { width: NODE_WIDTH, height: NODE_HEIGHT, rx: n.kind === 'run' ? 14 : 4, class: 'coflux-RunGraph-box' },
      g
    );
    svg('rect', { width: 5, height: NODE_HEIGHT, rx: 2, class: 'coflux-RunGraph-band' }, g);
    svg('text', { x: 14, y: 19, class: 'coflux-RunGraph-icon' }, g).textContent = ICONS[n.state] ?? '•';
    svg('text', { x: 30, y: 19, class: 'coflux-RunGraph-label' }, g).textContent = clip(n.label, 17);
    const detail = svg('text', { x: 14, y: 38, class: 'coflux-RunGraph-detail' }, g);
    detail.textContent = clip(n.marks.length ? n.marks.map(m => m.text).join(' · ') : n.detail, 24);
    n.marks.forEach(m => g.setAttribute(`data-mark-${m.kind}`, m.text));
    const act = (): void => this.activateNode(n);
    g.addEventListener('click', act);
    g.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        act();
      }
    });
    return g;
  }

  private activateNode(n: GraphNode): void {
    if (this.dragged) {
      return;
    }
    if (n.stepId) {
      this.select(n.stepId);
      this._stepSelected.emit(n.stepId);
    } else if (n.runId) {
      this._runOpened.emit(n.runId);
    } else if (n.foldKey && this._last) {
      this.unfolded.add(n.foldKey);
      this.render(this._last.run, this._last.spawned, this._last.view);
    }
  }

  private listen(): void {
    this.svg.addEventListener('wheel', (event: WheelEvent) => {
      event.preventDefault();
      const box = this.svg.getBoundingClientRect();
      this.zoomBy(event.deltaY < 0 ? 1.1 : 1 / 1.1, event.clientX - box.left, event.clientY - box.top);
    });
    this.svg.addEventListener('pointerdown', (event: PointerEvent) => {
      if (event.button !== 0) {
        return;
      }
      const start = { x: event.clientX, y: event.clientY, tx: this.tx, ty: this.ty };
      this.dragged = false;
      const move = (e: PointerEvent): void => {
        const dx = e.clientX - start.x;
        const dy = e.clientY - start.y;
        if (!this.dragged && Math.hypot(dx, dy) < 4) {
          return;
        }
        this.dragged = this.moved = true;
        this.svg.classList.add('coflux-mod-panning');
        this.tx = start.tx + dx;
        this.ty = start.ty + dy;
        this.apply();
      };
      const up = (): void => {
        window.removeEventListener('pointermove', move);
        window.removeEventListener('pointerup', up);
        this.svg.classList.remove('coflux-mod-panning');
        window.setTimeout(() => (this.dragged = false), 0); // the click after a drag selects nothing
      };
      window.addEventListener('pointermove', move);
      window.addEventListener('pointerup', up);
    });
  }

  private refold(key: string): void {
    this.unfolded.delete(key);
    if (this._last) {
      this.render(this._last.run, this._last.spawned, this._last.view);
    }
  }

  private turn(): void {
    this.direction = this.direction === 'TB' ? 'LR' : 'TB';
    this.moved = false;
    if (this._last) {
      this.render(this._last.run, this._last.spawned, this._last.view);
    }
  }

  private zoomBy(factor: number, cx?: number, cy?: number): void {
    const box = this.node.getBoundingClientRect();
    const x = cx ?? box.width / 2;
    const y = cy ?? box.height / 2;
    const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.scale * factor));
    this.tx = x - ((x - this.tx) * scale) / this.scale;
    this.ty = y - ((y - this.ty) * scale) / this.scale;
    this.scale = scale;
    this.moved = true;
    this.apply();
  }

  private apply(): void {
    this.scene.setAttribute('transform', `translate(${this.tx} ${this.ty}) scale(${this.scale})`);
  }

  private readonly svg: SVGSVGElement;
  private readonly scene: SVGGElement;
  private readonly empty: HTMLDivElement;
  private readonly markerId = `coflux-arrow-${Math.random().toString(36).slice(2)}`;
  private readonly unfolded = new Set<string>();
  private _last: { run: Run; spawned: Record<string, Run>; view: string } | null = null;
  private _selected: string | null = null;
  private size = { width: 0, height: 0 };
  private shape = '';
  private scale = 1;
  private tx = 0;
  private ty = 0;
  private moved = false;
  private direction: 'TB' | 'LR' = 'TB';
  private dragged = false;
  private _stepSelected = new Signal<this, string>(this);
  private _runOpened = new Signal<this, string>(this);
}
