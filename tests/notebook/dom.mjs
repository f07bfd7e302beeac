// Just enough DOM and anywidget model to render the widget views in node and click on them.
// Selectors: compound only (tag, .class, [attr] and [attr="value"]), no combinators.

class Node {
  constructor() {
    this.parentNode = null;
  }
}

class Text extends Node {
  constructor(data) {
    super();
    this.data = String(data);
  }
  get textContent() {
    return this.data;
  }
}

function parse(selector) {
  const tag = /^[a-z]+/i.exec(selector)?.[0]?.toUpperCase() ?? null;
  const classes = [...selector.matchAll(/\.([\w-]+)/g)].map((m) => m[1]);
  const attrs = [...selector.matchAll(/\[([\w-]+)(?:="([^"]*)")?\]/g)].map((m) => [m[1], m[2]]);
  return (node) =>
    node instanceof Element &&
    (tag === null || node.tagName === tag) &&
    classes.every((c) => node.classList.includes(c)) &&
    attrs.every(([k, v]) => node.hasAttribute(k) && (v === undefined || node.getAttribute(k) === v));
}

class Element extends Node {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this.childNodes = [];
    this.attributes = new Map();
    this.listeners = {};
    this.className = "";
    this.placeholder = "";
    this._value = "";
    const self = this;
    this.dataset = new Proxy(
      {},
      {
        get: (_t, key) => self.getAttribute(`data-${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`) ?? undefined,
      },
    );
  }
  get classList() {
    return this.className.split(/\s+/).filter(Boolean);
  }
  setAttribute(key, value) {
    if (key === "class") this.className = String(value);
    else this.attributes.set(key, String(value));
  }
  getAttribute(key) {
    if (key === "class") return this.className;
    return this.attributes.has(key) ? this.attributes.get(key) : null;
  }
  hasAttribute(key) {
    return key === "class" ? Boolean(this.className) : this.attributes.has(key);
  }
  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }
  dispatch(type, init = {}) {
    const event = { type, key: init.key, stopped: false, target: this };
    event.stopPropagation = () => (event.stopped = true);
    event.preventDefault = () => {};
    for (let node = this; node && !event.stopped; node = node.parentNode) {
      for (const listener of node.listeners[type] || []) listener(event);
    }
  }
  click() {
    this.dispatch("click");
  }
  append(...nodes) {
    for (const node of nodes) {
      const child = node instanceof Node ? node : new Text(node);
      child.parentNode = this;
      this.childNodes.push(child);
    }
  }
  replaceChildren(...nodes) {
    for (const child of this.childNodes) child.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }
  get textContent() {
    return this.childNodes.map((c) => c.textContent).join("");
  }
  set textContent(text) {
    this.replaceChildren(new Text(text));
  }
  get value() {
    if (this.tagName === "SELECT") {
      const options = this.querySelectorAll("option");
      const chosen = options.find((o) => o.hasAttribute("selected")) ?? options[0];
      return chosen ? chosen.getAttribute("value") : "";
    }
    return this._value;
  }
  set value(value) {
    if (this.tagName === "SELECT") {
      for (const option of this.querySelectorAll("option")) {
        if (option.getAttribute("value") === value) option.setAttribute("selected", "");
        else option.attributes.delete("selected");
      }
    } else this._value = value;
  }
  *descendants() {
    for (const child of this.childNodes) {
      if (child instanceof Element) {
        yield child;
        yield* child.descendants();
      }
    }
  }
  querySelectorAll(selector) {
    const match = parse(selector);
    return [...this.descendants()].filter(match);
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] ?? null;
  }
  closest(selector) {
    const match = parse(selector);
    for (let node = this; node; node = node.parentNode) if (match(node)) return node;
    return null;
  }
}

globalThis.Node = Node;
globalThis.document = {
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => new Text(text),
};

export class Model {
  constructor(state) {
    this.state = structuredClone(state);
    this.handlers = {};
    this.sent = [];
    this.saved = 0;
  }
  get(key) {
    return this.state[key];
  }
  set(key, value) {
    this.state[key] = value;
    for (const handler of this.handlers[`change:${key}`] || []) handler();
  }
  on(event, handler) {
    (this.handlers[event] ||= []).push(handler);
  }
  off(event, handler) {
    this.handlers[event] = (this.handlers[event] || []).filter((h) => h !== handler);
  }
  send(message) {
    this.sent.push(message);
  }
  save_changes() {
    this.saved += 1;
  }
}

export async function render(viewPath, state) {
  const view = await import(viewPath);
  const model = new Model(state);
  const el = document.createElement("div");
  const cleanup = view.default.render({ model, el });
  return { model, el, cleanup, view };
}
