// The proof that a freshly stored access token works: one cheap REST call (app.info) through the
// portal's REST base that Bitrix24's token answer named. The token travels in the POST body, never
// in the address, and nothing of the answer beyond a few plain fields is kept.

export type RestCheck =
    | { ok: true; endpoint: string; appCode?: string; installed?: boolean }
    | { ok: false; endpoint: string; reason: string };

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

export async function checkAppInfo(clientEndpoint: string, accessToken: string, timeoutMs = 15_000): Promise<RestCheck> {
    let url: URL;
    try {
        url = new URL("app.info.json", clientEndpoint.endsWith("/") ? clientEndpoint : `${clientEndpoint}/`);
    } catch {
        return { ok: false, endpoint: clientEndpoint, reason: "the REST address is not a URL" };
    }
    const endpoint = `${url.origin}${url.pathname.replace(/app\.info\.json$/, "")}`;
    if (url.protocol !== "https:" && !(url.protocol === "http:" && loopbackHosts.has(url.hostname))) {
        return { ok: false, endpoint, reason: "the REST address is not https; the token was not sent" };
    }
    let status: number;
    let body: string;
    try {
        const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", "user-agent": "b24-token-rotation" },
            body: new URLSearchParams({ auth: accessToken }).toString(),
            redirect: "manual",
            signal: AbortSignal.timeout(timeoutMs),
        });
        status = response.status;
        body = await response.text();
    } catch (error) {
        const name = error instanceof Error ? ((error.cause as { code?: string } | undefined)?.code ?? error.name) : "error";
        return { ok: false, endpoint, reason: `no answer (${name})` };
    }
    let json: Record<string, unknown> | undefined;
    try {
        const parsed = JSON.parse(body) as unknown;
        json = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    } catch {
        json = undefined;
    }
    if (json && typeof json.error === "string") {
        const error = /^[A-Za-z0-9_.-]{1,64}$/.test(json.error) ? json.error : "unrecognised";
        return { ok: false, endpoint, reason: `HTTP ${status}, ${error}` };
    }
    if (status < 200 || status >= 300 || !json || json.result === undefined) {
        return { ok: false, endpoint, reason: `HTTP ${status}, ${json ? "no result" : "not JSON"}` };
    }
    const result = json.result && typeof json.result === "object" ? (json.result as Record<string, unknown>) : {};
    const check: RestCheck = { ok: true, endpoint };
    if (typeof result.CODE === "string" && /^[A-Za-z0-9_.-]{1,128}$/.test(result.CODE)) check.appCode = result.CODE;
    if (typeof result.INSTALLED === "boolean") check.installed = result.INSTALLED;
    return check;
}
