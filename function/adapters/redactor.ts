// Last line of defence for logs and errors: scrubs every secret value the adapters have seen,
// and anything shaped like a token parameter, before a line leaves the process.

const tokenParameter =
    /((?:access_token|refresh_token|client_secret|application_token|auth\[[a-z_]+\])["']?\s*[:=]\s*["']?)([^"'&\s,;}]+)/gi;
const codeParameter = /([?&]code=)([^&\s"']+)/gi;

export const redactedMark = "[redacted]";

export class Redactor {
    private readonly secrets = new Set<string>();

    /** Remembers a value that must never be printed. Very short values are ignored (they would mangle ordinary text). */
    add(value: string | undefined): void {
        if (value && value.length >= 6) this.secrets.add(value);
    }

    scrub(text: string): string {
        let out = text;
        for (const secret of this.secrets) {
            if (out.includes(secret)) out = out.split(secret).join(redactedMark);
        }
        return out.replace(tokenParameter, `$1${redactedMark}`).replace(codeParameter, `$1${redactedMark}`);
    }
}
