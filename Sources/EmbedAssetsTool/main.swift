import Foundation

// embed-assets OUTPUT FILE...
//
// Writes OUTPUT, a Swift file that declares `EmbeddedAssets.base64`: each FILE's name (its last
// path component) and its bytes in base64. Base64 in a plain string literal, rather than the text
// in a raw one, because it needs no escaping whatever the file holds and compiles as fast as any
// string.
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: EmbedAssetsTool OUTPUT FILE...\n".utf8))
    exit(2)
}
var source = """
    // Generated at build time from the target's Public/ folder; edit those files, not this one.
    enum EmbeddedAssets {
        static let base64: [(name: String, bytes: String)] = [

    """
for path in arguments.dropFirst() {
    let url = URL(fileURLWithPath: path)
    let bytes: Data
    do {
        bytes = try Data(contentsOf: url)
    } catch {
        FileHandle.standardError.write(Data("cannot read \(path): \(error)\n".utf8))
        exit(1)
    }
    source += "        (\"\(url.lastPathComponent)\", \"\(bytes.base64EncodedString())\"),\n"
}
source += "    ]\n}\n"
do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
} catch {
    FileHandle.standardError.write(Data("cannot write \(output): \(error)\n".utf8))
    exit(1)
}
