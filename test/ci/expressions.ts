// A small evaluator for the subset of GitHub Actions expressions the workflows use in `if:`
// (context paths, 'string' literals, ==, !=, !, &&, ||, parentheses), so a test can run a job's
// condition against the events it must and must not run for. Semantics follow GitHub's: string
// comparison ignores case, a missing property is null and compares equal to ''.

export type Context = Record<string, unknown>;

type Token = { kind: "string"; value: string } | { kind: "path"; value: string } | { kind: "op"; value: string };

function tokenize(source: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < source.length) {
        const rest = source.slice(i);
        const space = /^\s+/.exec(rest);
        if (space) {
            i += space[0].length;
            continue;
        }
        const op = /^(==|!=|&&|\|\||!|\(|\))/.exec(rest);
        if (op) {
            tokens.push({ kind: "op", value: op[0] });
            i += op[0].length;
            continue;
        }
        const literal = /^'((?:[^']|'')*)'/.exec(rest);
        if (literal) {
            tokens.push({ kind: "string", value: literal[1]!.replace(/''/g, "'") });
            i += literal[0].length;
            continue;
        }
        const path = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*/.exec(rest);
        if (path) {
            tokens.push({ kind: "path", value: path[0] });
            i += path[0].length;
            continue;
        }
        throw new Error(`unsupported expression syntax at "${rest.slice(0, 20)}" in: ${source}`);
    }
    return tokens;
}

function lookup(context: Context, path: string): unknown {
    let value: unknown = context;
    for (const part of path.split(".")) {
        if (value === null || typeof value !== "object") return null;
        value = (value as Record<string, unknown>)[part];
        if (value === undefined) return null;
    }
    return value;
}

function truthy(value: unknown): boolean {
    return !(value === null || value === false || value === "" || value === 0);
}

function equal(a: unknown, b: unknown): boolean {
    const norm = (v: unknown) => (v === null || v === undefined ? "" : typeof v === "string" ? v.toLowerCase() : String(v).toLowerCase());
    return norm(a) === norm(b);
}

/** Evaluates `expression` (with or without `${{ }}`) in `context`. */
export function evaluate(expression: string, context: Context): boolean {
    const trimmed = expression.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, "$1");
    const tokens = tokenize(trimmed);
    let pos = 0;
    const peek = () => tokens[pos];
    const expectOp = (value: string) => {
        const token = tokens[pos++];
        if (!token || token.kind !== "op" || token.value !== value) throw new Error(`expected "${value}" in: ${trimmed}`);
    };

    const primary = (): unknown => {
        const token = tokens[pos++];
        if (!token) throw new Error(`unexpected end of: ${trimmed}`);
        if (token.kind === "string") return token.value;
        if (token.kind === "path") return lookup(context, token.value);
        if (token.value === "(") {
            const value = or();
            expectOp(")");
            return value;
        }
        if (token.value === "!") return !truthy(primary());
        throw new Error(`unexpected "${token.value}" in: ${trimmed}`);
    };
    const comparison = (): unknown => {
        const left = primary();
        const token = peek();
        if (token?.kind === "op" && (token.value === "==" || token.value === "!=")) {
            pos++;
            const right = primary();
            return token.value === "==" ? equal(left, right) : !equal(left, right);
        }
        return left;
    };
    const and = (): unknown => {
        let value = comparison();
        while (peek()?.kind === "op" && peek()!.value === "&&") {
            pos++;
            const right = comparison();
            value = truthy(value) ? right : value;
        }
        return value;
    };
    function or(): unknown {
        let value = and();
        while (peek()?.kind === "op" && peek()!.value === "||") {
            pos++;
            const right = and();
            value = truthy(value) ? value : right;
        }
        return value;
    }

    const result = or();
    if (pos !== tokens.length) throw new Error(`trailing tokens in: ${trimmed}`);
    return truthy(result);
}
