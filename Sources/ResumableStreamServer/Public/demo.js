// The demo page: a stream created with a POST, a follower beside it, both read by /client.js. Every
// element the page changes has an id or a data-field, which the browser tests query too.
import { createStream, followStream, StreamState } from "/client.js";

const $ = (selector, root = document) => root.querySelector(selector);
const RUNNING = [StreamState.connecting, StreamState.open, StreamState.reconnecting];

const form = $("#start-form");
const idInput = $("#stream-id");
const countInput = $("#count");
const intervalInput = $("#interval");
const tokenInput = $("#token");
const currentId = $("#current-id");
const serverState = $("#server-state");
const refreshButton = $("#refresh-state");
const followButton = $("#follow");
const cancelButton = $("#cancel");
const history = $("#history");

/** The stream on show: its id, URL, the time it started, and its history row. */
let current = null;

function newStreamId() {
    const bytes = crypto.getRandomValues(new Uint8Array(4));
    return "demo-" + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function authorization() {
    const token = tokenInput.value.trim();
    return token ? { Authorization: `Bearer ${token}` } : {};
}

function streamURL(id) {
    return `/streams/${encodeURIComponent(id)}`;
}

function setBadge(element, state, text = state) {
    element.dataset.state = state;
    element.textContent = text;
}

/** The badge word for a client's state: a live connection says live. */
function stateWord(state) {
    return state === StreamState.open ? "live" : state;
}

/** One column: a connection to the stream, its text built of one span per chunk. */
class Pane {
    constructor(element) {
        this.element = element;
        element.append($("#pane-template").content.cloneNode(true));
        $("[data-field=title]", element).textContent = element.dataset.title;
        $("[data-field=route]", element).textContent = element.dataset.route;
        $(".placeholder", element).textContent = element.dataset.placeholder;
        this.fields = {};
        for (const field of element.querySelectorAll("[data-field]")) this.fields[field.dataset.field] = field;
        this.cutButton = $("[data-action=cut]", element);
        this.cutButton.addEventListener("click", () => this.cut());
        this.placeholder = $(".placeholder", this.fields.text)?.cloneNode(true);
        this.stream = null;
    }

    reset() {
        this.stream?.close();
        this.started = performance.now();
        this.stream = null;
        this.offset = 0;
        this.received = 0;
        this.resumes = 0;
        this.resumedAt = undefined;
        this.problems = 0;
        this.fields.text.replaceChildren(this.placeholder.cloneNode(true));
        this.fields.log.replaceChildren();
        this.fields.offset.textContent = "–";
        this.fields.chunks.textContent = "0";
        this.fields.resumes.textContent = "0";
        this.fields.integrity.textContent = "–";
        delete this.fields.integrity.dataset.ok;
        this.show("idle");
    }

    /** Reads `stream` into the pane until its end. */
    async read(stream, startOffset = 0) {
        this.reset();
        this.stream = stream;
        this.offset = startOffset;
        this.fields.text.replaceChildren();
        this.fields.integrity.textContent = "0 / 0";
        this.fields.integrity.dataset.ok = "true";
        this.show(stream.state);
        stream.addEventListener("state", (event) => {
            if (this.stream === stream) this.show(event.detail.state);
        });
        stream.addEventListener("open", (event) => {
            if (this.stream !== stream) return;
            const { method, status, lastEventId } = event.detail;
            const from = method === "GET" ? (lastEventId ? `Last-Event-ID: ${lastEventId}` : "from the start") : "creating it";
            this.log(`${method} ${status}, ${from}`, method === "GET" && lastEventId ? "resume" : "open");
            if (method === "GET" && lastEventId) {
                this.resumes += 1;
                this.fields.resumes.textContent = String(this.resumes);
                // Shown before the next chunk, which the loop below may not have taken yet.
                this.resumedAt = lastEventId;
            }
        });
        stream.addEventListener("reconnect", (event) => {
            if (this.stream !== stream) return;
            const { delay, reason, lastEventId } = event.detail;
            this.log(`resuming from ${lastEventId || "the start"} in ${(delay / 1000).toFixed(2)} s (${reason})`, "wait");
        });
        try {
            for await (const chunk of stream) {
                if (this.stream !== stream) return;
                this.append(chunk);
            }
            const end = await stream.end;
            if (this.stream !== stream) return;
            this.markResume();
            const detail = end.status === "failed" ? `${end.error ?? "failed"}${end.message ? `: ${end.message}` : ""}` : `at ${end.offset ?? this.offset}`;
            this.log(`end: ${end.status} ${detail}`, end.status);
        } catch (error) {
            if (this.stream !== stream) return;
            this.log(error.message, "error");
        }
        this.show(stream.state);
        return stream.state;
    }

    append(chunk) {
        // Each id is the offset after its chunk: the one before plus the chunk's length, in
        // UTF-16 code units, which is what a JavaScript string's length counts.
        const id = Number(chunk.id);
        if (id !== this.offset + chunk.data.length) {
            this.problems += 1;
            this.fields.integrity.dataset.ok = "false";
            this.log(`id ${chunk.id} after ${this.offset} for ${chunk.data.length} units: ${id > this.offset + chunk.data.length ? "a gap" : "a duplicate"}`, "error");
        }
        // A chunk of the connection before may still be on its way to this loop.
        if (this.offset >= Number(this.resumedAt)) this.markResume();
        this.offset = id;
        const span = document.createElement("span");
        span.dataset.id = chunk.id;
        span.textContent = chunk.data;
        const text = this.fields.text;
        const atBottom = text.scrollHeight - text.scrollTop - text.clientHeight < 24;
        text.append(span);
        if (atBottom) text.scrollTop = text.scrollHeight;
        this.fields.offset.textContent = chunk.id;
        this.received += 1;
        this.fields.chunks.textContent = String(this.received);
        this.fields.integrity.textContent = this.problems === 0 ? "0 / 0" : `${this.problems}`;
    }

    /** The place in the text where a resume began, marked with the Last-Event-ID it sent. */
    markResume() {
        if (this.resumedAt === undefined) return;
        const mark = document.createElement("span");
        mark.className = "resume-mark";
        mark.dataset.resumedAt = this.resumedAt;
        mark.title = `resumed with Last-Event-ID: ${this.resumedAt}`;
        mark.textContent = `↻ ${this.resumedAt}`;
        this.fields.text.append(mark);
        this.resumedAt = undefined;
    }

    cut() {
        if (!this.stream?.interrupt()) return;
        this.log(`connection cut at Last-Event-ID ${this.stream.lastEventId || "(none)"}`, "cut");
    }

    show(state) {
        this.element.dataset.state = state;
        setBadge(this.fields.state, state, stateWord(state));
        this.cutButton.disabled = this.stream === null || state !== StreamState.open;
    }

    log(message, kind) {
        const item = document.createElement("li");
        item.dataset.kind = kind;
        const time = document.createElement("time");
        time.textContent = `+${((performance.now() - this.started) / 1000).toFixed(2)} s`;
        item.append(time, " ", message);
        this.fields.log.append(item);
        this.fields.log.scrollTop = this.fields.log.scrollHeight;
    }
}

const creator = new Pane($("[data-pane=creator]"));
const follower = new Pane($("[data-pane=follower]"));

async function refreshServerState() {
    if (!current) return;
    const { id, url } = current;
    try {
        const response = await fetch(url, { method: "HEAD", cache: "no-store", headers: authorization() });
        if (current?.id !== id) return;
        const state = response.headers.get("Stream-State") ?? `${response.status}`;
        setBadge(serverState, state);
        current.row.cells[4].textContent = state;
    } catch (error) {
        setBadge(serverState, "error", "unreachable");
    }
}

const sleep = (milliseconds) => new Promise((resolve) => setTimeout(resolve, milliseconds));

/**
 * HEAD a second apart while the stream runs, from its first answer on, then every two seconds
 * until the server settles: finished or failed, or none for a stream that is over here too.
 */
async function watchServerState(stream) {
    await new Promise((resolve) => {
        const answered = () => {
            if (stream.state === StreamState.connecting) return;
            stream.removeEventListener("state", answered);
            resolve();
        };
        stream.addEventListener("state", answered);
        answered();
    });
    while (current?.stream === stream) {
        await refreshServerState();
        const state = serverState.dataset.state;
        const over = !RUNNING.includes(stream.state);
        if (state === "finished" || state === "failed" || (state === "none" && over)) return;
        await sleep(over ? 2000 : 1000);
    }
}

function addHistoryRow(id, count) {
    $(".empty", history)?.remove();
    const row = history.insertRow(0);
    for (const text of [id, String(count), "connecting", "0", "…"]) row.insertCell().textContent = text;
    row.cells[0].className = "mono";
    return row;
}

function start(event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const id = idInput.value.trim();
    const count = Number(countInput.value);
    const intervalMs = Number(intervalInput.value);
    const url = streamURL(id);
    follower.reset();
    const stream = createStream(url, {
        body: { source: "demo", parameters: { count, intervalMs } },
        headers: authorization,
    });
    current = { id, url, stream, row: addHistoryRow(id, count) };
    const row = current.row;
    currentId.textContent = id;
    setBadge(serverState, "none");
    followButton.disabled = false;
    cancelButton.disabled = false;
    refreshButton.disabled = false;
    stream.addEventListener("state", (change) => {
        row.cells[2].textContent = stateWord(change.detail.state);
        row.cells[2].dataset.state = change.detail.state;
    });
    stream.addEventListener("open", () => {
        row.cells[3].textContent = String(Math.max(stream.connections - 1, 0));
    });
    creator.read(stream);
    watchServerState(stream);
    idInput.value = newStreamId();
}

function follow() {
    if (!current) return;
    follower.read(followStream(current.url, { headers: authorization }));
}

async function cancel() {
    if (!current) return;
    const { url } = current;
    try {
        const response = await fetch(url, { method: "DELETE", headers: authorization() });
        const body = await response.text();
        creator.log(`DELETE ${response.status}${response.ok ? "" : `: ${body}`}`, response.ok ? "cancelled" : "error");
    } catch (error) {
        creator.log(`DELETE failed: ${error.message}`, "error");
    }
    refreshServerState();
}

idInput.value = newStreamId();
form.addEventListener("submit", start);
followButton.addEventListener("click", follow);
cancelButton.addEventListener("click", cancel);
refreshButton.addEventListener("click", refreshServerState);
creator.reset();
follower.reset();
document.documentElement.dataset.ready = "true";
