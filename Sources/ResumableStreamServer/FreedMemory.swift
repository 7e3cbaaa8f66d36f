import CMalloc
import NIOPosix
import ServiceLifecycle

/// Gives back to the system the memory the allocator keeps after a burst.
///
/// glibc keeps what the process frees for its next allocations, and gives back only the top of
/// its heaps. After a burst (thousands of requests routed at once, each child task's 17 KiB of
/// stack; thousands of stalled readers that closed) the freed memory lies between the blocks
/// that stay, so the process's resident memory stays at the burst's peak: measured, 1,000
/// stalled readers that closed left it 40 MiB above where it started, and `malloc_trim` gave
/// 36 of them back. Every
/// `interval`, when the allocator holds `threshold` bytes more free than after its last trim, this
/// trims its heaps (on NIO's thread pool: the walk of the heaps blocks its thread for as long as it
/// takes).
struct FreedMemoryService: Service {
    let interval: Duration
    let threshold: Int

    func run() async throws {
        // Ends at graceful shutdown (its sleep is cancelled then), which is no failure.
        try? await cancelWhenGracefulShutdown {
            // What the allocator held free after the last trim: trimmed pages stay free chunks,
            // so only what was freed since then is worth another walk of the heaps.
            var floor = 0
            while true {
                // Throws only when cancelled, which ends the loop.
                try await Task.sleep(for: interval)
                let trimmed = try? await NIOThreadPool.singleton.runIfActive { [floor] in
                    let held = FreedMemory.held
                    guard held >= floor + threshold else { return min(floor, held) }
                    FreedMemory.giveBack(ifAtLeast: 0)
                    return FreedMemory.held
                }
                floor = trimmed ?? floor
            }
        }
    }
}

enum FreedMemory {
    /// The bytes the allocator holds free in its heaps; 0 where it cannot tell (not glibc).
    static var held: Int {
        #if os(Linux) && canImport(Glibc)
        Int(mallinfo2().fordblks)
        #else
        0
        #endif
    }

    /// Trims the allocator's heaps when they hold at least `threshold` bytes free; whether
    /// memory went back to the system.
    @discardableResult
    static func giveBack(ifAtLeast threshold: Int) -> Bool {
        #if os(Linux) && canImport(Glibc)
        guard held >= threshold else { return false }
        return malloc_trim(0) == 1
        #else
        return false
        #endif
    }
}
