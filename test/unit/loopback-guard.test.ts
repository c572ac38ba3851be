import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";

const violations = () => ((globalThis as { __loopbackViolations?: string[] }).__loopbackViolations ??= []);

describe("the loopback guard installed for every test", () => {
    afterEach(() => {
        violations().length = 0; // these attempts were on purpose
    });

    it("refuses a connection beyond loopback before any packet is sent", () => {
        expect(() => net.connect({ host: "metadata.google.internal", port: 80 })).toThrow(/loopback guard/);
        expect(violations()).toEqual(["metadata.google.internal:80"]);
    });

    it("lets loopback through", async () => {
        const server = net.createServer((socket) => socket.end());
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const { port } = server.address() as net.AddressInfo;
        await new Promise<void>((resolve, reject) => net.connect({ host: "127.0.0.1", port }).once("connect", resolve).once("error", reject));
        server.close();
        expect(violations()).toEqual([]);
    });
});
