import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import ResumableStreamServer
import Testing

/// What the server's freed-memory service does, in this process's own allocator: memory freed
/// between blocks that stay, which glibc keeps, goes back to the system once there is enough of it.
@Suite struct FreedMemoryTests {
    @Test func memoryFreedBetweenBlocksThatStayGoesBackAboveTheThreshold() throws {
        #if os(Linux) && canImport(Glibc)
        // 4,096 blocks of 16 KiB (under glibc's mmap threshold: from its heaps), every other one
        // freed: 32 MiB free between blocks that stay, which no shrinking of a heap's top reaches.
        var blocks: [UnsafeMutableRawPointer?] = (0..<4096).map { _ in malloc(16 * 1024) }
        defer { blocks.forEach { free($0) } }
        for index in stride(from: 0, to: blocks.count, by: 2) {
            // Touched, so that the pages are resident before they are freed.
            try #require(blocks[index]).initializeMemory(as: UInt8.self, repeating: 1, count: 16 * 1024)
            free(blocks[index])
            blocks[index] = nil
        }
        #expect(FreedMemory.held >= 32 * 1024 * 1024)
        #expect(!FreedMemory.giveBack(ifAtLeast: .max), "below the threshold, nothing is trimmed")
        let before = try residentBytes()
        #expect(FreedMemory.giveBack(ifAtLeast: 16 * 1024 * 1024))
        let after = try residentBytes()
        // The freed pages left the process (other tests may allocate meanwhile: half is enough).
        #expect(before - after >= 16 * 1024 * 1024, "resident \(before) bytes before, \(after) after")
        #endif
    }

    /// The process's resident memory (`VmRSS`).
    private func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kibibytes = try #require(line.split(separator: " ").dropFirst().first.flatMap { Int($0) })
        return kibibytes * 1024
    }
}
