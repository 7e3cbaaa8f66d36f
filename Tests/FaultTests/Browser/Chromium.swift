import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium, driven over the DevTools protocol on a pipe: `--remote-debugging-pipe`
/// reads commands from its descriptor 3 and writes replies and events to its descriptor 4.
enum Chromium {
    static func executable() throws -> String {
        try Programs.find("chromium", fallbacks: ["/usr/bin/chromium"])
    }

    /// Starts a browser, opens one page of `width` × `height` CSS pixels, and runs `body` with it.
    /// The browser is asked to close afterwards; the harness kills it and its processes in any case.
    static func withPage<Result: Sendable>(
        _ harness: FaultHarness,
        width: Int = 1280,
        height: Int = 1000,
        _ body: (BrowserPage) async throws -> Result
    ) async throws -> Result {
        let executable = try Self.executable()
        let toBrowser = try pipeClosingOnExec()
        let fromBrowser: [CInt]
        do {
            fromBrowser = try pipeClosingOnExec()
        } catch {
            toBrowser.forEach { close($0) }
            throw error
        }
        let process: ChildProcess
        do {
            process = try harness.spawn(
                "chromium", logName: "chromium", executable: executable,
                arguments: [
                    "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                    "--user-data-dir=\(harness.directory.appendingPathComponent("chromium-profile").path)",
                    "--window-size=\(width),\(height)", "about:blank",
                ],
                descriptors: [toBrowser[0], fromBrowser[1]],
                leadsGroup: true
            )
        } catch {
            (toBrowser + fromBrowser).forEach { close($0) }
            throw error
        }
        // The browser's ends, which only it holds now: its exit is then the pipe's end.
        close(toBrowser[0])
        close(fromBrowser[1])
        return try await DevToolsConnection.with(input: fromBrowser[0], output: toBrowser[1]) { connection in
            let page = try await BrowserPage.open(connection, width: width, height: height)
            let result: Result
            do {
                result = try await body(page)
            } catch {
                let console = connection.console
                if !console.isEmpty { print("──── the browser's console:\n\(console.suffix(40).joined(separator: "\n"))") }
                throw error
            }
            _ = try? await connection.send("Browser.close", timeout: .seconds(5))
            _ = await process.termination(within: .seconds(5))
            return result
        }
    }

    /// A pipe, its read end first, that no other child inherits (the browser gets its ends as
    /// copies, from ``ChildProcess/spawn(name:executable:arguments:logPath:descriptors:leadsGroup:)``).
    private static func pipeClosingOnExec() throws -> [CInt] {
        var ends: [CInt] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Programs.Missing(message: "pipe: \(String(cString: strerror(errno)))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return ends
    }
}

/// One tab, attached with a session of its own (`flatten`: its commands carry the session's id on
/// the browser's connection).
struct BrowserPage: Sendable {
    let connection: DevToolsConnection
    let session: String

    static func open(_ connection: DevToolsConnection, width: Int, height: Int) async throws -> BrowserPage {
        let target = try await connection.send("Target.createTarget", ["url": "about:blank"])
        guard let targetId = target["targetId"]?.string else {
            throw DevToolsConnection.ProtocolError(message: "Target.createTarget: no targetId in \(target)")
        }
        let attached = try await connection.send("Target.attachToTarget", ["targetId": .string(targetId), "flatten": true])
        guard let session = attached["sessionId"]?.string else {
            throw DevToolsConnection.ProtocolError(message: "Target.attachToTarget: no sessionId in \(attached)")
        }
        let page = BrowserPage(connection: connection, session: session)
        for domain in ["Page", "Runtime", "Log"] {
            _ = try await page.command("\(domain).enable")
        }
        // The same layout whatever the window manager of the day: for the screenshot.
        _ = try await page.command("Emulation.setDeviceMetricsOverride", [
            "width": .number(Double(width)), "height": .number(Double(height)), "deviceScaleFactor": 1, "mobile": false,
        ])
        return page
    }

    func command(_ method: String, _ parameters: JSONValue = [:], timeout: Duration = .seconds(30)) async throws -> JSONValue {
        try await connection.send(method, parameters, session: session, timeout: timeout)
    }

    /// Navigates, and returns once `document.readyState` is `complete` at `url`.
    func navigate(to url: String) async throws {
        let result = try await command("Page.navigate", ["url": .string(url)])
        if let error = result["errorText"]?.string {
            throw DevToolsConnection.ProtocolError(message: "Page.navigate to \(url): \(error)")
        }
        try await waitUntil("\(url) loaded", "location.href === \(Self.literal(url)) && document.readyState === 'complete'")
    }

    /// The value of `expression` (awaited when it is a promise), as JSON; an exception it throws
    /// is thrown here with its description.
    func evaluate(_ expression: String, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        let result = try await command("Runtime.evaluate", [
            "expression": .string(expression), "awaitPromise": true, "returnByValue": true,
        ], timeout: timeout)
        if let details = result["exceptionDetails"] {
            throw PageError(message: details["exception"]?["description"]?.string ?? details["text"]?.string ?? details.description)
        }
        return result["result"]?["value"] ?? .null
    }

    /// `expression`'s value, a JSON string the page made with `JSON.stringify`, decoded.
    func evaluate<Value: Decodable>(_ type: Value.Type, _ expression: String, timeout: Duration = .seconds(30)) async throws -> Value {
        let value = try await evaluate(expression, timeout: timeout)
        guard let text = value.string else { throw PageError(message: "expected a JSON string from \(expression.prefix(80)), got \(value)") }
        return try JSONDecoder().decode(Value.self, from: Data(text.utf8))
    }

    /// Waits until `condition`, a JavaScript expression, is true in the page; throws after
    /// `timeout` with `what` and the last value of `diagnosis`.
    func waitUntil(_ what: String, _ condition: String, timeout: Duration = .seconds(20), diagnosis: String? = nil) async throws {
        var lastError: String?
        let held = try await poll(until: ContinuousClock.now + timeout) {
            do {
                lastError = nil
                return try await evaluate("Boolean(\(condition))").bool == true
            } catch let error as PageError {
                // A page that is being replaced, or not there yet.
                lastError = error.message
                return false
            }
        }
        guard !held else { return }
        var message = "\(what): not within \(timeout)"
        if let lastError { message += "; the condition threw \(lastError)" }
        if let diagnosis, let seen = try? await evaluate(diagnosis) { message += "; the page shows \(seen)" }
        throw PageError(message: message)
    }

    /// Clicks the element `selector` selects (a button that is not disabled).
    func click(_ selector: String, diagnosis: String? = nil) async throws {
        let clicked = try await evaluate("""
            (() => { const element = document.querySelector(\(Self.literal(selector)));
                     if (!element || element.disabled) return false; element.click(); return true; })()
            """)
        guard clicked.bool == true else {
            var message = "no enabled \(selector) to click"
            if let diagnosis, let seen = try? await evaluate(diagnosis) { message += "; the page shows \(seen)" }
            throw PageError(message: message)
        }
    }

    /// What the page shows now, as a PNG.
    func screenshot() async throws -> Data {
        let result = try await command("Page.captureScreenshot", ["format": "png"])
        guard let base64 = result["data"]?.string, let data = Data(base64Encoded: base64) else {
            throw PageError(message: "Page.captureScreenshot returned no image")
        }
        return data
    }

    /// `text` as a JavaScript string literal.
    static func literal(_ text: String) -> String {
        JSONValue.string(text).description
    }

    struct PageError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
