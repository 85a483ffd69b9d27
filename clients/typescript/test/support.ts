/**
 * What the tests share: a real `tooken serve` on a fresh SQLite file, a
 * proxy in front of it that can answer or stall a request on demand, and
 * a Node HTTP server for fetch-style apps (Hono).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** `TOOKEN_BIN`, else the workspace's debug build. */
export function tookenBin(): string {
  const fromEnv = process.env.TOOKEN_BIN;
  if (fromEnv) return fromEnv;
  // test-build/support.js → the repository root is three levels up.
  const debug = fileURLToPath(new URL("../../../target/debug/tooken", import.meta.url));
  if (existsSync(debug)) return debug;
  throw new Error(`no tooken binary: set TOOKEN_BIN or run cargo build (looked for ${debug})`);
}

export interface Server {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The first live API key it printed. */
  apiKey: string;
  /** What it logged so far (stderr). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts `tooken serve` on port 0 and a fresh SQLite file, and waits until
 * it has printed its first API key and where it listens. Failed
 * authentications are not throttled unless `args` say otherwise.
 */
export async function startServer(args: string[] = []): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "tooken-ts-"));
  const defaults: string[] = [];
  for (const flag of ["--auth-slow-after", "--auth-block-after"]) {
    if (!args.includes(flag)) defaults.push(flag, "100000");
  }
  const env = { ...process.env };
  for (const name of ["TOOKEN_DATABASE_URL", "TOOKEN_LISTEN", "TOOKEN_API_KEY", "TOOKEN_CONFIG", "TOOKEN_URL"]) {
    delete env[name];
  }
  const child: ChildProcess = spawn(
    tookenBin(),
    ["serve", "--listen", "127.0.0.1:0", "--database", `sqlite://${join(dir, "tooken.db")}`, ...defaults, ...args],
    { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = new Promise<{ url: string; apiKey: string }>((resolve, reject) => {
    let url: string | undefined;
    let apiKey: string | undefined;
    const check = () => {
      if (url !== undefined && apiKey !== undefined) resolve({ url, apiKey });
    };
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      apiKey ??= /^\s+(tok_live_[0-9A-Za-z]{36})\s*$/m.exec(stdout)?.[1];
      check();
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      const address = /tooken is listening.*address=(\S+)/.exec(stderr)?.[1];
      if (address !== undefined) url ??= `http://${address}`;
      check();
    });
    child.once("exit", (code) => reject(new Error(`tooken serve exited (${code}) before it was ready:\n${stderr}`)));
    child.once("error", reject);
  });
  const timeout = new Promise<never>((_, reject) => {
    const t = setTimeout(() => reject(new Error(`tooken serve was not ready within 60 s:\n${stderr}`)), 60_000);
    t.unref();
  });
  let started: { url: string; apiKey: string };
  try {
    started = await Promise.race([ready, timeout]);
  } catch (e) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...started,
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An answer the proxy gives instead of forwarding. */
export interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface Proxy {
  url: string;
  /** Every request that reached the proxy: method, path and user agent. */
  requests: { method: string; path: string; userAgent: string | undefined }[];
  /** The next requests get these answers instead of reaching the server. */
  answerNext(...faults: Fault[]): void;
  /** The next `n` requests get no answer at all (the connection stays open). */
  stallNext(n: number): void;
  close(): Promise<void>;
}

/** A proxy in front of `target` that forwards everything, except what it is told to answer or stall. */
export async function startProxy(target: string): Promise<Proxy> {
  const plan: (Fault | "stall")[] = [];
  const requests: Proxy["requests"] = [];
  const stalled = new Set<http.ServerResponse>();
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method!, path: req.url!, userAgent: req.headers["user-agent"] });
    const step = plan.shift();
    if (step === "stall") {
      stalled.add(res);
      req.resume();
      return;
    }
    if (step !== undefined) {
      req.resume();
      res.writeHead(step.status, { "content-type": "application/json", ...step.headers });
      res.end(step.body ?? "");
      return;
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answerNext: (...faults) => plan.push(...faults),
    stallNext: (n) => {
      for (let i = 0; i < n; i++) plan.push("stall");
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An address where nothing listens (a port just closed). */
export async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** Listens on port 0 with a Node request handler (an Express app). */
export async function listen(handler: http.RequestListener): Promise<Listening> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Serves a fetch-style app (`app.fetch(request, env)`, as Hono's) on port
 * 0, passing `{ incoming, outgoing }` as its env the way
 * `@hono/node-server` does.
 */
export function serveFetch(
  fetchApp: (request: Request, env: { incoming: http.IncomingMessage; outgoing: http.ServerResponse }) => Response | Promise<Response>,
): Promise<Listening> {
  return listen(async (req, res) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of [value ?? []].flat()) headers.append(name, v);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const hasBody = req.method !== "GET" && req.method !== "HEAD" && chunks.length > 0;
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const response = await fetchApp(request, { incoming: req, outgoing: res });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
}

/** A `fetch` that counts the calls it passes on. */
export function countingFetch(): { fetch: typeof fetch; calls: () => number } {
  let n = 0;
  return {
    fetch: (input, init) => {
      n++;
      return fetch(input, init);
    },
    calls: () => n,
  };
}

/** A controllable wall and monotonic clock. */
export class TestClock {
  wall = Date.now();
  mono = 0;
  now = () => this.wall;
  monotonic = () => this.mono;
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}
