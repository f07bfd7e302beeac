/** A small helper to build DOM nodes: `h('div', { className: 'x' }, 'text', child)`. */
type Props<K extends keyof HTMLElementTagNameMap> = Partial<Omit<HTMLElementTagNameMap[K], 'style' | 'dataset'>> & {
  dataset?: { [key: string]: string };
  attrs?: { [key: string]: string };
};

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props<K> = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { dataset, attrs, ...rest } = props;
  Object.assign(node, rest);
  for (const [key, value] of Object.entries(dataset ?? {})) {
    node.dataset[key] = value;
  }
  for (const [key, value] of Object.entries(attrs ?? {})) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

/** "12 s", "3 min", "2 h", "4 d" for a number of seconds. */
export function formatDuration(seconds: number): string {
  if (seconds < 1) {
    return `${Math.max(0, Math.round(seconds * 1000))} ms`;
  }
  if (seconds < 60) {
    return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  }
  return `${Math.floor(seconds / 86400)} d`;
}

/** "just now", "5 min ago", "3 h ago", or the date, for a time in seconds since the epoch. */
export function formatAgo(time: number, now: number = Date.now() / 1000): string {
  const ago = now - time;
  if (ago < 10) {
    return 'just now';
  }
  if (ago < 60) {
    return `${Math.round(ago)} s ago`;
  }
  if (ago < 3600) {
    return `${Math.floor(ago / 60)} min ago`;
  }
  if (ago < 86400) {
    return `${Math.floor(ago / 3600)} h ago`;
  }
  return new Date(time * 1000).toLocaleDateString();
}
