import NIOCore

/// A task executor that runs jobs on one NIO event loop.
///
/// A task that prefers it (`Task(executorPreference:)`, `withTaskExecutorPreference`) runs its
/// nonisolated code on the event loop's thread. For a ``RedisClient`` call that is the connection's
/// own thread: the command is written without waking the event loop, and the reply resumes the
/// caller there without waking a thread of Swift's global pool. This matters because a continuation
/// always resumes on the generic executor first, which for a task without a preference is the
/// global pool (two thread wake-ups per call), and for a task that prefers this executor is the
/// event loop itself (none).
///
/// Code that runs on it must not block: it shares the thread with every connection of the loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
