import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sharded pub/sub on a Redis Cluster: one subscriber connection (`SSUBSCRIBE`) per master, each
/// shard channel subscribed on the master of its slot, which is where `SPUBLISH` delivers it.
///
/// When a channel's slot moves to another master (the old one drops the channel with an
/// `sunsubscribe` push, or refuses it with `MOVED`), the subscription reads the slot map again,
/// subscribes where the slot lives now, and tells its reader that messages may have been lost
/// (``RedisSubscriptionGap/slotMoved``). When a node's connection is lost, its subscriptions do
/// the same once the map is read again (the node may have failed over to a replica), retrying
/// with the reconnection backoff until they are subscribed, and report
/// ``RedisSubscriptionGap/reconnected``. The reader's own task does this, in its next read.
public final class RedisClusterSubscriber: Sendable {
    private let cluster: RedisClusterClient
    private let subscribers: NodeConnections<RedisSubscriber>

    /// Subscribes through the nodes `cluster` routes to. Connections open when a channel first
    /// needs its node.
    public init(
        cluster: RedisClusterClient,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        bufferSize: Int = 1024,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.cluster = cluster
        let configuration = cluster.configuration
        self.subscribers = NodeConnections(
            open: { node in
                RedisSubscriber.connecting(
                    configuration: configuration.at(node),
                    eventLoop: eventLoopGroup.any(),
                    bufferSize: bufferSize,
                    sharded: true,
                    logger: logger
                )
            },
            close: { await $0.close() }
        )
    }

    /// Subscribes to the shard channel `channel`, returning once its node has confirmed it.
    public func subscribe(to channel: String) async throws -> RedisClusterSubscription {
        let box = RedisClusterSubscription.Current()
        let subscription = try await subscribeOnItsNode(channel)
        box.set(subscription)
        return RedisClusterSubscription(channel: channel, subscriber: self, current: box)
    }

    /// Closes every node's connection; every subscription ends with ``RedisConnectionError/closed``.
    public func close() async {
        await subscribers.closeAll()
    }

    /// Subscribes on the master of the channel's slot, following `MOVED` (with a fresh map) a
    /// bounded number of times.
    /// A node whose connection fails has the map read again; if the slot has another master by
    /// then, the subscription goes there.
    func subscribeOnItsNode(_ channel: String) async throws -> RedisSubscription {
        var routing = ClusterRouting()
        var map = cluster.slotMap
        let slot = HashSlot.of(channel)
        var node = map.master(of: slot) ?? map.nodes.first
        var failovers = 0
        while true {
            guard let target = node else { throw RedisConnectionError.connectionClosed }
            do {
                return try await subscribers.connection(to: target).subscribe(to: channel)
            } catch let error as RedisServerError {
                switch routing.answered(error, map: &map) {
                case .refreshMapThenSend(let next), .send(let next, _):
                    try? await cluster.refreshMap()
                    node = next
                case .fail(let error):
                    throw error
                }
            } catch let error as RedisConnectionError where error != .closed {
                try? await cluster.refreshMap(askingLast: target)
                map = cluster.slotMap
                guard let master = map.master(of: slot), master != target, failovers < routing.limit else { throw error }
                failovers += 1
                node = master
            }
        }
    }

    /// Subscribes `channel` again after its node dropped it or lost its connection: until it
    /// works, the subscriber is closed, the reader unsubscribes (`nil`), or the calling task is
    /// cancelled.
    func resubscribe(_ channel: String, unless unsubscribed: () -> Bool) async throws -> RedisSubscription? {
        var attempt = 0
        while !unsubscribed() {
            do {
                return try await subscribeOnItsNode(channel)
            } catch let error as RedisConnectionError where error != .closed {
                try await Task.sleep(for: .nanoseconds(cluster.configuration.reconnectDelay(attempt: attempt).nanoseconds))
                attempt += 1
            } catch let error as RedisServerError where ClusterRedirection(error) != nil {
                // Still moving after the redirections allowed: the map settles soon.
                try await Task.sleep(for: .nanoseconds(cluster.configuration.reconnectDelay(attempt: attempt).nanoseconds))
                attempt += 1
            }
        }
        return nil
    }
}

/// The messages of one shard channel for one reader, wherever its slot lives: when the slot moves,
/// the next read subscribes on the new node and returns ``RedisSubscriptionGap/slotMoved`` first.
public struct RedisClusterSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisSubscriptionEvent

    public let channel: String
    private let subscriber: RedisClusterSubscriber
    private let current: Current

    init(channel: String, subscriber: RedisClusterSubscriber, current: Current) {
        self.channel = channel
        self.subscriber = subscriber
        self.current = current
    }

    /// Ends the sequence and releases the node's subscription.
    public func unsubscribe() {
        current.cancel()
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(channel: channel, subscriber: subscriber, current: current, base: current.subscription?.makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: String
        let subscriber: RedisClusterSubscriber
        let current: Current
        var base: RedisSubscription.AsyncIterator?

        public mutating func next() async throws -> RedisSubscriptionEvent? {
            guard var iterator = base else { return nil }
            let gap: RedisSubscriptionGap
            do {
                let event = try await iterator.next()
                base = iterator
                return event
            } catch is RedisShardChannelMoved {
                gap = .slotMoved
            } catch let error as RedisConnectionError where error == .connectionClosed {
                gap = .reconnected
            }
            // The reader resubscribes in its own task: no task of the subscriber's runs for it.
            let resubscribed: RedisSubscription?
            do {
                resubscribed = try await subscriber.resubscribe(channel, unless: { current.isCancelled })
            } catch is CancellationError {
                base = nil
                return nil
            }
            guard let fresh = resubscribed, current.replace(with: fresh) else {
                resubscribed?.unsubscribe()
                base = nil
                return nil
            }
            base = fresh.makeAsyncIterator()
            return .gap(gap)
        }
    }

    /// The node subscription a reader reads now, shared with ``unsubscribe()`` (which may come
    /// from another task).
    final class Current: Sendable {
        private let state = NIOLockedValueBox<(subscription: RedisSubscription?, cancelled: Bool)>((nil, false))

        var subscription: RedisSubscription? { state.withLockedValue { $0.subscription } }

        var isCancelled: Bool { state.withLockedValue { $0.cancelled } }

        func set(_ subscription: RedisSubscription) {
            state.withLockedValue { $0.subscription = subscription }
        }

        /// Takes the new subscription, unless the reader unsubscribed meanwhile: then `false`.
        func replace(with subscription: RedisSubscription) -> Bool {
            state.withLockedValue { state in
                guard !state.cancelled else { return false }
                state.subscription = subscription
                return true
            }
        }

        func cancel() {
            let subscription = state.withLockedValue { state in
                state.cancelled = true
                return state.subscription
            }
            subscription?.unsubscribe()
        }
    }
}
