/**
 * The events feed (`coflux/ws/events?project=P`): one websocket per project, shared by every view,
 * reconnecting by itself (backoff from 0.5 s doubling to 10 s) and telling listeners its state, so
 * views can refetch what they show after an outage.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { CofluxApi } from './api';
import type { CofluxEvent } from './types';

export type ConnectionState = 'connecting' | 'open' | 'closed';

const MIN_DELAY = 500;
const MAX_DELAY = 10000;

/** The feed of one project. */
export class ProjectEvents {
  constructor(
    private readonly api: CofluxApi,
    readonly project: string
  ) {
    this.connect();
  }

  /** Each message of the feed. */
  get received(): ISignal<this, CofluxEvent> {
    return this._received;
  }

  /** The socket opened, closed or is trying again. On `open` after an outage, refetch. */
  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Why the last attempt failed, if it did (for messages). */
  get lastError(): string | null {
    return this._lastError;
  }

  /** Tries again at once (for a "reconnect" button). */
  reconnectNow(): void {
    if (this._state === 'open' || this._disposed) {
      return;
    }
    this.clearTimer();
    this._delay = MIN_DELAY;
    this.connect();
  }

  dispose(): void {
    this._disposed = true;
    this.clearTimer();
    this._socket?.close();
    this._socket = null;
    Signal.clearData(this);
  }

  private connect(): void {
    if (this._disposed) {
      return;
    }
    this.setState('connecting');
    let socket: WebSocket;
    try {
      socket = new this.api.settings.WebSocket(this.api.eventsUrl(this.project));
    } catch (err) {
      this._lastError = String(err);
      this.scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._delay = MIN_DELAY;
      this._lastError = null;
      this.setState('open');
    };
    socket.onmessage = (message: MessageEvent) => {
      let event: CofluxEvent;
      try {
        event = JSON.parse(String(message.data)) as CofluxEvent;
      } catch {
        return; // not ours to judge: the server only sends JSON
      }
      this._received.emit(event);
    };
    socket.onclose = (close: CloseEvent) => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._lastError = close.reason || `the connection closed (code ${close.code})`;
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this._disposed) {
      return;
    }
    this.setState('closed');
    this.clearTimer();
    this._timer = window.setTimeout(() => {
      this._timer = null;
      this.connect();
    }, this._delay);
    this._delay = Math.min(this._delay * 2, MAX_DELAY);
  }

  private clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private setState(state: ConnectionState): void {
    if (state !== this._state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _socket: WebSocket | null = null;
  private _state: ConnectionState = 'closed';
  private _lastError: string | null = null;
  private _delay = MIN_DELAY;
  private _timer: number | null = null;
  private _disposed = false;
  private _received = new Signal<this, CofluxEvent>(this);
  private _stateChanged = new Signal<this, ConnectionState>(this);
}

/** One `ProjectEvents` per project, made on first use and kept for the page's life. */
export class EventsHub {
  constructor(private readonly api: CofluxApi) {}

  project(name: string): ProjectEvents {
    let events = this._projects.get(name);
    if (!events) {
      events = new ProjectEvents(this.api, name);
      this._projects.set(name, events);
      this._added.emit(events);
    }
    return events;
  }

  /** A project's feed was opened (the status bar follows every feed's state). */
  get added(): ISignal<this, ProjectEvents> {
    return this._added;
  }

  get all(): ProjectEvents[] {
    return [...this._projects.values()];
  }

  private _projects = new Map<string, ProjectEvents>();
  private _added = new Signal<this, ProjectEvents>(this);
}
