// The small human-readable page the OAuth callback (and the CLI's loopback listener) answers a
// browser with. Every value is escaped; the page loads nothing and sends no referrer, so the
// address it was opened at (which held an authorization code) goes nowhere.

export function escapeHtml(text: string): string {
    return text.replace(/[&<>"'`=\/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageContent {
    title: string;
    /** Plain-text paragraphs; escaped here. */
    paragraphs: string[];
}

export const pageHeaders: Readonly<Record<string, string>> = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
};

export function renderPage(content: PageContent): string {
    const body = content.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join("\n");
    return [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        `<title>${escapeHtml(content.title)}</title>`,
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}</style>",
        "</head><body>",
        `<h1>${escapeHtml(content.title)}</h1>`,
        body,
        "</body></html>",
        "",
    ].join("\n");
}
