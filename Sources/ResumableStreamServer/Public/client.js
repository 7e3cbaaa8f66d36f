// A browser client for resumable streams: no dependencies, no build step.
//
//   import { createStream, followStream } from "/client.js";
//   const stream = createStream("/streams/chat-42", { body: { source: "llm", parameters: { prompt } } });
//   for await (const chunk of stream) output.append(chunk.data);
//   const end = await stream.end;   // { status: "completed", offset: 1234 }
//
// EventSource reconnects by itself, but it can only GET: a chat application that creates its stream
// with the prompt in a POST needs this instead. The stream is created with a POST whose
// Server-Sent Events body is read as it arrives; when that connection breaks (a network error, or
// the body ends without the `end` event), the client asks again with `GET` and `Last-Event-ID`, the
// id of the last whole event it got, and goes on from there with no gap and no duplicate, on
// whichever instance answers. It waits before each attempt (the server's `retry:`, doubled after
// each attempt that brought nothing, capped, with jitter) until the `end` event comes. An answer
// that retrying cannot change (a 404, a 409, any other 4xx with its JSON error) ends it with a
// `StreamError`; a 502, 503, 504 or a network error is retried.

/** How a stream stands: the first three while it runs, the others once it is over. */
export const StreamState = Object.freeze({
    connecting: "connecting",
    open: "open",
    reconnecting: "reconnecting",
    completed: "completed",
    cancelled: "cancelled",
    failed: "failed",
    error: "error",
    closed: "closed",
});

const ENDED = new Set([StreamState.completed, StreamState.cancelled, StreamState.failed, StreamState.error, StreamState.closed]);
/** Answers that may change if asked again: a timeout, too many requests, a server or proxy in trouble. */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** A stream that ended without its `end` event: a refusal (`status`, and the server's JSON error as `body`), or gave up. */
export class StreamError extends Error {
    constructor(message, { status = 0, body = null, cause } = {}) {
        super(message, cause === undefined ? undefined : { cause });
        this.name = "StreamError";
        /** The HTTP status, 0 when there was no answer. */
        this.status = status;
        /** The JSON error body (`{"error": "<code>", "message": ...}`), or null. */
        this.body = body;
        /** The body's `error` code, such as "stream_not_found", or null. */
        this.code = body && typeof body.error === "string" ? body.error : null;
    }
}

/**
 * Creates a stream with a POST and reads it to its end, resuming with GET and Last-Event-ID when
 * the connection breaks. `body` is sent as JSON unless it is a string.
 */
export function createStream(url, options = {}) {
    return new ResumableStream(url, { ...options, create: true });
}

/** Follows an existing stream from `lastEventId` (the start without one), resuming the same way. */
export function followStream(url, options = {}) {
    return new ResumableStream(url, { ...options, create: false });
}

/**
 * One stream, read across as many connections as it takes. An async iterable of its chunks,
 * `{id, data}` (iterate it once; chunks wait until they are iterated; leaving the loop early
 * closes the stream), and an `EventTarget` with these events, each a `CustomEvent`:
 * `open` ({method, status, lastEventId}), `chunk` ({id, data}), `reconnect` ({attempt, delay,
 * lastEventId, reason}), `state` ({state}), `end` (the end event's JSON) and `error` (a StreamError).
 *
 * Options: `headers` (an object, a `Headers`, or a function, possibly async, that returns one: it
 * is called for every connection, so a token can be renewed), `signal` (aborting it closes the
 * stream), `body` (createStream), `lastEventId` (followStream), `retryDelay` (the first wait, 1000
 * ms until the server's `retry:` says otherwise), `maxRetryDelay` (30000 ms), `maxRetries` (attempts
 * in a row that bring nothing before it gives up; unlimited by default), `credentials` (fetch's).
 */
export class ResumableStream extends EventTarget {
    #url;
    #body;
    #headers;
    #credentials;
    #maxRetryDelay;
    #maxRetries;
    #retryDelay;
    /** "POST" until the stream is known to exist, then "GET". */
    #method;
    /** A POST was sent and no answer came: whether it created the stream is not known. */
    #unsure = false;
    /** The connection of the moment: aborted to drop it (interrupt) or to stop (close). */
    #connection = null;
    #interrupted = false;
    #closed = false;
    #queue = [];
    #waiters = [];
    #iterating = false;
    #resolveEnd;
    #rejectEnd;

    constructor(url, { create = false, body, headers, signal, lastEventId = "", credentials = "same-origin", retryDelay = 1000, maxRetryDelay = 30_000, maxRetries = Infinity } = {}) {
        super();
        this.#url = String(url);
        this.#body = body === undefined || typeof body === "string" || body instanceof Blob || body instanceof FormData ? body : JSON.stringify(body);
        this.#headers = headers;
        this.#credentials = credentials;
        this.#retryDelay = retryDelay;
        this.#maxRetryDelay = maxRetryDelay;
        this.#maxRetries = maxRetries;
        this.#method = create ? "POST" : "GET";
        /** The id of the last whole event: where a resume starts. */
        this.lastEventId = String(lastEventId);
        /** The chunks' data so far, joined. */
        this.text = "";
        /** Chunks received, on every connection. */
        this.chunks = 0;
        /** Responses that began a body (the first and each resume). */
        this.connections = 0;
        this.state = StreamState.connecting;
        /** Resolves to the `end` event's JSON (completed, cancelled or failed); rejects with a StreamError, or an AbortError when closed first. */
        this.end = new Promise((resolve, reject) => {
            this.#resolveEnd = resolve;
            this.#rejectEnd = reject;
        });
        // Marked as handled: a caller that only iterates, or only listens, gets no unhandled rejection.
        this.end.catch(() => {});
        if (signal) {
            if (signal.aborted) {
                queueMicrotask(() => this.close(signal.reason));
            } else {
                signal.addEventListener("abort", () => this.close(signal.reason), { once: true });
            }
        }
        if (!signal?.aborted) {
            // A fault of this client's own ends the stream too, rather than leave it waiting.
            this.#run().catch((error) => this.#fail(new StreamError(`the client failed: ${error.message}`, { cause: error })));
        }
    }

    get url() {
        return this.#url;
    }

    /** Drops the current connection as a network failure would: the stream resumes by itself. */
    interrupt() {
        if (ENDED.has(this.state) || !this.#connection || this.#connection.signal.aborted) return false;
        this.#interrupted = true;
        this.#connection.abort(new DOMException("the connection was interrupted", "AbortError"));
        return true;
    }

    /** Stops reading for good (the stream itself goes on on the server; DELETE cancels it). */
    close(reason = new DOMException("the stream was closed", "AbortError")) {
        if (ENDED.has(this.state)) return;
        this.#closed = true;
        this.#connection?.abort(reason);
        this.#finish(StreamState.closed, { error: reason });
    }

    [Symbol.asyncIterator]() {
        if (this.#iterating) throw new TypeError("a ResumableStream can be iterated once");
        this.#iterating = true;
        return {
            next: () => {
                if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift(), done: false });
                if (this.state === StreamState.error) return Promise.reject(this.error);
                if (ENDED.has(this.state)) return Promise.resolve({ value: undefined, done: true });
                return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
            },
            return: () => {
                this.close();
                return Promise.resolve({ value: undefined, done: true });
            },
            [Symbol.asyncIterator]() {
                return this;
            },
        };
    }

    async #run() {
        // Attempts in a row that brought no chunk: what the wait before the next one grows with.
        let failures = 0;
        while (!ENDED.has(this.state)) {
            const outcome = await this.#connect();
            if (ENDED.has(this.state)) return;
            if (outcome.progress) failures = 0;
            if (outcome.again) continue;
            failures += 1;
            if (failures > this.#maxRetries) {
                this.#fail(new StreamError(`gave up after ${failures} attempts: ${outcome.reason}`, { status: outcome.status ?? 0 }));
                return;
            }
            const delay = this.#backoff(failures, outcome.retryAfter);
            this.#setState(StreamState.reconnecting);
            this.#emit("reconnect", { attempt: failures, delay, lastEventId: this.lastEventId, reason: outcome.reason });
            if (!(await this.#sleep(delay))) return;
        }
    }

    /**
     * One request and, if it is answered with the stream, its body to the end. Returns how it went:
     * `progress` (it brought chunks), `again` (ask again at once, another way), else a retry with
     * its `reason`, and `retryAfter` (ms) when the server said.
     */
    async #connect() {
        const connection = new AbortController();
        this.#connection = connection;
        this.#interrupted = false;
        const method = this.#method;
        let progress = false;
        let headers;
        try {
            headers = new Headers(typeof this.#headers === "function" ? await this.#headers() : this.#headers);
        } catch (error) {
            this.#fail(new StreamError(`the headers could not be made: ${error.message}`, { cause: error }));
            return {};
        }
        headers.set("Accept", "text/event-stream");
        if (method === "POST" && typeof this.#body === "string" && !headers.has("Content-Type")) {
            headers.set("Content-Type", "application/json");
        }
        if (method === "GET" && this.lastEventId !== "") headers.set("Last-Event-ID", this.lastEventId);
        if (this.#closed) return {};
        let response;
        try {
            response = await fetch(this.#url, {
                method,
                headers,
                body: method === "POST" ? this.#body : undefined,
                cache: "no-store",
                credentials: this.#credentials,
                signal: connection.signal,
            });
        } catch (error) {
            if (this.#closed) return {};
            // A POST whose answer never came may still have created the stream: ask for it.
            if (method === "POST") {
                this.#unsure = true;
                this.#method = "GET";
            }
            return { reason: this.#interrupted ? "interrupted" : `no answer: ${error.message}` };
        }

        if (response.status !== 200) return this.#refused(response, method);
        if (!/^text\/event-stream\b/i.test(response.headers.get("Content-Type") ?? "")) {
            connection.abort();
            this.#fail(new StreamError(`${method} ${this.#url}: 200 but ${response.headers.get("Content-Type")}, not text/event-stream`, { status: 200 }));
            return {};
        }
        this.#method = "GET";
        this.#unsure = false;
        this.connections += 1;
        this.#setState(StreamState.open);
        this.#emit("open", { method, status: response.status, lastEventId: method === "GET" ? this.lastEventId : "" });

        const parser = new EventStreamParser({
            onEvent: (event) => {
                if (event.id !== undefined) this.lastEventId = event.id;
                if (event.data === undefined) return;
                if (event.event === "end") {
                    this.#ended(event.data);
                } else if (event.event === "message") {
                    progress = true;
                    this.#chunk({ id: this.lastEventId, data: event.data });
                }
            },
            onRetry: (milliseconds) => {
                this.#retryDelay = milliseconds;
            },
        });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        try {
            while (!ENDED.has(this.state)) {
                const { value, done } = await reader.read();
                if (done) break;
                parser.push(decoder.decode(value, { stream: true }));
            }
        } catch (error) {
            if (this.#closed) return {};
            return { progress, reason: this.#interrupted ? "interrupted" : `the connection broke: ${error.message}` };
        } finally {
            if (ENDED.has(this.state)) reader.cancel().catch(() => {});
        }
        return { progress, reason: "the response ended before its end event" };
    }

    /** A status other than 200: asked again (now or later), or the end with a StreamError. */
    async #refused(response, method) {
        const text = await response.text().catch(() => "");
        let body = null;
        try {
            body = JSON.parse(text);
        } catch {
            // Not JSON (a proxy's own error page): the status says it all.
        }
        const status = response.status;
        if (this.#unsure && method === "GET" && status === 404) {
            // The POST that got no answer did not create the stream: send it again.
            this.#method = "POST";
            return { reason: "the stream was not created", status };
        }
        if (this.#unsure && method === "POST" && status === 409) {
            // It did, after all: read it.
            this.#method = "GET";
            return { again: true };
        }
        if (RETRYABLE_STATUSES.has(status)) {
            const seconds = Number(response.headers.get("Retry-After"));
            return {
                reason: `${status}${body?.error ? ` ${body.error}` : ""}`,
                status,
                retryAfter: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
            };
        }
        const message = body?.message ?? (text || response.statusText);
        this.#fail(new StreamError(`${method} ${this.#url}: ${status}${body?.error ? ` ${body.error}` : ""}: ${message}`, { status, body }));
        return {};
    }

    /** The wait before attempt `failures`: the retry delay doubled per failure, capped, the upper half jittered. */
    #backoff(failures, retryAfter) {
        const ceiling = Math.min(this.#maxRetryDelay, this.#retryDelay * 2 ** Math.min(failures - 1, 20));
        const delay = ceiling / 2 + Math.random() * (ceiling / 2);
        return retryAfter === undefined ? delay : Math.max(delay, Math.min(retryAfter, this.#maxRetryDelay));
    }

    /** Resolves true after `milliseconds`, or false at once when the stream is closed meanwhile. */
    #sleep(milliseconds) {
        return new Promise((resolve) => {
            const timer = setTimeout(() => {
                this.removeEventListener("state", onState);
                resolve(!this.#closed);
            }, milliseconds);
            const onState = () => {
                if (!ENDED.has(this.state)) return;
                clearTimeout(timer);
                this.removeEventListener("state", onState);
                resolve(false);
            };
            this.addEventListener("state", onState);
        });
    }

    #chunk(chunk) {
        this.text += chunk.data;
        this.chunks += 1;
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve({ value: chunk, done: false });
        else this.#queue.push(chunk);
        this.#emit("chunk", chunk);
    }

    #ended(data) {
        let end;
        try {
            end = JSON.parse(data);
        } catch {
            end = { status: StreamState.failed, error: "unreadable_end", message: data };
        }
        const state = [StreamState.completed, StreamState.cancelled].includes(end.status) ? end.status : StreamState.failed;
        this.#finish(state, { end });
    }

    #fail(error) {
        this.#finish(StreamState.error, { error });
    }

    #finish(state, { end, error }) {
        if (ENDED.has(this.state)) return;
        if (error) {
            this.error = error;
            this.#rejectEnd(error);
        } else {
            this.#resolveEnd(end);
        }
        this.#setState(state);
        const waiters = this.#waiters.splice(0);
        for (const waiter of waiters) {
            if (state === StreamState.error) waiter.reject(error);
            else waiter.resolve({ value: undefined, done: true });
        }
        if (end) this.#emit("end", end);
        if (state === StreamState.error) this.#emit("error", error);
    }

    #setState(state) {
        if (this.state === state) return;
        this.state = state;
        this.#emit("state", { state });
    }

    #emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }
}

/**
 * The Server-Sent Events format, fed text as it arrives: lines end with LF, CR or CRLF (also when
 * a CRLF is split between two pieces); `data:` lines join with LF; `id:`, `event:` and `retry:` as
 * the HTML standard reads them; comments are skipped. `onEvent` gets {id, event, data} for each
 * block that ends with a blank line (`id` and `data` undefined when the block had none); a block
 * cut short is never reported.
 */
export class EventStreamParser {
    #pending = "";
    #skipLineFeed = false;
    #data = [];
    #event = "";
    #id = undefined;

    constructor({ onEvent, onRetry = () => {}, onComment = () => {} }) {
        this.onEvent = onEvent;
        this.onRetry = onRetry;
        this.onComment = onComment;
    }

    push(text) {
        let start = 0;
        if (this.#skipLineFeed && text.length > 0) {
            if (text.charCodeAt(0) === 10) start = 1;
            this.#skipLineFeed = false;
        }
        for (let index = start; index < text.length; index += 1) {
            const code = text.charCodeAt(index);
            if (code !== 10 && code !== 13) continue;
            const line = this.#pending + text.slice(start, index);
            this.#pending = "";
            if (code === 13) {
                if (index + 1 === text.length) this.#skipLineFeed = true;
                else if (text.charCodeAt(index + 1) === 10) index += 1;
            }
            start = index + 1;
            this.#line(line);
        }
        this.#pending += text.slice(start);
    }

    #line(line) {
        if (line === "") {
            this.#dispatch();
            return;
        }
        if (line.charCodeAt(0) === 58) {
            this.onComment(line.slice(1).replace(/^ /, ""));
            return;
        }
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.charCodeAt(0) === 32) value = value.slice(1);
        switch (field) {
            case "data":
                this.#data.push(value);
                break;
            case "event":
                this.#event = value;
                break;
            case "id":
                if (!value.includes("\0")) this.#id = value;
                break;
            case "retry":
                if (/^\d+$/.test(value)) this.onRetry(Number(value));
                break;
            default:
                break;
        }
    }

    #dispatch() {
        const event = { id: this.#id, event: this.#event || "message", data: this.#data.length > 0 ? this.#data.join("\n") : undefined };
        this.#data = [];
        this.#event = "";
        this.#id = undefined;
        if (event.id !== undefined || event.data !== undefined) this.onEvent(event);
    }
}
