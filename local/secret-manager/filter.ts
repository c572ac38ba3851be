// The `filter` of ListSecrets / ListSecretVersions
// (https://cloud.google.com/secret-manager/docs/filtering), the subset an emulator needs:
//
//   term        field OP value      OP is one of  :  =  !=  <  >  <=  >=
//   fields      name, state, create_time, labels, labels.KEY,
//               replication.automatic, replication.user_managed
//   values      bare words or "quoted strings"; `*` is a wildcard (`labels.env:*` = has the label)
//   combinators NOT / - prefix, OR (binds tighter than AND, as in AIP-160),
//               AND or plain juxtaposition, parentheses
//
// `name:x` matches when the resource id contains x; `state:enabled` is case-insensitive.
// Anything else is answered with INVALID_ARGUMENT naming the unsupported part.

import { ApiError, Code } from './errors';

export interface FilterSubject {
  /** The last segment of the resource name: the secret id or the version number. */
  id: string;
  fullName: string;
  createTimeMs: number;
  state?: string;
  labels?: Record<string, string>;
  replication?: 'automatic' | 'user_managed';
}

export type FilterField = 'name' | 'state' | 'create_time' | 'labels' | 'replication';

type Node =
  | { kind: 'and' | 'or'; items: Node[] }
  | { kind: 'not'; item: Node }
  | { kind: 'term'; field: string; op: string; value: string };

const TOKEN_RE = /\(|\)|(?:[^\s()"]|"(?:[^"\\]|\\.)*")+/g;
const TERM_RE = /^([A-Za-z_][A-Za-z0-9_.-]*)(<=|>=|!=|=|:|<|>)(.*)$/s;

function invalid(filter: string, why: string): ApiError {
  return new ApiError(Code.INVALID_ARGUMENT, `Invalid filter [${filter}]: ${why}.`);
}

function parse(filter: string): Node | undefined {
  const tokens = filter.match(TOKEN_RE) ?? [];
  let pos = 0;
  const peek = (): string | undefined => tokens[pos];

  function parseAnd(): Node {
    const items: Node[] = [parseOr()];
    for (;;) {
      const t = peek();
      if (t === undefined || t === ')') break;
      if (t === 'AND') pos++;
      items.push(parseOr());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  }
  function parseOr(): Node {
    const items: Node[] = [parseUnary()];
    while (peek() === 'OR') {
      pos++;
      items.push(parseUnary());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  }
  function parseUnary(): Node {
    const t = tokens[pos++];
    if (t === undefined) throw invalid(filter, 'unexpected end');
    if (t === 'NOT') return { kind: 'not', item: parseUnary() };
    if (t === '(') {
      const inner = parseAnd();
      if (tokens[pos++] !== ')') throw invalid(filter, 'missing )');
      return inner;
    }
    if (t === ')' || t === 'AND' || t === 'OR') throw invalid(filter, `unexpected ${t}`);
    if (t.startsWith('-') && t.length > 1) return { kind: 'not', item: term(t.slice(1)) };
    return term(t);
  }
  function term(t: string): Node {
    const m = TERM_RE.exec(t);
    if (!m) throw invalid(filter, `[${t}] is not of the form field:value`);
    let value = m[3]!;
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    return { kind: 'term', field: m[1]!, op: m[2]!, value };
  }

  if (tokens.length === 0) return undefined;
  const node = parseAnd();
  if (pos !== tokens.length) throw invalid(filter, `unexpected ${tokens[pos]}`);
  return node;
}

function glob(pattern: string, anchored: boolean): RegExp {
  const body = pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(anchored ? `^${body}$` : body);
}

function compareTime(filter: string, actual: number, op: string, value: string): boolean {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw invalid(filter, `[${value}] is not an RFC 3339 time`);
  switch (op) {
    case '<': return actual < t;
    case '<=': return actual <= t;
    case '>': return actual > t;
    case '>=': return actual >= t;
    case '!=': return actual !== t;
    default: return actual === t;
  }
}

function matchString(actual: string | undefined, op: string, value: string, substring: boolean): boolean {
  if (op === '!=') return actual !== value;
  if (op === '=') return actual === value;
  if (op !== ':') return false;
  if (actual === undefined) return false;
  if (value === '*') return true;
  return glob(value, !substring).test(actual);
}

/**
 * Compiles `filter` into a predicate; an empty filter matches everything.
 * `fields` says which fields the listed resource has (secrets vs versions).
 */
export function compileFilter(filter: string, fields: readonly FilterField[]): (s: FilterSubject) => boolean {
  const root = parse(filter.trim());
  if (!root) return () => true;

  const check = (node: Node): void => {
    if (node.kind === 'not') return check(node.item);
    if (node.kind !== 'term') return node.items.forEach(check);
    const head = node.field.split('.')[0] as FilterField;
    if (!fields.includes(head)) throw invalid(filter, `field [${node.field}] is not supported here`);
    if (head === 'replication' && !['replication.automatic', 'replication.user_managed'].includes(node.field)) {
      throw invalid(filter, `field [${node.field}] is not supported by this emulator`);
    }
    if (['<', '>', '<=', '>='].includes(node.op) && head !== 'create_time') {
      throw invalid(filter, `operator ${node.op} needs a time field`);
    }
  };
  check(root);

  const evaluate = (node: Node, s: FilterSubject): boolean => {
    switch (node.kind) {
      case 'and': return node.items.every((n) => evaluate(n, s));
      case 'or': return node.items.some((n) => evaluate(n, s));
      case 'not': return !evaluate(node.item, s);
      case 'term': {
        const { field, op, value } = node;
        if (field === 'name') {
          if (op === '=' || op === '!=') return (s.id === value || s.fullName === value) === (op === '=');
          return matchString(s.id, op, value, true);
        }
        if (field === 'state') {
          const eq = (s.state ?? '').toUpperCase() === value.toUpperCase();
          return op === '!=' ? !eq : eq;
        }
        if (field === 'create_time') return compareTime(filter, s.createTimeMs, op, value);
        if (field === 'labels') {
          const has = Object.prototype.hasOwnProperty.call(s.labels ?? {}, value);
          return op === '!=' ? !has : has;
        }
        if (field.startsWith('labels.')) {
          const key = field.slice('labels.'.length);
          const labels = s.labels ?? {};
          const actual = Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : undefined;
          return matchString(actual, op, value, false);
        }
        const kind = field === 'replication.automatic' ? 'automatic' : 'user_managed';
        const is = s.replication === kind;
        return op === '!=' ? !is : is;
      }
    }
  };
  return (s) => evaluate(root, s);
}
