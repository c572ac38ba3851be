// What the user pasted (or the loopback listener received): a whole redirect address, its query
// string, or a bare code. Pure.
import type { RedirectParams } from "../function/core/authorization";

export type RedirectInput =
    | { ok: true; params: RedirectParams; source: "url" | "code" }
    | { ok: false; reason: "empty" | "unrecognised" | "no_code" }
    | { ok: false; reason: "denied"; error: string };

const codePattern = /^[A-Za-z0-9._~-]{6,512}$/;
const wordPattern = /^[A-Za-z0-9_.-]{1,64}$/;

function value(params: URLSearchParams, key: string): string | undefined {
    const v = params.get(key)?.trim();
    return v ? v : undefined;
}

/** Reads the redirect's parameters from a query string. */
export function redirectFromQuery(query: URLSearchParams): RedirectInput {
    const error = value(query, "error");
    if (error) return { ok: false, reason: "denied", error: wordPattern.test(error) ? error : "unrecognised" };
    const code = value(query, "code");
    if (!code) return { ok: false, reason: "no_code" };
    if (!codePattern.test(code)) return { ok: false, reason: "unrecognised" };
    const params: RedirectParams = { code };
    const state = value(query, "state");
    const domain = value(query, "domain");
    const memberId = value(query, "member_id");
    const scope = value(query, "scope");
    const serverDomain = value(query, "server_domain");
    if (state) params.state = state;
    if (domain) params.domain = domain;
    if (memberId) params.memberId = memberId;
    if (scope) params.scope = scope;
    if (serverDomain) params.serverDomain = serverDomain;
    return { ok: true, params, source: "url" };
}

export function parsePastedRedirect(text: string): RedirectInput {
    const trimmed = text.trim().replace(/^[<"']+|[>"']+$/g, "");
    if (!trimmed) return { ok: false, reason: "empty" };
    if (/^https?:\/\//i.test(trimmed)) {
        try {
            return redirectFromQuery(new URL(trimmed).searchParams);
        } catch {
            return { ok: false, reason: "unrecognised" };
        }
    }
    if (/(^|[?&])(code|error)=/.test(trimmed)) {
        const at = trimmed.indexOf("?");
        return redirectFromQuery(new URLSearchParams(at >= 0 ? trimmed.slice(at + 1) : trimmed));
    }
    if (codePattern.test(trimmed)) return { ok: true, params: { code: trimmed }, source: "code" };
    return { ok: false, reason: "unrecognised" };
}
