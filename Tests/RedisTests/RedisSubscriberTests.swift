import NIOConcurrencyHelpers
import NIOCore
import Redis
import TestSupport
import Testing

@Suite("Redis subscriber against redis-server", .timeLimit(.minutes(2)))
struct RedisSubscriberTests {
    @Test func thousandChannelsEachReceiveTheirMessagesInOrder() async throws {
        let channels = (0..<1_000).map { TestRedis.unique("many-\($0)") }
        let perChannel = 20
        try await TestRedis.withClient { publisher throws in
            try await TestRedis.withSubscriber { subscriber throws in
                let subscriptions = try await withThrowingTaskGroup(of: RedisSubscription.self) { group in
                    for channel in channels {
                        group.addTask { try await subscriber.subscribe(to: channel) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(await subscriber.channels().count == 1_000)

                // Every channel is published to by its own task, all at once, so that messages of
                // different channels interleave on the connection.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for channel in channels {
                        group.addTask {
                            for index in 0..<perChannel {
                                try await publisher.publish(.string("\(index)"), to: channel)
                            }
                        }
                    }
                    try await group.waitForAll()
                }

                let outOfOrder = try await withThrowingTaskGroup(of: Int.self) { group in
                    for subscription in subscriptions {
                        group.addTask {
                            var received: [String] = []
                            for try await event in subscription {
                                guard case .message(let payload) = event else { return 1 }
                                received.append(String(buffer: payload))
                                if received.count == perChannel { break }
                            }
                            subscription.unsubscribe()
                            return received == (0..<perChannel).map(String.init) ? 0 : 1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(outOfOrder == 0)
            }
        }
    }

    @Test func consumersOfOneChannelShareOneRedisSubscription() async throws {
        let channel = TestRedis.unique("shared")
        try await TestRedis.withClient { client throws in
            try await TestRedis.withSubscriber { subscriber throws in
                let first = try await subscriber.subscribe(to: channel)
                let second = try await subscriber.subscribe(to: channel)
                let third = try await subscriber.subscribe(to: channel)
                #expect(try await numsub(channel, client) == 1)
                #expect(await subscriber.channels() == [channel: 3])

                // One connection receives it, three consumers see it.
                #expect(try await client.publish("hello", to: channel) == 1)
                for subscription in [first, second, third] {
                    var iterator = subscription.makeAsyncIterator()
                    #expect(try await iterator.next() == .message(ByteBuffer(string: "hello")))
                }

                first.unsubscribe()
                second.unsubscribe()
                try await eventually { await subscriber.channels() == [channel: 1] }
                #expect(try await numsub(channel, client) == 1)
                third.unsubscribe()
                try await eventually { try await numsub(channel, client) == 0 }
                // The table forgets the channel when Redis's confirmation arrives, just after.
                try await eventually { await subscriber.channels().isEmpty }
            }
        }
    }

    @Test func withSubscriptionAndCancellationReleaseTheChannel() async throws {
        let channel = TestRedis.unique("scoped")
        try await TestRedis.withClient { client throws in
            try await TestRedis.withSubscriber { subscriber throws in
                let first = try await subscriber.withSubscription(to: channel) { subscription throws in
                    #expect(try await client.publish("one", to: channel) == 1)
                    var iterator = subscription.makeAsyncIterator()
                    return try await iterator.next()
                }
                #expect(first == .message(ByteBuffer(string: "one")))
                try await eventually { try await numsub(channel, client) == 0 }

                // A consumer whose task is cancelled while it waits lets go of the channel too.
                let subscription = try await subscriber.subscribe(to: channel)
                let reader = Task {
                    for try await _ in subscription {}
                }
                reader.cancel()
                _ = await reader.result
                try await eventually { try await numsub(channel, client) == 0 }
            }
        }
    }

    @Test func killedSubscriberConnectionIsRestoredAndTheGapReported() async throws {
        let name = "killed-\(TestRedis.unique("sub").suffix(12))"
        let busy = TestRedis.unique("busy")
        let quiet = TestRedis.unique("quiet")
        try await TestRedis.withClient { admin throws in
            try await TestRedis.withSubscriber(name: name) { subscriber throws in
                let busyReaders = [try await subscriber.subscribe(to: busy), try await subscriber.subscribe(to: busy)]
                let quietReader = try await subscriber.subscribe(to: quiet)

                // Publishes increasing numbers on `busy` until told to stop.
                let stop = NIOLockedValueBox(false)
                let published = Tally()
                let publisher = Task {
                    var next = 0
                    while !stop.withLockedValue({ $0 }) {
                        _ = try await admin.publish(.integer(next), to: busy)
                        next += 1
                        published.add()
                    }
                }

                // Each busy reader sees messages in increasing order, then one gap, then messages again.
                let readers = busyReaders.map { subscription in
                    Task {
                        var last = -1
                        var gaps = 0
                        var afterGap = 0
                        var inOrder = true
                        for try await event in subscription {
                            switch event {
                            case .message(let payload):
                                let number = Int(String(buffer: payload)) ?? -1
                                inOrder = inOrder && number > last
                                last = number
                                if gaps > 0 { afterGap += 1 }
                            case .gap(let reason):
                                inOrder = inOrder && reason == .reconnected
                                gaps += 1
                            }
                            if afterGap == 100 { break }
                        }
                        return (inOrder, gaps)
                    }
                }

                await published.wait(until: 101)
                #expect(try await TestRedis.kill(clientNamed: name, using: admin) == 1)

                for reader in readers {
                    let (inOrder, gaps) = try await reader.value
                    #expect(inOrder)
                    #expect(gaps == 1)
                }
                stop.withLockedValue { $0 = true }
                try await publisher.value

                var quietEvents = quietReader.makeAsyncIterator()
                #expect(try await quietEvents.next() == .gap(.reconnected))
                #expect(try await admin.publish("after", to: quiet) == 1)
                #expect(try await quietEvents.next() == .message(ByteBuffer(string: "after")))
                #expect(try await numsub(busy, admin) == 1)
                #expect(try await TestRedis.connections(named: name, using: admin) == 1)
            }
        }
    }

    @Test func slowConsumerLosesOnlyItsOwnMessagesAndIsToldSo() async throws {
        let slowChannel = TestRedis.unique("slow")
        let markerChannel = TestRedis.unique("marker")
        try await TestRedis.withClient { client throws in
            try await TestRedis.withSubscriber(bufferSize: 4) { subscriber throws in
                let slow = try await subscriber.subscribe(to: slowChannel)
                let marker = try await subscriber.subscribe(to: markerChannel)
                for index in 0..<10 {
                    try await client.publish(.integer(index), to: slowChannel)
                }
                // Messages arrive in publishing order on one connection: once the marker is here,
                // all ten have been handled, and six of them did not fit.
                try await client.publish("marker", to: markerChannel)
                var markerEvents = marker.makeAsyncIterator()
                #expect(try await markerEvents.next() == .message(ByteBuffer(string: "marker")))

                var events = slow.makeAsyncIterator()
                for index in 0..<4 {
                    #expect(try await events.next() == .message(ByteBuffer(string: "\(index)")))
                }
                try await client.publish("late", to: slowChannel)
                #expect(try await events.next() == .gap(.consumerOverflow))
                #expect(try await events.next() == .message(ByteBuffer(string: "late")))
            }
        }
    }

    @Test func refusedChannelFailsWithRedisErrorAndTheConnectionStaysUsable() async throws {
        try await TestRedis.withClient { admin throws in
            let user = "sub-\(TestRedis.unique("acl").suffix(8))"
            _ = try await admin.send("ACL", "SETUSER", .string(user), "on", ">secret", "resetchannels", "&allowed:*", "+@all")
            var configuration = try TestRedis.configuration()
            configuration.username = user
            configuration.password = "secret"
            let subscriber = try await RedisSubscriber.connect(configuration: configuration)

            let error = await #expect(throws: RedisServerError.self) {
                _ = try await subscriber.subscribe(to: "forbidden")
            }
            #expect(error?.code == "NOPERM")
            #expect(await subscriber.channels().isEmpty)

            let allowed = try await subscriber.subscribe(to: "allowed:\(user)")
            #expect(try await admin.publish("ok", to: "allowed:\(user)") == 1)
            var events = allowed.makeAsyncIterator()
            #expect(try await events.next() == .message(ByteBuffer(string: "ok")))
            await subscriber.close()
            _ = try await admin.send("ACL", "DELUSER", .string(user))
        }
    }

    @Test func closingEndsEverySubscriptionWithAnError() async throws {
        let subscriber = try await TestRedis.subscriber()
        let subscription = try await subscriber.subscribe(to: TestRedis.unique("closing"))
        await subscriber.close()
        var events = subscription.makeAsyncIterator()
        await #expect(throws: RedisConnectionError.closed) { _ = try await events.next() }
        await #expect(throws: RedisConnectionError.closed) {
            _ = try await subscriber.subscribe(to: TestRedis.unique("after-close"))
        }
    }
}

/// How many connections Redis has subscribed to `channel`.
private func numsub(_ channel: String, _ client: RedisClient) async throws -> Int {
    try await client.send("PUBSUB", "NUMSUB", .string(channel)).array?.last?.integer ?? -1
}
