// What an HTTP request to the `oauthCallback` entry point is: Bitrix24's OAuth redirect (a browser
// GET with code, state, domain, member_id), the ONAPPINSTALL event Bitrix24 posts to a local app's
// "Initial installation path" (form-encoded `event`, `auth[access_token]`, `auth[refresh_token]`, …),
// or something to refuse. Pure and total: any input gives a classification, never an exception.
import { isPortalDomain, normalizePortalDomain, type RedirectParams } from "./authorization";

/** Larger bodies are refused before anything is parsed. ONAPPINSTALL bodies are well under 2 KiB. */
export const maxCallbackBodyBytes = 64 * 1024;

export interface InstallEvent {
    accessToken: string;
    refreshToken: string;
    applicationToken: string;
    domain: string;
    memberId: string;
    scope?: string;
    clientEndpoint?: string;
}

export type CallbackRequest = { kind: "redirect"; params: RedirectParams } | { kind: "install"; event: InstallEvent };

export type CallbackRefusalCode =
    | "method_not_allowed"
    | "body_too_large"
    | "unsupported_media_type"
    | "missing_fields"
    | "malformed_fields"
    | "unsupported_event"
    | "authorization_denied";

export interface CallbackRefusal {
    status: 400 | 405 | 413 | 415;
    code: CallbackRefusalCode;
    /** Field names only, never values. */
    fields?: string[];
    /** Bitrix24's own `error` value when the redirect carried one (checked to be a plain word). */
    detail?: string;
}

export type ClassifiedCallback = { ok: true; request: CallbackRequest } | { ok: false; refusal: CallbackRefusal };

export interface CallbackHttpInput {
    method: string;
    query: URLSearchParams;
    contentType?: string;
    /** The body as received (functions-framework keeps it as `req.rawBody`). */
    rawBody?: Uint8Array;
    /** The framework's parsed body, used when there is no raw body. */
    parsedBody?: unknown;
}

const tokenPattern = /^[\x21-\x7e]{6,512}$/;
const memberIdPattern = /^[A-Za-z0-9_.-]{1,128}$/;
const wordPattern = /^[A-Za-z0-9_.-]{1,64}$/;

function refuse(status: CallbackRefusal["status"], code: CallbackRefusalCode, extra: Partial<CallbackRefusal> = {}): ClassifiedCallback {
    return { ok: false, refusal: { status, code, ...extra } };
}

/** Flattens `{auth: {access_token}}` into `auth[access_token]`, as a form body spells it. */
function flatten(value: unknown, prefix: string, out: Map<string, string>, depth = 0): void {
    if (depth > 3 || out.size > 200) return;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
            flatten(inner, prefix ? `${prefix}[${key}]` : key, out, depth + 1);
        }
    } else if (typeof value === "string" || typeof value === "number") {
        if (prefix) out.set(prefix, String(value));
    }
}

function bodyFields(input: CallbackHttpInput): Map<string, string> | "unsupported" {
    const type = (input.contentType ?? "").split(";")[0]!.trim().toLowerCase();
    const raw = input.rawBody && input.rawBody.length > 0 ? Buffer.from(input.rawBody).toString("utf8") : undefined;
    const out = new Map<string, string>();
    if (raw === undefined) {
        flatten(input.parsedBody, "", out);
        return out;
    }
    if (type === "application/x-www-form-urlencoded" || type === "") {
        for (const [key, value] of new URLSearchParams(raw)) if (!out.has(key)) out.set(key, value);
        return out;
    }
    if (type === "application/json") {
        try {
            flatten(JSON.parse(raw) as unknown, "", out);
        } catch {
            return out;
        }
        return out;
    }
    return "unsupported";
}

function nonEmpty(value: string | null | undefined): string | undefined {
    const v = value?.trim();
    return v ? v : undefined;
}

export function classifyCallback(input: CallbackHttpInput): ClassifiedCallback {
    const method = input.method.toUpperCase();
    if (method !== "GET" && method !== "POST") return refuse(405, "method_not_allowed");
    if (input.rawBody && input.rawBody.length > maxCallbackBodyBytes) return refuse(413, "body_too_large");

    if (method === "GET") {
        const q = input.query;
        const error = nonEmpty(q.get("error"));
        if (error) return refuse(400, "authorization_denied", { detail: wordPattern.test(error) ? error : "unrecognised" });
        const params = {
            code: nonEmpty(q.get("code")),
            state: nonEmpty(q.get("state")),
            domain: nonEmpty(q.get("domain")),
            memberId: nonEmpty(q.get("member_id")),
            scope: nonEmpty(q.get("scope")),
            serverDomain: nonEmpty(q.get("server_domain")),
        };
        const missing = (["code", "state", "domain", "member_id"] as const).filter(
            (name) => !params[name === "member_id" ? "memberId" : name],
        );
        if (missing.length > 0) return refuse(400, "missing_fields", { fields: [...missing] });
        const malformed: string[] = [];
        if (!tokenPattern.test(params.code!)) malformed.push("code");
        if (params.state!.length > 256) malformed.push("state");
        if (!isPortalDomain(normalizePortalDomain(params.domain!))) malformed.push("domain");
        if (!memberIdPattern.test(params.memberId!)) malformed.push("member_id");
        if (malformed.length > 0) return refuse(400, "malformed_fields", { fields: malformed });
        const redirect: RedirectParams = { code: params.code!, state: params.state, domain: params.domain, memberId: params.memberId };
        if (params.scope) redirect.scope = params.scope;
        if (params.serverDomain) redirect.serverDomain = params.serverDomain;
        return { ok: true, request: { kind: "redirect", params: redirect } };
    }

    const fields = bodyFields(input);
    if (fields === "unsupported") return refuse(415, "unsupported_media_type");
    const event = nonEmpty(fields.get("event"));
    if (!event) return refuse(400, "missing_fields", { fields: ["event"] });
    if (event.toUpperCase() !== "ONAPPINSTALL") return refuse(400, "unsupported_event", { detail: wordPattern.test(event) ? event : "unrecognised" });
    const auth = (name: string) => nonEmpty(fields.get(`auth[${name}]`));
    const required = ["access_token", "refresh_token", "application_token", "domain", "member_id"] as const;
    const missing = required.filter((name) => !auth(name)).map((name) => `auth[${name}]`);
    if (missing.length > 0) return refuse(400, "missing_fields", { fields: missing });
    const malformed: string[] = [];
    for (const name of ["access_token", "refresh_token", "application_token"] as const) {
        if (!tokenPattern.test(auth(name)!)) malformed.push(`auth[${name}]`);
    }
    if (!isPortalDomain(normalizePortalDomain(auth("domain")!))) malformed.push("auth[domain]");
    if (!memberIdPattern.test(auth("member_id")!)) malformed.push("auth[member_id]");
    if (malformed.length > 0) return refuse(400, "malformed_fields", { fields: malformed });
    const installEvent: InstallEvent = {
        accessToken: auth("access_token")!,
        refreshToken: auth("refresh_token")!,
        applicationToken: auth("application_token")!,
        domain: auth("domain")!,
        memberId: auth("member_id")!,
    };
    const scope = auth("scope");
    if (scope) installEvent.scope = scope;
    const clientEndpoint = auth("client_endpoint");
    if (clientEndpoint) installEvent.clientEndpoint = clientEndpoint;
    return { ok: true, request: { kind: "install", event: installEvent } };
}
