// The two ways the authorization code reaches `npm run authorize`: a listener on 127.0.0.1 that the
// browser is redirected to, or a line pasted on stdin.
import { createServer, type ServerResponse } from "node:http";
import * as readline from "node:readline";
import type { Readable } from "node:stream";
import { pageHeaders, renderPage, type PageContent } from "../function/adapters/html-page";
import type { RedirectParams } from "../function/core/authorization";
import { parsePastedRedirect, redirectFromQuery } from "./redirect-input";

export type Received =
    | { ok: true; params: RedirectParams; source: "url" | "code" }
    | { ok: false; reason: "denied"; error: string }
    | { ok: false; reason: "timeout" | "closed" };

export interface LoopbackListener {
    /** Resolves with the first request that carries a code (or an error) on the redirect path. */
    received: Promise<Received>;
    /** Answers the browser's pending request, once the outcome is known. */
    finish(status: number, page: PageContent): void;
    close(): Promise<void>;
}

export class ListenError extends Error {}

export async function startLoopbackListener(port: number, path: string, timeoutMs: number): Promise<LoopbackListener> {
    let pending: ServerResponse | undefined;
    let settled = false;
    let resolveReceived!: (r: Received) => void;
    const received = new Promise<Received>((resolve) => (resolveReceived = resolve));
    const settle = (r: Received) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolveReceived(r);
    };
    const answer = (res: ServerResponse, status: number, page: PageContent) => {
        res.writeHead(status, { ...pageHeaders, connection: "close" });
        res.end(renderPage(page));
    };

    const server = createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const requestPath = url.pathname.replace(/\/+$/, "") || "/";
        if (requestPath !== path) return answer(res, 404, { title: "Not found", paragraphs: ["This is not the redirect address."] });
        if (req.method !== "GET") return answer(res, 405, { title: "Method not allowed", paragraphs: ["Only the browser's redirect (GET) is expected here."] });
        if (settled) {
            return answer(res, 409, { title: "Already received", paragraphs: ["A redirect already arrived; see the terminal for the outcome."] });
        }
        const input = redirectFromQuery(url.searchParams);
        if (input.ok) {
            pending = res;
            settle({ ok: true, params: input.params, source: "url" });
        } else if (input.reason === "denied") {
            answer(res, 400, { title: "Authorization not granted", paragraphs: [`Bitrix24 answered ${input.error}. See the terminal.`] });
            settle(input);
        } else {
            answer(res, 400, { title: "Waiting for Bitrix24", paragraphs: ["This address expects Bitrix24's redirect with a code; none came with this request."] });
        }
    });
    const timer = setTimeout(() => settle({ ok: false, reason: "timeout" }), timeoutMs);
    timer.unref();

    await new Promise<void>((resolve, reject) => {
        server.once("error", (error: NodeJS.ErrnoException) => {
            clearTimeout(timer);
            const why =
                error.code === "EADDRINUSE"
                    ? `port ${port} on 127.0.0.1 is already in use; stop whatever uses it, or register another http://localhost:PORT/… redirect address`
                    : error.code === "EACCES"
                      ? `port ${port} needs privileges to listen on; register a redirect address with a port above 1024`
                      : `could not listen on 127.0.0.1:${port} (${error.code ?? error.message})`;
            reject(new ListenError(why));
        });
        server.listen(port, "127.0.0.1", () => resolve());
    });

    return {
        received,
        finish(status, page) {
            if (!pending) return;
            answer(pending, status, page);
            pending = undefined;
        },
        async close() {
            clearTimeout(timer);
            await new Promise<void>((resolve) => {
                server.close(() => resolve());
                server.closeAllConnections();
            });
        },
    };
}

/**
 * Reads lines from `input` until one holds a redirect address or a code. Lines that hold neither get a
 * hint on `hint` and the next line is read.
 */
export function readPastedRedirect(input: Readable, hint: (line: string) => void, timeoutMs: number): Promise<Received> {
    return new Promise((resolve) => {
        const rl = readline.createInterface({ input, terminal: false });
        let done = false;
        const finish = (r: Received) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            rl.close();
            resolve(r);
        };
        const timer = setTimeout(() => finish({ ok: false, reason: "timeout" }), timeoutMs);
        timer.unref();
        rl.on("line", (line) => {
            const parsed = parsePastedRedirect(line);
            if (parsed.ok) return finish(parsed);
            if (parsed.reason === "denied") return finish(parsed);
            if (parsed.reason === "empty") return;
            hint(
                parsed.reason === "no_code"
                    ? "That address has no code parameter. Paste the address Bitrix24 redirected the browser to (it carries code, state, domain, member_id)."
                    : "That is neither a redirect address with a code parameter nor a code. Paste the whole address from the browser's address bar.",
            );
        });
        rl.on("close", () => finish({ ok: false, reason: "closed" }));
    });
}
