// Every answer shape the portal gives, judged without a server.
import { describe, expect, it } from "vitest";
import { classifyRestAnswer, parseRetryAfter } from "../../consumer/rest-answer";

const body = (value: unknown) => JSON.stringify(value);

describe("classifyRestAnswer", () => {
    it.each([
        ["a result", 200, body({ result: { ID: "1" }, time: {} }), { kind: "ok" }],
        ["a list page", 200, body({ result: [], next: 50, total: 120 }), { kind: "ok" }],
        ["expired_token", 401, body({ error: "expired_token", error_description: "The access token provided has expired." }), { kind: "auth", code: "expired_token" }],
        ["invalid_token", 401, body({ error: "invalid_token" }), { kind: "auth", code: "invalid_token" }],
        ["NO_AUTH_FOUND", 401, body({ error: "NO_AUTH_FOUND", error_description: "Wrong authorization data" }), { kind: "auth", code: "NO_AUTH_FOUND" }],
        ["QUERY_LIMIT_EXCEEDED", 503, body({ error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" }), { kind: "rate_limited", code: "QUERY_LIMIT_EXCEEDED" }],
        ["OPERATION_TIME_LIMIT", 429, body({ error: "OPERATION_TIME_LIMIT" }), { kind: "rate_limited", code: "OPERATION_TIME_LIMIT" }],
        ["a bare 429", 429, "Too Many Requests", { kind: "rate_limited", code: "HTTP_429" }],
        ["an error with HTTP 200", 200, body({ error: "ACCESS_DENIED", error_description: "Access denied" }), { kind: "error", code: "ACCESS_DENIED", status: 200 }],
        ["a method error", 400, body({ error: "ERROR_METHOD_NOT_FOUND" }), { kind: "error", code: "ERROR_METHOD_NOT_FOUND" }],
        ["an HTML 502", 502, "<html>502 Bad Gateway</html>", { kind: "bad_answer", code: "http_502" }],
        ["a 503 page without a code (not the rate limit: not retried)", 503, "<html>busy</html>", { kind: "bad_answer", code: "http_503" }],
        ["a redirect", 302, "", { kind: "bad_answer", code: "http_302" }],
        ["200 without a result", 200, body({ nothing: true }), { kind: "bad_answer", code: "bad_response" }],
        ["200 with a cut-off body", 200, '{"result":{"ID"', { kind: "bad_answer", code: "bad_response" }],
    ])("%s", (_name, status, text, expected) => {
        expect(classifyRestAnswer({ status, body: text })).toMatchObject(expected);
    });

    it("carries Retry-After to the rate-limit outcome", () => {
        expect(classifyRestAnswer({ status: 503, body: body({ error: "QUERY_LIMIT_EXCEEDED" }), retryAfterMs: 2000 })).toMatchObject({ retryAfterMs: 2000 });
    });
});

describe("parseRetryAfter", () => {
    it("reads delta-seconds and HTTP dates, and ignores junk", () => {
        expect(parseRetryAfter("3", 0)).toBe(3000);
        expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
        expect(parseRetryAfter("soon", 0)).toBeUndefined();
        expect(parseRetryAfter(undefined, 0)).toBeUndefined();
    });
});
