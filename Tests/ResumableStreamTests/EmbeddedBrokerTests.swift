@testable import ResumableStream
import Testing

@Suite(.timeLimit(.minutes(1)))
struct EmbeddedBrokerTests {
    // MARK: sentinels

    @Test func incrementCreatesTheSentinelAtOne() async throws {
        let broker = EmbeddedStreamBroker()
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 1)
        #expect(try await broker.get("s") == "1")
    }

    @Test func incrementGivesTheCreatedSentinelItsExpiry() async throws {
        let broker = EmbeddedStreamBroker()
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 0) == 1)
        #expect(try await broker.get("s") == nil)
    }

    @Test func incrementCountsUp() async throws {
        let broker = EmbeddedStreamBroker()
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 1)
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 2)
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 3)
        #expect(try await broker.get("s") == "3")
    }

    @Test func incrementOfASetIntegerCountsOnFromIt() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("s", to: "1", expireInSeconds: 60)
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 2)
    }

    @Test func incrementOfDoneIsNilAndLeavesItDone() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("s", to: "DONE", expireInSeconds: 60)
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == nil)
        #expect(try await broker.get("s") == "DONE")
    }

    @Test func incrementOfAnExpiredSentinelStartsAgain() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("s", to: "DONE", expireInSeconds: 0)
        #expect(try await broker.incrementSentinel("s", expireInSeconds: 60) == 1)
    }

    @Test func incrementsOfDifferentKeysAreIndependent() async throws {
        let broker = EmbeddedStreamBroker()
        _ = try await broker.incrementSentinel("a", expireInSeconds: 60)
        _ = try await broker.incrementSentinel("a", expireInSeconds: 60)
        #expect(try await broker.incrementSentinel("b", expireInSeconds: 60) == 1)
    }

    // MARK: keys

    @Test func getOfAnAbsentKeyIsNil() async throws {
        #expect(try await EmbeddedStreamBroker().get("nothing") == nil)
    }

    @Test func setThenGet() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("k", to: "v", expireInSeconds: 60)
        #expect(try await broker.get("k") == "v")
    }

    @Test func setOverwrites() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("k", to: "1", expireInSeconds: 60)
        try await broker.set("k", to: "DONE", expireInSeconds: 60)
        #expect(try await broker.get("k") == "DONE")
    }

    @Test func keySetToExpireAtOnceReadsAsAbsent() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("k", to: "v", expireInSeconds: 0)
        #expect(try await broker.get("k") == nil)
    }

    @Test func renewingALeaseExtendsIt() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("k", to: "2", expireInSeconds: 0)
        #expect(try await broker.renewLease("k", seconds: 60))
        // An expired (or lost) sentinel is re-created with 1.
        #expect(try await broker.get("k") == "1")
        try await broker.set("k", to: "3", expireInSeconds: 60)
        #expect(try await broker.renewLease("k", seconds: 0))
        #expect(try await broker.get("k") == nil)
    }

    @Test func renewingALeaseKeepsItsCount() async throws {
        let broker = EmbeddedStreamBroker()
        _ = try await broker.incrementSentinel("k", expireInSeconds: 60)
        _ = try await broker.incrementSentinel("k", expireInSeconds: 60)
        #expect(try await broker.renewLease("k", seconds: 120))
        #expect(try await broker.get("k") == "2")
    }

    @Test func renewingALeaseLeavesDoneAlone() async throws {
        let broker = EmbeddedStreamBroker()
        try await broker.set("k", to: WireProtocol.doneValue, expireInSeconds: 60)
        #expect(try await broker.renewLease("k", seconds: 1) == false)
        #expect(try await broker.get("k") == WireProtocol.doneValue)
    }

    // MARK: publish and subscribe

    @Test func publishWithoutSubscribersReachesNobody() async throws {
        let broker = EmbeddedStreamBroker()
        #expect(try await broker.publish("m", to: "c") == 0)
    }

    @Test func publishCountsTheSubscriptionsOfTheChannel() async throws {
        let broker = EmbeddedStreamBroker()
        let first = try await broker.subscribe(to: "c")
        let second = try await broker.subscribe(to: "c")
        let other = try await broker.subscribe(to: "other")
        defer { [first, second, other].forEach { $0.cancel() } }
        #expect(try await broker.publish("m", to: "c") == 2)
        #expect(try await broker.publish("m", to: "other") == 1)
        #expect(try await broker.publish("m", to: "nobody") == 0)
    }

    @Test func everySubscriptionGetsTheMessage() async throws {
        let broker = EmbeddedStreamBroker()
        let first = try await broker.subscribe(to: "c")
        let second = try await broker.subscribe(to: "c")
        defer { [first, second].forEach { $0.cancel() } }
        _ = try await broker.publish("hello", to: "c")
        var firstEvents = first.makeAsyncIterator()
        var secondEvents = second.makeAsyncIterator()
        #expect(try await firstEvents.next() == .message("hello"))
        #expect(try await secondEvents.next() == .message("hello"))
    }

    @Test func messagesArriveInOrder() async throws {
        let broker = EmbeddedStreamBroker()
        let subscription = try await broker.subscribe(to: "c")
        defer { subscription.cancel() }
        let messages = (0..<100).map { "m\($0)" }
        for message in messages {
            _ = try await broker.publish(message, to: "c")
        }
        var events: [BrokerEvent] = []
        for try await event in subscription {
            events.append(event)
            if events.count == messages.count { break }
        }
        #expect(events == messages.map { .message($0) })
    }

    @Test func aWaitingSubscriberGetsTheNextMessage() async throws {
        let broker = EmbeddedStreamBroker()
        let subscription = try await broker.subscribe(to: "c")
        defer { subscription.cancel() }
        async let event = subscription.first { _ in true }
        _ = try await broker.publish("late", to: "c")
        #expect(try await event == .message("late"))
    }

    @Test func cancelEndsTheSubscription() async throws {
        let broker = EmbeddedStreamBroker()
        let subscription = try await broker.subscribe(to: "c")
        subscription.cancel()
        var events = subscription.makeAsyncIterator()
        #expect(try await events.next() == nil)
        #expect(try await broker.publish("m", to: "c") == 0)
    }

    @Test func cancelEndsAWaitingReader() async throws {
        let broker = EmbeddedStreamBroker()
        let subscription = try await broker.subscribe(to: "c")
        let (started, starting) = AsyncStream.makeStream(of: Void.self)
        let reader = Task {
            starting.yield()
            var events: [BrokerEvent] = []
            for try await event in subscription {
                events.append(event)
            }
            return events
        }
        for await _ in started { break }
        subscription.cancel()
        #expect(try await reader.value == [])
    }

    @Test func cancellingOneSubscriptionLeavesTheOthers() async throws {
        let broker = EmbeddedStreamBroker()
        let first = try await broker.subscribe(to: "c")
        let second = try await broker.subscribe(to: "c")
        defer { second.cancel() }
        first.cancel()
        #expect(try await broker.publish("m", to: "c") == 1)
        var events = second.makeAsyncIterator()
        #expect(try await events.next() == .message("m"))
    }

    @Test func subscriberThatFallsBehindGetsAGapBeforeTheNextMessage() async throws {
        let broker = EmbeddedStreamBroker(bufferSize: 2)
        let subscription = try await broker.subscribe(to: "c")
        defer { subscription.cancel() }
        for message in ["a", "b", "lost"] {
            _ = try await broker.publish(message, to: "c")
        }
        var events = subscription.makeAsyncIterator()
        #expect(try await events.next() == .message("a"))
        #expect(try await events.next() == .message("b"))
        _ = try await broker.publish("d", to: "c")
        #expect(try await events.next() == .gap)
        #expect(try await events.next() == .message("d"))
    }

    @Test func oneLossRightAfterAGapIsCoveredByThatGap() async throws {
        let broker = EmbeddedStreamBroker(bufferSize: 2)
        let subscription = try await broker.subscribe(to: "c")
        defer { subscription.cancel() }
        for message in ["a", "b", "lost"] {
            _ = try await broker.publish(message, to: "c")
        }
        var events = subscription.makeAsyncIterator()
        #expect(try await events.next() == .message("a"))
        // Room for one: the gap goes in, the message after it is dropped.
        _ = try await broker.publish("also lost", to: "c")
        #expect(try await events.next() == .message("b"))
        #expect(try await events.next() == .gap)
        _ = try await broker.publish("d", to: "c")
        #expect(try await events.next() == .message("d"))
    }

    @Test func subscriberThatKeepsUpGetsNoGap() async throws {
        let broker = EmbeddedStreamBroker(bufferSize: 2)
        let subscription = try await broker.subscribe(to: "c")
        defer { subscription.cancel() }
        var events = subscription.makeAsyncIterator()
        for message in ["a", "b", "c", "d"] {
            _ = try await broker.publish(message, to: "c")
            #expect(try await events.next() == .message(message))
        }
    }

    @Test func aSlowSubscriberDoesNotCostAnotherItsMessages() async throws {
        let broker = EmbeddedStreamBroker(bufferSize: 2)
        let slow = try await broker.subscribe(to: "c")
        let fast = try await broker.subscribe(to: "c")
        defer { [slow, fast].forEach { $0.cancel() } }
        var events = fast.makeAsyncIterator()
        for message in ["a", "b", "c", "d"] {
            _ = try await broker.publish(message, to: "c")
            #expect(try await events.next() == .message(message))
        }
    }
}
