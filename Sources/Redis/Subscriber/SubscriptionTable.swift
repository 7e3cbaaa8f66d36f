import NIOCore

/// The subscriber's channel table: which channels the connection is subscribed to (or about to be),
/// and which local consumers each one feeds.
///
/// Many consumers of one channel share one Redis subscription: the first one to arrive sends
/// SUBSCRIBE, the last one to leave sends UNSUBSCRIBE. The table also remembers, in order, the
/// SUBSCRIBE, UNSUBSCRIBE and PING commands Redis has yet to answer, because Redis answers (or
/// refuses) them in the order they were sent and an error reply does not name its command.
///
/// A value type that does no I/O: every event returns what the subscriber must do.
struct SubscriptionTable<Consumer> {
    struct Member {
        var consumer: Consumer
        /// Whether this consumer's subscribe call has returned. Confirmed members of a channel that is
        /// being subscribed again were there before a reconnection, and are owed a gap.
        var confirmed: Bool
    }

    private enum ChannelState {
        /// SUBSCRIBE is in flight, or will be sent once connected.
        case subscribing([Int: Member])
        case subscribed([Int: Member])
        /// UNSUBSCRIBE is in flight because the last consumer left; consumers that joined since wait
        /// for it to land, and then the channel is subscribed again.
        case unsubscribing([Int: Member])

        var members: [Int: Member] {
            switch self {
            case .subscribing(let members), .subscribed(let members), .unsubscribing(let members): return members
            }
        }
    }

    enum Command: Equatable {
        case subscribe(String)
        case unsubscribe(String)
        /// The health check's (see ``SubscriberHealthCheck``).
        case ping
    }

    private var channels: [String: ChannelState] = [:]
    private var unconfirmed = CircularBuffer<Command>()
    private(set) var isConnected = false

    enum AddAction {
        /// Send SUBSCRIBE for the channel; the consumer waits for its confirmation.
        case send(Command)
        /// The consumer waits: a SUBSCRIBE in flight (or the next connection) will confirm it.
        case wait
        /// The channel is subscribed already: the consumer is confirmed at once.
        case confirmed
    }

    enum ConfirmationAction {
        /// Confirm these consumers' subscribe calls, and tell these earlier ones about a gap.
        case subscribed(confirm: [Consumer], gap: [Consumer])
        /// Nobody is left to read the channel: send this command.
        case send(Command)
        case none
        /// Redis confirmed something that was not asked for: the connection is out of step.
        case protocolViolation(String)
    }

    enum FailureAction {
        /// Redis refused to subscribe the channel: these consumers end with its error.
        case fail([Consumer])
        /// Consumers wait on a channel whose state Redis left unclear: subscribe it again.
        case send(Command)
        /// Redis refused the PING: it is there, which is all the health check asks.
        case pingRefused
        case none
        case protocolViolation(String)
    }

    /// The channels that have consumers, and how many each.
    var consumerCounts: [String: Int] { channels.mapValues(\.members.count) }

    mutating func add(_ consumer: Consumer, id: Int, to channel: String) -> AddAction {
        guard let state = channels[channel] else {
            channels[channel] = .subscribing([id: Member(consumer: consumer, confirmed: false)])
            return isConnected ? send(.subscribe(channel)) : .wait
        }
        switch state {
        case .subscribing(var members):
            members[id] = Member(consumer: consumer, confirmed: false)
            channels[channel] = .subscribing(members)
            return .wait
        case .subscribed(var members):
            members[id] = Member(consumer: consumer, confirmed: true)
            channels[channel] = .subscribed(members)
            return .confirmed
        case .unsubscribing(var members):
            members[id] = Member(consumer: consumer, confirmed: false)
            channels[channel] = .unsubscribing(members)
            return .wait
        }
    }

    /// Removes a consumer. Returns the command to send, if the channel lost its last reader.
    mutating func remove(id: Int, from channel: String) -> Command? {
        guard let state = channels[channel], state.members[id] != nil else { return nil }
        switch state {
        case .subscribing(var members):
            members[id] = nil
            // A SUBSCRIBE in flight is left to land; its confirmation sends the UNSUBSCRIBE. Without
            // a connection nothing was sent and the channel is simply forgotten.
            channels[channel] = members.isEmpty && !isConnected ? nil : .subscribing(members)
            return nil
        case .subscribed(var members):
            members[id] = nil
            guard members.isEmpty else {
                channels[channel] = .subscribed(members)
                return nil
            }
            guard isConnected else {
                channels[channel] = nil
                return nil
            }
            channels[channel] = .unsubscribing([:])
            unconfirmed.append(.unsubscribe(channel))
            return .unsubscribe(channel)
        case .unsubscribing(var members):
            members[id] = nil
            channels[channel] = .unsubscribing(members)
            return nil
        }
    }

    /// Whether the consumer's subscribe call has been confirmed (`nil` when it is not in the table).
    func isConfirmed(id: Int, on channel: String) -> Bool? {
        channels[channel]?.members[id]?.confirmed
    }

    /// The consumers a message on `channel` goes to.
    func consumers(of channel: String) -> LazyMapSequence<Dictionary<Int, Member>.Values, Consumer> {
        guard case .subscribed(let members) = channels[channel] else { return [Int: Member]().values.lazy.map(\.consumer) }
        return members.values.lazy.map(\.consumer)
    }

    /// Every consumer, for closing.
    var allConsumers: [Consumer] {
        channels.values.flatMap { $0.members.values.map(\.consumer) }
    }

    mutating func subscribeConfirmed(_ channel: String) -> ConfirmationAction {
        guard unconfirmed.first == .subscribe(channel) else {
            return .protocolViolation("unexpected confirmation of SUBSCRIBE \(channel)")
        }
        unconfirmed.removeFirst()
        guard case .subscribing(var members) = channels[channel] else {
            return .protocolViolation("SUBSCRIBE \(channel) confirmed for a channel not being subscribed")
        }
        guard !members.isEmpty else {
            channels[channel] = .unsubscribing([:])
            return send(.unsubscribe(channel))
        }
        var confirm: [Consumer] = []
        var gap: [Consumer] = []
        for (id, member) in members {
            if member.confirmed {
                gap.append(member.consumer)
            } else {
                confirm.append(member.consumer)
                members[id]?.confirmed = true
            }
        }
        channels[channel] = .subscribed(members)
        return .subscribed(confirm: confirm, gap: gap)
    }

    /// An `sunsubscribe` that nobody asked for: a cluster node that no longer serves a shard
    /// channel's slot (it migrated) drops the channel and says so. Returns the consumers that lost
    /// their channel, or `nil` when the push answers an UNSUBSCRIBE of ours (the usual path). A
    /// channel that is not subscribed right now has nothing to lose: its own commands settle it.
    mutating func droppedByServer(_ channel: String) -> [Consumer]? {
        guard unconfirmed.first != .unsubscribe(channel) else { return nil }
        guard case .subscribed(let members) = channels[channel] else { return [] }
        channels[channel] = nil
        return members.values.map(\.consumer)
    }

    mutating func unsubscribeConfirmed(_ channel: String) -> ConfirmationAction {
        guard unconfirmed.first == .unsubscribe(channel) else {
            return .protocolViolation("unexpected confirmation of UNSUBSCRIBE \(channel)")
        }
        unconfirmed.removeFirst()
        guard case .unsubscribing(let members) = channels[channel] else {
            return .protocolViolation("UNSUBSCRIBE \(channel) confirmed for a channel not being unsubscribed")
        }
        guard !members.isEmpty else {
            channels[channel] = nil
            return .none
        }
        channels[channel] = .subscribing(members)
        return send(.subscribe(channel))
    }

    /// Redis answered the oldest unconfirmed command with an error (for example `NOPERM`).
    mutating func commandFailed() -> FailureAction {
        guard let command = unconfirmed.popFirst() else {
            return .protocolViolation("an error reply with no command waiting for it")
        }
        switch command {
        case .subscribe(let channel):
            let members = channels.removeValue(forKey: channel)?.members.values.map(\.consumer) ?? []
            return .fail(members)
        case .ping:
            return .pingRefused
        case .unsubscribe(let channel):
            // Redis does not refuse UNSUBSCRIBE today; if it did, whether the channel is still
            // subscribed is unknown, and SUBSCRIBE is the one command that settles it either way.
            guard let members = channels[channel]?.members, !members.isEmpty else {
                channels[channel] = nil
                return .none
            }
            channels[channel] = .subscribing(members)
            unconfirmed.append(.subscribe(channel))
            return .send(.subscribe(channel))
        }
    }

    /// A PING goes out, answered in turn with the commands before it.
    mutating func pingSent() -> Command {
        unconfirmed.append(.ping)
        return .ping
    }

    /// Redis answered a PING. `false` when the oldest unanswered command is not a PING: the
    /// connection is out of step.
    mutating func pongReceived() -> Bool {
        guard unconfirmed.first == .ping else { return false }
        unconfirmed.removeFirst()
        return true
    }

    /// The consumer with this id on `channel`, if it is there.
    func consumer(id: Int, on channel: String) -> Consumer? {
        channels[channel]?.members[id]?.consumer
    }

    /// The connection is gone: Redis forgot every subscription and will confirm nothing more.
    mutating func connectionLost() {
        isConnected = false
        unconfirmed.removeAll()
        for (channel, state) in channels {
            let members = state.members
            channels[channel] = members.isEmpty ? nil : .subscribing(members)
        }
    }

    /// A connection is up: every channel with consumers must be subscribed on it.
    mutating func connectionEstablished() -> [Command] {
        isConnected = true
        let commands = channels.keys.sorted().map(Command.subscribe)
        unconfirmed.append(contentsOf: commands)
        return commands
    }

    private mutating func send(_ command: Command) -> AddAction {
        unconfirmed.append(command)
        return .send(command)
    }

    private mutating func send(_ command: Command) -> ConfirmationAction {
        unconfirmed.append(command)
        return .send(command)
    }
}
