import Foundation
import PackagePlugin

/// Embeds the files of a target's `Public/` folder into the target as Swift source, so that the
/// server's web assets (the demo page, the browser client, the OpenAPI document) travel inside its
/// one binary: an image that copies the executable alone still serves them. No other build step
/// touches them; what is in `Public/` is what a browser gets.
@main
struct EmbedAssets: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let folder = target.directoryURL.appending(path: "Public")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path())
            .filter { !$0.hasPrefix(".") }
            .sorted()
        let inputs = names.map { folder.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAssets.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) web assets in \(target.name)",
                executable: try context.tool(named: "EmbedAssetsTool").url,
                arguments: [output.path()] + inputs.map { $0.path() },
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
