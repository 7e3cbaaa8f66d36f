import Foundation

// e2e-load SCENARIO --option value ...: runs one scenario against one system and prints its
// result as one JSON line (and, for the scenarios that pause, a JSON line per phase, then waits for
// a line on standard input before going on).
let arguments = CommandLine.arguments
guard arguments.count > 1 else {
    FileHandle.standardError.write(Data("usage: e2e-load fanout|static-fanout|short|sustained|resume|idle|stalled|write-sse [--option value ...]\n".utf8))
    exit(2)
}
let options = Options(arguments.dropFirst(2))
let result: [String: Any]
switch arguments[1] {
case "fanout": result = await fanout(options)
case "static-fanout": result = await staticFanout(options)
case "short": result = await short(options)
case "sustained": result = await sustained(options)
case "resume": result = await resume(options)
case "idle": result = await idle(options)
case "stalled": result = await stalled(options)
case "write-sse":
    // The static files of the limit: this service's framing of a whole stream.
    let text = TokenText(size: options.int("token-size", 16), count: options.int("tokens", 1))
    let path = options.string("dir") + staticPath(text)
    FileManager.default.createFile(atPath: path, contents: Data(sseFile(text)))
    result = ["path": path]
default:
    FileHandle.standardError.write(Data("unknown scenario \(arguments[1])\n".utf8))
    exit(2)
}
emit(["result": result])
exit(0)
