/**
 * A run as a graph, placed: steps as nodes, calls as edges, `cf.group`s as boxes, spawned runs as
 * linked nodes, large fan-outs folded into one node (or drawn as a grid once unfolded). Pure: it
 * reads a run and answers nodes, edges and boxes placed by dagre.
 */
import dagre from '@dagrejs/dagre';

import type { Run, Step } from '../types';
import {
  type GraphEdge,
  type GraphGroup,
  type GraphNode,
  groupId,
  type LayoutOptions,
  NODE_HEIGHT,
  NODE_WIDTH,
  Parts,
  type RunGraphLayout,
  WRAP_AT
} from './parts';

export { NODE_HEIGHT, NODE_WIDTH, rootStep } from './parts';
export type { GraphGroup, GraphNode, RunGraphLayout } from './parts';
const GRID_GAP = 12;
const GRID_PAD = 10;
const GRID_TOP = 24;

function gridSize(count: number): { cols: number; width: number; height: number } {
  const cols = Math.min(WRAP_AT, count);
  const rows = Math.ceil(count / cols);
  return {
    cols,
    width: cols * (NODE_WIDTH + GRID_GAP) - GRID_GAP + 2 * GRID_PAD,
    height: rows * (NODE_HEIGHT + GRID_GAP) - GRID_GAP + GRID_PAD + GRID_TOP
  };
}

/** Lays out a run and the runs it spawned (`spawned`, to name and colour their nodes). */
export function layoutRun(run: Run, spawned: Record<string, Run>, options: LayoutOptions): RunGraphLayout {
  const parts = new Parts(run, spawned, options);
  parts.collect();
  const graph = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  graph.setGraph({ rankdir: options.direction, nodesep: 24, ranksep: 48, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));

  for (const id of parts.groups.keys()) {
    graph.setNode(id, {});
  }
  for (const node of parts.nodes.values()) {
    if (!(node.stepId && parts.gridOf.has(node.stepId))) {
      graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
      if (node.group) {
        graph.setParent(node.id, node.group);
      }
    }
  }
  for (const [id, grid] of parts.grids) {
    const first = grid.members[0];
    if (first && parts.nodes.has(first.step_id)) {
      const { width, height } = gridSize(grid.members.length);
      graph.setNode(id, { width, height });
      const group = groupId(first);
      if (group) {
        graph.setParent(id, group);
      }
    }
  }

  const edges = placeEdges(parts, graph);
  dagre.layout(graph);
  return placed(parts, graph, edges);
}

function placeEdges(parts: Parts, graph: dagre.graphlib.Graph): Omit<GraphEdge, 'points'>[] {
  const edges: Omit<GraphEdge, 'points'>[] = [];
  const add = (from: string | undefined, to: string | undefined, kind: GraphEdge['kind']): void => {
    if (
      !from ||
      !to ||
      from === to ||
      !graph.hasNode(from) ||
      !graph.hasNode(to) ||
      graph.hasEdge(from, to)
    ) {
      return;
    }
    edges.push({ from, to, kind });
    graph.setEdge(from, to);
  };
  for (const step of parts.steps) {
    if (step.parent_step_id !== null) {
      add(parts.anchor(step.parent_step_id), parts.anchor(step.step_id), 'call');
    }
  }
  const byExecution = new Map<string, Step>();
  parts.steps.forEach(s => s.executions.forEach(e => byExecution.set(e.execution_id, s)));
  for (const link of parts.run.spawned_runs ?? []) {
    const parent = byExecution.get(link.parent_execution_id);
    add(parent ? parts.anchor(parent.step_id) : undefined, `run:${link.run_id}`, 'spawn');
  }
  return edges;
}

function box(
  graph: dagre.graphlib.Graph,
  id: string
): { x: number; y: number; width: number; height: number } {
  const at = graph.node(id);
  const width = at?.width ?? 0;
  const height = at?.height ?? 0;
  return { x: (at?.x ?? 0) - width / 2, y: (at?.y ?? 0) - height / 2, width, height };
}

function placed(
  parts: Parts,
  graph: dagre.graphlib.Graph,
  edges: Omit<GraphEdge, 'points'>[]
): RunGraphLayout {
  const spots = new Map<string, { x: number; y: number }>();
  const boxes: GraphGroup[] = [...parts.groups].map(([id, label]) => ({ id, label, ...box(graph, id) }));
  for (const [id, grid] of parts.grids) {
    if (!graph.hasNode(id)) {
      continue;
    }
    const area = box(graph, id);
    const first = grid.members[0];
    boxes.push({ id, label: `${first?.target ?? ''} ×${grid.members.length}`, foldKey: grid.key, ...area });
    const { cols } = gridSize(grid.members.length);
    grid.members.forEach((m, i) => {
      const x = area.x + GRID_PAD + (i % cols) * (NODE_WIDTH + GRID_GAP) + NODE_WIDTH / 2;
      const y = area.y + GRID_TOP + Math.floor(i / cols) * (NODE_HEIGHT + GRID_GAP) + NODE_HEIGHT / 2;
      spots.set(m.step_id, { x, y });
    });
  }
  const nodes: GraphNode[] = [...parts.nodes.values()].map(n => {
    const spot = spots.get(n.id) ?? graph.node(n.id);
    return { ...n, x: spot?.x ?? 0, y: spot?.y ?? 0 };
  });
  const lines: GraphEdge[] = edges.map(e => ({ ...e, points: graph.edge(e.from, e.to)?.points ?? [] }));
  const size = graph.graph();
  return { nodes, edges: lines, groups: boxes, width: size.width ?? 0, height: size.height ?? 0 };
}
