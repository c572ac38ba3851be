// Refuses every outgoing TCP connection that is not to loopback, in the test process and (via
// NODE_OPTIONS=--require) in every child process a test starts. Tests may only ever contact
// 127.0.0.1; a library that quietly phones home (for example a metadata-server probe) fails loudly.
"use strict";
const net = require("node:net");

const isLoopback = (host) =>
    host === undefined || host === "" || host === "localhost" || /^127\./.test(host) || host === "::1" || host === "[::1]" || host === "::ffff:127.0.0.1";

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
    let options = Array.isArray(args[0]) ? args[0][0] : args[0];
    let host;
    let port;
    if (options && typeof options === "object") {
        if (options.path) return connect.apply(this, args);
        host = options.host ?? options.hostname;
        port = options.port;
    } else if (typeof options === "number" || (typeof options === "string" && /^\d+$/.test(options))) {
        port = options;
        host = typeof args[1] === "string" ? args[1] : undefined;
    } else {
        return connect.apply(this, args); // a Unix socket path
    }
    if (!isLoopback(host)) {
        const message = `loopback guard: blocked a connection to ${host}:${port}; tests may only contact 127.0.0.1`;
        (globalThis.__loopbackViolations ??= []).push(`${host}:${port}`);
        process.stderr.write(message + "\n");
        throw new Error(message);
    }
    return connect.apply(this, args);
};
