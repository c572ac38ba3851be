import { describe, expect, it } from "vitest";
import { createJsonLog } from "../../function/adapters/json-log";
import { Redactor } from "../../function/adapters/redactor";
import { expectNoSecrets } from "../helpers/no-secrets";

describe("Redactor and the JSON log", () => {
    it("scrubs registered values and token-shaped parameters from every line", () => {
        const redactor = new Redactor();
        const known = "known-secret-value-123456";
        redactor.add(known);
        const lines: string[] = [];
        const log = createJsonLog(redactor, (line) => lines.push(line));
        const unknownRefresh = "f0f0f0f0f0f0f0f0f0f0f0f0unknownrefresh";
        const unknownCode = "c0dec0dec0dec0de";
        log.write({ severity: "ERROR", message: `oops ${known}` });
        log.write({ severity: "ERROR", message: `body grant_type=refresh_token&refresh_token=${unknownRefresh}&x=1` });
        log.write({ severity: "ERROR", message: "json", body: { refresh_token: unknownRefresh } });
        log.write({ severity: "ERROR", message: `redirect https://localhost/oauth?code=${unknownCode}&state=1` });
        expect(lines.every((line) => JSON.parse(line).severity === "ERROR")).toBe(true);
        expectNoSecrets(lines, [known, unknownRefresh, unknownCode]);
    });

    it("ignores very short values so ordinary words survive", () => {
        const redactor = new Redactor();
        redactor.add("ok");
        expect(redactor.scrub("ok fine")).toBe("ok fine");
    });
});
