// The one shared check that no token, client secret or authorization code reached a log line or
// an error. Every test that touches tokens calls it with everything it captured.
import { expect } from "vitest";

/** Values shorter than this are not treated as secrets (they would match ordinary words). */
const minimumSecretLength = 6;

export function expectNoSecrets(captured: Iterable<string | undefined>, secrets: Iterable<string | undefined>): void {
    const values = [...new Set([...secrets].filter((s): s is string => typeof s === "string" && s.length >= minimumSecretLength))];
    const texts = [...captured].filter((t): t is string => typeof t === "string");
    expect(values.length, "the check needs at least one secret value to look for").toBeGreaterThan(0);
    const leaks: string[] = [];
    for (const text of texts) {
        for (const value of values) {
            if (text.includes(value)) leaks.push(`${value.slice(0, 4)}… in: ${text.slice(0, 160)}`);
        }
    }
    expect(leaks, "secret values found in captured output").toEqual([]);
}

/** Error texts as they would be printed: message, stack and any enumerable fields. */
export function errorTexts(error: unknown): string[] {
    if (!(error instanceof Error)) return [String(error)];
    let fields = "";
    try {
        fields = JSON.stringify(error);
    } catch {
        fields = "";
    }
    return [error.message, error.stack ?? "", fields];
}
