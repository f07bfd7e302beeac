/**
 * What the Run form sends: a workflow's parameters, the text typed for each, and the positional
 * arguments they make (or the errors to show next to the fields). Pure: no DOM.
 */
import type { JSONValue, Parameter, Workflow } from '../types';

/** Parameters the form has a field for (those a positional argument can bind to). */
export function formParameters(workflow: Workflow): Parameter[] {
  return workflow.parameters.filter(
    p => p.kind === 'positional_only' || p.kind === 'positional_or_keyword' || p.kind === 'var_positional'
  );
}

/** Keyword-only parameters without a default: the REST body can't pass them, so the form can't run. */
export function requiredKeywordOnly(workflow: Workflow): Parameter[] {
  return workflow.parameters.filter(p => p.kind === 'keyword_only' && !p.has_default);
}

/** The text a field starts with: the default as JSON, when the worker sent it. */
export function initialText(parameter: Parameter): string {
  if (parameter.kind === 'var_positional') {
    return '';
  }
  return parameter.default !== undefined ? JSON.stringify(parameter.default) : '';
}

/** Whether a plain string may be typed without quotes (the annotation is `str`). */
export function acceptsBareText(parameter: Parameter): boolean {
  const annotation = (parameter.annotation ?? '').replace(/\s/g, '');
  return annotation === 'str' || annotation === 'str|None' || annotation === 'Optional[str]';
}

export type FieldValue =
  | { kind: 'empty' }
  | { kind: 'default' }
  | { kind: 'value'; value: JSONValue }
  | { kind: 'error'; error: string };

/** How one field reads: left empty, left at its default, a value, or an error. */
export function readField(parameter: Parameter, text: string): FieldValue {
  const trimmed = text.trim();
  if (!trimmed) {
    return { kind: 'empty' };
  }
  if (parameter.default !== undefined && trimmed === initialText(parameter)) {
    return { kind: 'default' };
  }
  let value: JSONValue;
  try {
    value = JSON.parse(trimmed) as JSONValue;
  } catch (err) {
    if (acceptsBareText(parameter)) {
      return { kind: 'value', value: text };
    }
    const reason = err instanceof Error ? err.message : String(err);
    return { kind: 'error', error: `Not valid JSON (${reason}). Text needs quotes: "like this".` };
  }
  if (acceptsBareText(parameter) && typeof value !== 'string' && value !== null) {
    return { kind: 'value', value: text }; // `123` for a `str` is the text "123"
  }
  if (parameter.kind === 'var_positional' && !Array.isArray(value)) {
    return { kind: 'error', error: 'A JSON list of the extra arguments, e.g. [1, 2].' };
  }
  return { kind: 'value', value };
}

export interface FormResult {
  /** The positional arguments, in order (only when there is no error). */
  args: JSONValue[] | null;
  /** Errors by parameter name. */
  errors: Map<string, string>;
}

/**
 * The positional arguments of the fields: every parameter up to the last one given (a field left
 * at its default counts as given only when a later one is), or the errors.
 */
export function buildArguments(parameters: Parameter[], texts: string[]): FormResult {
  const errors = new Map<string, string>();
  const read = parameters.map((p, i) => readField(p, texts[i] ?? ''));
  let last = -1;
  read.forEach((field, i) => {
    if (field.kind === 'value') {
      last = i;
    }
    if (field.kind === 'error') {
      errors.set(parameters[i]!.name, field.error);
    }
  });
  const args: JSONValue[] = [];
  parameters.forEach((p, i) => {
    const field = read[i]!;
    if (p.kind === 'var_positional') {
      if (field.kind === 'value' && Array.isArray(field.value)) {
        args.push(...field.value);
      }
      return;
    }
    if (field.kind === 'empty' && !p.has_default) {
      errors.set(p.name, 'Required: give a JSON value.');
    } else if (i < last) {
      if (field.kind === 'value') {
        args.push(field.value);
      } else if (field.kind === 'default') {
        args.push(p.default ?? null);
      } else if (field.kind === 'empty') {
        errors.set(p.name, 'A later parameter is given, so this one needs a value too.');
      }
    } else if (i === last && field.kind === 'value') {
      args.push(field.value);
    }
  });
  return { args: errors.size ? null : args, errors };
}
