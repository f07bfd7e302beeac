/**
 * REST calls to Coflux's API through JupyterLab's `ServerConnection` (it adds the token and the
 * XSRF header), with the server's errors turned into readable `CofluxError`s.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  Asset,
  ErrorAnswer,
  ExecutionStarted,
  JSONValue,
  KernelWorker,
  LogList,
  ProjectList,
  Run,
  RunCancelled,
  RunList,
  RunStarted,
  Workspace,
  WorkspaceList,
  WorkflowList
} from './types';

/** A refused or failed request, with the server's message (or why the server could not be reached). */
export class CofluxError extends Error {
  constructor(
    message: string,
    /** The HTTP status (0 when the server could not be reached). */
    readonly status: number,
    /** The server's error code (`not_found`, `conflict`, ...), or `network`. */
    readonly code: string
  ) {
    super(message);
    this.name = 'CofluxError';
  }
}

/** The last segment of a path, URL-encoded (a workspace `dev/ana` travels as `dev%2Fana`). */
function seg(value: string): string {
  return encodeURIComponent(value);
}

export class CofluxApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  /** The API's root URL (`{base_url}coflux/api/`). */
  get apiUrl(): string {
    return URLExt.join(this.settings.baseUrl, 'coflux', 'api');
  }

  /** The events websocket's URL for a project. */
  eventsUrl(project: string): string {
    let url = URLExt.join(this.settings.wsUrl, 'coflux', 'ws', 'events') + `?project=${seg(project)}`;
    if (this.settings.token) {
      url += `&token=${encodeURIComponent(this.settings.token)}`;
    }
    return url;
  }

  /** A URL of an asset's file, for links and previews (`inline` leaves out the attachment header). */
  assetFileUrl(project: string, assetId: string, path: string, inline = false): string {
    const file = path.split('/').map(seg).join('/');
    const url = URLExt.join(this.apiUrl, 'projects', seg(project), 'assets', seg(assetId), 'files', file);
    return inline ? `${url}?inline=1` : url;
  }

  async request<T>(method: string, path: string, body?: JSONValue, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, signal };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const url = URLExt.join(this.apiUrl, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') {
        throw err;
      }
      throw new CofluxError(`The Jupyter server can't be reached (${describe(err)})`, 0, 'network');
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const answer = data as Partial<ErrorAnswer> | null;
      const message = answer?.error?.message ?? `${response.status} ${response.statusText || 'error'}`;
      const code = answer?.error?.code ?? (response.status >= 500 ? 'unavailable' : 'error');
      throw new CofluxError(message, response.status, code);
    }
    return data as T;
  }

  projects(): Promise<ProjectList> {
    return this.request('GET', 'projects');
  }

  workspaces(project: string): Promise<WorkspaceList> {
    return this.request('GET', `projects/${seg(project)}/workspaces`);
  }

  createWorkspace(project: string, name: string, base: string | null): Promise<Workspace> {
    return this.request('POST', `projects/${seg(project)}/workspaces`, { name, base });
  }

  changeWorkspace(
    project: string,
    workspace: string,
    action: 'pause' | 'resume' | 'archive'
  ): Promise<Workspace> {
    return this.request('POST', `projects/${seg(project)}/workspaces/${seg(workspace)}/${action}`, {});
  }

  workflows(project: string, workspace: string): Promise<WorkflowList> {
    return this.request('GET', `projects/${seg(project)}/workspaces/${seg(workspace)}/workflows`);
  }

  runs(
    project: string,
    workspace: string,
    options: { workflow?: string; limit?: number } = {}
  ): Promise<RunList> {
    const query = new URLSearchParams();
    if (options.workflow) {
      query.set('workflow', options.workflow);
    }
    if (options.limit) {
      query.set('limit', String(options.limit));
    }
    const qs = query.toString();
    return this.request(
      'GET',
      `projects/${seg(project)}/workspaces/${seg(workspace)}/runs${qs ? `?${qs}` : ''}`
    );
  }

  /** Starts a run; `args` are tagged JSON (plain JSON values are their own tagged form). */
  startRun(
    project: string,
    workspace: string,
    module: string,
    target: string,
    args: JSONValue[]
  ): Promise<RunStarted> {
    return this.request('POST', `projects/${seg(project)}/workspaces/${seg(workspace)}/runs`, {
      module,
      target,
      arguments: args
    });
  }

  /** A run as seen from `workspace` (default: its own). */
  run(project: string, runId: string, workspace?: string, signal?: AbortSignal): Promise<Run> {
    const qs = workspace ? `?workspace=${seg(workspace)}` : '';
    return this.request('GET', `projects/${seg(project)}/runs/${seg(runId)}${qs}`, undefined, signal);
  }

  rerun(project: string, stepId: string, workspace: string, parents = false): Promise<ExecutionStarted> {
    const body: { [key: string]: JSONValue } = { workspace };
    if (parents) {
      body.parents = true;
    }
    return this.request('POST', `projects/${seg(project)}/steps/${seg(stepId)}/rerun`, body);
  }

  cancelRun(project: string, runId: string): Promise<RunCancelled> {
    return this.request('POST', `projects/${seg(project)}/runs/${seg(runId)}/cancel`, {});
  }

  cancelExecution(project: string, executionId: string): Promise<ExecutionStarted> {
    return this.request('POST', `projects/${seg(project)}/executions/${seg(executionId)}/cancel`, {});
  }

  logs(project: string, executionId: string): Promise<LogList> {
    return this.request('GET', `projects/${seg(project)}/executions/${seg(executionId)}/logs`);
  }

  asset(project: string, assetId: string): Promise<Asset> {
    return this.request('GET', `projects/${seg(project)}/assets/${seg(assetId)}`);
  }

  /**
   * The bytes of an asset's file, if it has at most `limit` (a longer answer is refused while it
   * streams: previews ask only for files the listing says are small enough).
   */
  async assetFileBytes(project: string, assetId: string, path: string, limit: number): Promise<Uint8Array> {
    const url = this.assetFileUrl(project, assetId, path, true);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, { method: 'GET' }, this.settings);
    } catch (err) {
      throw new CofluxError(`The Jupyter server can't be reached (${describe(err)})`, 0, 'network');
    }
    if (!response.ok) {
      let answer: Partial<ErrorAnswer> | null = null;
      try {
        answer = (await response.json()) as Partial<ErrorAnswer>;
      } catch {
        answer = null;
      }
      const message = answer?.error?.message ?? `${response.status} ${response.statusText || 'error'}`;
      throw new CofluxError(message, response.status, answer?.error?.code ?? 'error');
    }
    const chunks: Uint8Array[] = [];
    let received = 0;
    const reader = response.body?.getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      received += value.length;
      if (received > limit) {
        await reader.cancel();
        throw new CofluxError(
          `${path} sent more than ${limit} bytes, more than its listing says`,
          400,
          'bad_request'
        );
      }
      chunks.push(value);
    }
    const data = new Uint8Array(received);
    let offset = 0;
    for (const chunk of chunks) {
      data.set(chunk, offset);
      offset += chunk.length;
    }
    return data;
  }

  /** Which project and workspace a notebook kernel's worker serves (404: it has no worker session). */
  kernelWorker(kernelId: string, signal?: AbortSignal): Promise<KernelWorker> {
    return this.request('GET', `kernels/${seg(kernelId)}`, undefined, signal);
  }
}

/** A thrown value as one readable line. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    return err.message;
  }
  return String(err);
}
