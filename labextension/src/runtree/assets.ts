/**
 * An asset's content as the RunTree view shows it (`assets[asset_id]`), made in the browser from the
 * REST listing and the files themselves: what coflux/notebook/assetviewer.py `load` and
 * filepreview.py make in the kernel, kind for kind. Images are shown by URL; text, Markdown, JSON,
 * CSV and TSV are fetched (at most `MAX_BYTES`) and previewed here; Parquet needs the kernel
 * (pyarrow): it is offered as a download.
 */
import { URLExt } from '@jupyterlab/coreutils';
import MarkdownIt from 'markdown-it';

import { type CofluxApi, describe } from '../api';

/** Files previewed when an asset is opened; the others are previewed on demand. */
export const PREVIEWED = 24;
/** A file larger than this is not fetched for a preview ("too large to preview"). */
export const MAX_BYTES = 2 * 1024 * 1024;
/** Text, Markdown and JSON previews show at most this much of the file. */
export const TEXT_BYTES = 20_000;
export const TABLE_ROWS = 20;
export const CELL_CHARS = 200;

type Cell = string | number | boolean | null;

/** One file's preview (filepreview.py's shapes; an image carries `url` instead of `b64`). */
export type FilePreview =
  | { kind: 'image'; media_type: string; url: string }
  | { kind: 'text' | 'json' | 'markdown'; text?: string; html?: string; truncated: boolean }
  | { kind: 'table'; columns: Cell[]; rows: Cell[][]; shape: [number, number]; truncated: boolean }
  | { kind: 'none' | 'too_large' | 'error'; message: string };

export interface AssetFile {
  path: string;
  size: number;
  media_type: string;
}

/** What the view's `assetContent` renders (assetviewer.py `load`). */
export interface AssetContent {
  asset_id: string;
  name: string | null;
  execution_id: string | null;
  created_at: number | null;
  entries: AssetFile[];
  previews: { [path: string]: FilePreview };
  /** The files' REST path under the Jupyter base URL (download links). */
  files: string;
  /** The Coflux API serving them: the page's own server. */
  api_url: string;
}

const IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/svg+xml', 'image/webp']);
const TEXT_TYPES = new Set([
  'application/xml',
  'application/javascript',
  'application/x-sh',
  'application/x-yaml',
  'application/toml'
]);
const EXTENSIONS: { [extension: string]: string } = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.json': 'json',
  '.geojson': 'json'
};
const MEDIA_TYPES: { [mediaType: string]: string } = {
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
  'text/csv': 'csv',
  'text/tab-separated-values': 'tsv',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
  'application/json': 'json'
};

function cleanType(mediaType: string): string {
  return (mediaType.split(';')[0] ?? '').trim().toLowerCase();
}

function extensionOf(path: string): string {
  const name = path.toLowerCase().split('/').pop() ?? '';
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot) : '';
}

function baseName(path: string): string {
  return path.split('/').pop() || path;
}

/** The preview kind of a file, as filepreview.kind_of decides it. */
export function kindOf(path: string, mediaType: string): string {
  const type = cleanType(mediaType);
  if (IMAGES.has(type)) {
    return 'image';
  }
  const found = MEDIA_TYPES[type] ?? EXTENSIONS[extensionOf(path)];
  if (found) {
    return found;
  }
  if (type.startsWith('text/') || TEXT_TYPES.has(type) || type.endsWith('+json') || type.endsWith('+xml')) {
    return 'text';
  }
  return 'none';
}

/** A size as filepreview._size writes it. */
function sizeText(size: number): string {
  let value = size;
  for (const unit of ['bytes', 'KB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') {
      return unit === 'bytes' ? `${size} bytes` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  return `${size} bytes`;
}

/** The first `limit` bytes as text (a character cut at the limit dropped), and whether that is not all. */
function decoded(data: Uint8Array, limit = TEXT_BYTES): [string, boolean] {
  let text = new TextDecoder('utf-8').decode(data.subarray(0, limit));
  const truncated = data.length > limit;
  if (truncated && text.endsWith('\ufffd')) {
    text = text.slice(0, -1);
  }
  return [text, truncated];
}

function cell(value: string): Cell {
  return value.length <= CELL_CHARS ? value : `${value.slice(0, CELL_CHARS - 1)}…`;
}

/** Rows of delimited text as Python's csv.reader (excel dialect) reads them; a blank line is `[]`. */
export function parseDelimited(text: string, delimiter: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let state: 'start' | 'field' | 'quoted' | 'quote' = 'start';
  let started = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (state === 'quoted') {
      if (c === '"') {
        state = 'quote';
      } else {
        field += c;
      }
      continue;
    }
    if (state === 'quote') {
      if (c === '"') {
        field += '"';
        state = 'quoted';
        continue;
      }
      state = 'field';
    }
    if (c === '\r' || c === '\n') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      rows.push(started ? [...row, field] : []);
      row = [];
      field = '';
      state = 'start';
      started = false;
      continue;
    }
    started = true;
    if (c === delimiter) {
      row.push(field);
      field = '';
      state = 'start';
    } else if (c === '"' && state === 'start') {
      state = 'quoted';
    } else {
      field += c;
      state = 'field';
    }
  }
  if (started) {
    rows.push([...row, field]);
  }
  return rows;
}

function delimited(data: Uint8Array, delimiter: string): FilePreview {
  const bom = data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf;
  const [text, truncated] = decoded(bom ? data.subarray(3) : data, MAX_BYTES);
  const [head = [], ...body] = parseDelimited(text, delimiter);
  const rows = body.slice(0, TABLE_ROWS).map(r => r.map(cell));
  const width = Math.max(head.length, ...rows.map(r => r.length));
  return {
    kind: 'table',
    columns: head.map(cell),
    rows,
    shape: [body.length, width],
    truncated: truncated || body.length > rows.length
  };
}

let markdownIt: MarkdownIt | null = null;

/** The preview of a file from its bytes (filepreview.preview): never throws for a file's content. */
export function preview(path: string, mediaType: string, data: Uint8Array): FilePreview {
  const kind = kindOf(path, mediaType);
  try {
    switch (kind) {
      case 'text': {
        const [text, truncated] = decoded(data);
        return { kind: 'text', text, truncated };
      }
      case 'markdown': {
        const [text, truncated] = decoded(data);
        // As the kernel renders it: CommonMark, the file's raw HTML escaped, unsafe links refused.
        markdownIt ??= new MarkdownIt('commonmark', { html: false });
        return { kind: 'markdown', html: markdownIt.render(text), truncated };
      }
      case 'json': {
        const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
        const text = JSON.stringify(value, null, 2);
        return { kind: 'json', text: text.slice(0, TEXT_BYTES), truncated: text.length > TEXT_BYTES };
      }
      case 'csv':
        return delimited(data, ',');
      case 'tsv':
        return delimited(data, '\t');
      default:
        return withoutBytes(path, mediaType, data.length);
    }
  } catch (err) {
    return { kind: 'error', message: `cannot preview ${baseName(path)} as ${kind}: ${describe(err)}` };
  }
}

/** Whether a preview of this file is made from its bytes, fetched here. */
function needsBytes(path: string, mediaType: string, size: number): boolean {
  const kind = kindOf(path, mediaType);
  return kind !== 'none' && kind !== 'image' && kind !== 'parquet' && size >= 0 && size <= MAX_BYTES;
}

/** The preview of a file whose bytes are not fetched. */
function withoutBytes(path: string, mediaType: string, size: number): FilePreview {
  const kind = kindOf(path, mediaType);
  if (kind === 'none') {
    return { kind: 'none', message: `no preview for ${mediaType || 'this kind of file'}` };
  }
  if (size > MAX_BYTES || size < 0) {
    return { kind: 'too_large', message: `too large to preview (${sizeText(size)}): download it` };
  }
  return {
    kind: 'none',
    message: 'Parquet files are previewed by a notebook kernel (AssetViewer): download it'
  };
}

/** What the view shows of one file; a failed fetch becomes an `error` preview. */
export async function entryPreview(
  api: CofluxApi,
  project: string,
  assetId: string,
  entry: AssetFile
): Promise<FilePreview> {
  const { path, media_type: mediaType, size } = entry;
  if (kindOf(path, mediaType) === 'image' && size >= 0 && size <= MAX_BYTES) {
    return {
      kind: 'image',
      media_type: cleanType(mediaType),
      url: api.assetFileUrl(project, assetId, path, true)
    };
  }
  if (!needsBytes(path, mediaType, size)) {
    return withoutBytes(path, mediaType, size);
  }
  let data: Uint8Array;
  try {
    data = await api.assetFileBytes(project, assetId, path, MAX_BYTES);
  } catch (err) {
    return { kind: 'error', message: `cannot fetch ${path}: ${describe(err)}` };
  }
  return preview(path, mediaType, data);
}

/** An asset's listing with the previews of its first `previewed` files (assetviewer.load). */
export async function loadAsset(
  api: CofluxApi,
  project: string,
  assetId: string,
  previewed = PREVIEWED
): Promise<AssetContent> {
  const data = await api.asset(project, assetId);
  const entries: AssetFile[] = data.entries.map(e => ({
    path: e.path,
    size: e.size,
    media_type: e.media_type || ''
  }));
  const shown = await Promise.all(
    entries.slice(0, previewed).map(e => entryPreview(api, project, assetId, e))
  );
  const previews: { [path: string]: FilePreview } = {};
  entries.slice(0, previewed).forEach((e, i) => {
    previews[e.path] = shown[i] as FilePreview;
  });
  return {
    asset_id: assetId,
    name: data.name,
    execution_id: data.execution_id,
    created_at: data.created_at,
    entries,
    previews,
    files: `coflux/api/projects/${encodeURIComponent(project)}/assets/${assetId}/files/`,
    api_url: new URL(URLExt.join(api.settings.baseUrl, 'coflux'), window.location.href).href
  };
}

/** `state` with the preview of `path` added (assetviewer.with_preview). */
export async function withPreview(
  api: CofluxApi,
  project: string,
  state: AssetContent,
  path: string
): Promise<AssetContent> {
  const entry = state.entries.find(e => e.path === path);
  if (!entry) {
    throw new Error(`${state.asset_id} has no file '${path}'`);
  }
  const found = await entryPreview(api, project, state.asset_id, entry);
  return { ...state, previews: { ...state.previews, [path]: found } };
}
