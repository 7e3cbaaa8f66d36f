import NIOCore
import Testing

@testable import Redis

/// Consumers are plain Ints, and each one's id is the consumer itself.
private typealias Table = SubscriptionTable<Int>

@Suite("Subscription table")
struct SubscriptionTableTests {
    @Test func consumersAddedBeforeAConnectionWaitForIt() {
        var table = Table()
        #expect(table.add(1, id: 1, to: "b").outcome == .wait)
        #expect(table.add(2, id: 2, to: "a").outcome == .wait)
        #expect(table.connectionEstablished() == [.subscribe("a"), .subscribe("b")])
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [2], gap: []))
        #expect(table.subscribeConfirmed("b").outcome == .subscribed(confirm: [1], gap: []))
    }

    @Test func aConsumerThatLeavesBeforeTheFirstConnectionIsForgotten() {
        var table = Table()
        _ = table.add(1, id: 1, to: "a")
        #expect(table.remove(id: 1, from: "a") == nil)
        #expect(table.consumerCounts.isEmpty)
        #expect(table.connectionEstablished() == [])
    }

    @Test func theFirstConsumerSubscribesAndTheNextOneWaitsForTheSameConfirmation() {
        var table = connectedTable()
        #expect(table.add(1, id: 1, to: "a").outcome == .send(.subscribe("a")))
        #expect(table.add(2, id: 2, to: "a").outcome == .wait)
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [1, 2], gap: []))
    }

    @Test func aConsumerOfASubscribedChannelIsConfirmedAtOnce() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        _ = table.subscribeConfirmed("a")
        #expect(table.add(2, id: 2, to: "a").outcome == .confirmed)
        #expect(table.isConfirmed(id: 2, on: "a") == true)
    }

    @Test func messagesGoToConsumersOnlyOnceTheChannelIsSubscribed() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        _ = table.add(2, id: 2, to: "a")
        #expect(Array(table.consumers(of: "a")).isEmpty)
        _ = table.subscribeConfirmed("a")
        #expect(table.consumers(of: "a").sorted() == [1, 2])
        #expect(Array(table.consumers(of: "unknown")).isEmpty)
    }

    @Test func isConfirmedTracksEachConsumer() {
        var table = connectedTable()
        #expect(table.isConfirmed(id: 1, on: "a") == nil)
        _ = table.add(1, id: 1, to: "a")
        #expect(table.isConfirmed(id: 1, on: "a") == false)
        #expect(table.isConfirmed(id: 2, on: "a") == nil)
        _ = table.subscribeConfirmed("a")
        #expect(table.isConfirmed(id: 1, on: "a") == true)
        _ = table.add(2, id: 2, to: "a")
        _ = table.remove(id: 1, from: "a")
        #expect(table.isConfirmed(id: 1, on: "a") == nil)
    }

    @Test func theLastConsumerLeavingUnsubscribesAndTheConfirmationForgetsTheChannel() {
        var table = subscribedTable(channel: "a", consumers: [1, 2])
        #expect(table.remove(id: 1, from: "a") == nil)
        #expect(table.remove(id: 2, from: "a") == .unsubscribe("a"))
        #expect(table.unsubscribeConfirmed("a").outcome == Confirmation.none)
        #expect(table.consumerCounts.isEmpty)
        #expect(Array(table.consumers(of: "a")).isEmpty)
    }

    @Test func removingAnUnknownConsumerDoesNothing() {
        var table = subscribedTable(channel: "a", consumers: [1])
        #expect(table.remove(id: 9, from: "a") == nil)
        #expect(table.remove(id: 1, from: "b") == nil)
        #expect(table.consumerCounts == ["a": 1])
    }

    @Test func aConsumerArrivingDuringUnsubscribeSubscribesAgainWhenItLands() {
        var table = subscribedTable(channel: "a", consumers: [1])
        _ = table.remove(id: 1, from: "a")
        #expect(table.add(2, id: 2, to: "a").outcome == .wait)
        #expect(Array(table.consumers(of: "a")).isEmpty)
        #expect(table.unsubscribeConfirmed("a").outcome == .send(.subscribe("a")))
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [2], gap: []))
        #expect(table.consumers(of: "a").sorted() == [2])
    }

    @Test func leavingWhileSubscribeIsInFlightUnsubscribesOnceItLands() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        #expect(table.remove(id: 1, from: "a") == nil)
        #expect(table.subscribeConfirmed("a").outcome == .send(.unsubscribe("a")))
        #expect(table.unsubscribeConfirmed("a").outcome == Confirmation.none)
        #expect(table.consumerCounts.isEmpty)
    }

    @Test func reconnectingResubscribesEveryChannelAndReportsAGapToConfirmedConsumers() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "b")
        _ = table.subscribeConfirmed("b")
        _ = table.add(2, id: 2, to: "a")
        table.connectionLost()
        #expect(table.add(3, id: 3, to: "b").outcome == .wait)
        #expect(Array(table.consumers(of: "b")).isEmpty)
        #expect(table.connectionEstablished() == [.subscribe("a"), .subscribe("b")])
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [2], gap: []))
        #expect(table.subscribeConfirmed("b").outcome == .subscribed(confirm: [3], gap: [1]))
    }

    @Test func aLostConnectionForgetsTheCommandsInFlight() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        table.connectionLost()
        #expect(table.subscribeConfirmed("a").outcome == .protocolViolation)
    }

    @Test func aChannelAbandonedWhileDisconnectedIsNotResubscribed() {
        var table = subscribedTable(channel: "a", consumers: [1])
        _ = table.add(2, id: 2, to: "b")
        _ = table.subscribeConfirmed("b")
        table.connectionLost()
        #expect(table.remove(id: 1, from: "a") == nil)
        #expect(table.connectionEstablished() == [.subscribe("b")])
        #expect(table.consumerCounts == ["b": 1])
    }

    @Test func aChannelBeingUnsubscribedWhenTheConnectionDropsIsOnlyResubscribedForWaitingConsumers() {
        var table = subscribedTable(channel: "a", consumers: [1])
        _ = table.add(2, id: 2, to: "b")
        _ = table.subscribeConfirmed("b")
        _ = table.remove(id: 1, from: "a")
        _ = table.remove(id: 2, from: "b")
        _ = table.add(3, id: 3, to: "b")
        table.connectionLost()
        #expect(table.connectionEstablished() == [.subscribe("b")])
        #expect(table.subscribeConfirmed("b").outcome == .subscribed(confirm: [3], gap: []))
    }

    @Test func aRefusedSubscribeFailsTheChannelsConsumersAndForgetsIt() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        _ = table.add(2, id: 2, to: "a")
        #expect(table.commandFailed().outcome == .fail([1, 2]))
        #expect(table.consumerCounts.isEmpty)
        #expect(table.isConfirmed(id: 1, on: "a") == nil)
    }

    @Test func anErrorReplyBelongsToTheOldestUnconfirmedCommand() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        _ = table.add(2, id: 2, to: "b")
        #expect(table.commandFailed().outcome == .fail([1]))
        #expect(table.subscribeConfirmed("b").outcome == .subscribed(confirm: [2], gap: []))
        #expect(table.consumerCounts == ["b": 1])
    }

    @Test func aRefusedUnsubscribeDoesNotPutTheTableOutOfStepWithRedis() {
        var table = subscribedTable(channel: "a", consumers: [1])
        _ = table.remove(id: 1, from: "a")
        _ = table.add(2, id: 2, to: "a")
        // The waiting consumer needs the channel, whose state is now unclear: subscribe it again.
        #expect(table.commandFailed().outcome == .send(.subscribe("a")))
        // Redis confirms exactly the commands the table asked the subscriber to send, in order.
        #expect(table.add(3, id: 3, to: "c").outcome == .send(.subscribe("c")))
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [2], gap: []))
        #expect(table.subscribeConfirmed("c").outcome == .subscribed(confirm: [3], gap: []))
    }

    @Test func aRefusedUnsubscribeWithNobodyWaitingForgetsTheChannel() {
        var table = subscribedTable(channel: "a", consumers: [1])
        _ = table.remove(id: 1, from: "a")
        #expect(table.commandFailed().outcome == .none)
        #expect(table.consumerCounts.isEmpty)
    }

    @Test func aConfirmationOutOfOrderIsAProtocolViolation() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        _ = table.add(2, id: 2, to: "b")
        #expect(table.subscribeConfirmed("b").outcome == .protocolViolation)
    }

    @Test func aConfirmationOfTheWrongKindIsAProtocolViolation() {
        var table = connectedTable()
        _ = table.add(1, id: 1, to: "a")
        #expect(table.unsubscribeConfirmed("a").outcome == .protocolViolation)
    }

    @Test func aConfirmationOrErrorWithNothingPendingIsAProtocolViolation() {
        var table = connectedTable()
        #expect(table.subscribeConfirmed("a").outcome == .protocolViolation)
        #expect(table.unsubscribeConfirmed("a").outcome == .protocolViolation)
        #expect(table.commandFailed().outcome == .protocolViolation)
    }

    @Test func allConsumersListsEveryChannelsConsumers() {
        var table = subscribedTable(channel: "a", consumers: [1, 2])
        _ = table.add(3, id: 3, to: "b")
        #expect(table.allConsumers.sorted() == [1, 2, 3])
    }

    @Test func aThousandChannelsKeepTheirConsumersApart() {
        var table = connectedTable()
        let channels = (0..<1000).map { "channel-\($0)" }
        func members(_ index: Int) -> [Int] { (0..<3).map { index * 3 + $0 } }
        for (index, channel) in channels.enumerated() {
            for consumer in members(index) {
                _ = table.add(consumer, id: consumer, to: channel)
            }
        }
        for (index, channel) in channels.enumerated() {
            #expect(table.subscribeConfirmed(channel).outcome == .subscribed(confirm: members(index), gap: []))
        }
        for (index, channel) in channels.enumerated() {
            #expect(table.consumers(of: channel).sorted() == members(index))
        }
        #expect(table.consumerCounts == Dictionary(uniqueKeysWithValues: channels.map { ($0, 3) }))
    }

    @Test func aPingIsAnsweredInTurnWithTheCommandsAroundIt() {
        var table = connectedTable()
        #expect(table.add(1, id: 1, to: "a").outcome == .send(.subscribe("a")))
        #expect(table.pingSent() == .ping)
        #expect(table.add(2, id: 2, to: "b").outcome == .send(.subscribe("b")))
        // The pong cannot come before the confirmation of the SUBSCRIBE sent before it.
        let early = table.pongReceived()
        #expect(!early)
        #expect(table.subscribeConfirmed("a").outcome == .subscribed(confirm: [1], gap: []))
        let inTurn = table.pongReceived()
        #expect(inTurn)
        #expect(table.subscribeConfirmed("b").outcome == .subscribed(confirm: [2], gap: []))
        let unasked = table.pongReceived()
        #expect(!unasked)
    }

    @Test func aRefusedPingIsNotBlamedOnASubscription() {
        var table = connectedTable()
        _ = table.pingSent()
        _ = table.add(1, id: 1, to: "a")
        #expect(table.commandFailed().outcome == .pingRefused)
        #expect(table.commandFailed().outcome == .fail([1]))
    }

    @Test func aPingOutWhenTheConnectionIsLostIsForgotten() {
        var table = connectedTable()
        _ = table.pingSent()
        table.connectionLost()
        _ = table.connectionEstablished()
        let answered = table.pongReceived()
        #expect(!answered)
    }

    @Test func aConsumerIsFoundByItsIdOnItsChannel() {
        var table = connectedTable()
        _ = table.add(7, id: 1, to: "a")
        #expect(table.consumer(id: 1, on: "a") == 7)
        #expect(table.consumer(id: 1, on: "b") == nil)
        #expect(table.consumer(id: 2, on: "a") == nil)
    }

    private func connectedTable() -> Table {
        var table = Table()
        _ = table.connectionEstablished()
        return table
    }

    private func subscribedTable(channel: String, consumers: [Int]) -> Table {
        var table = connectedTable()
        for consumer in consumers {
            _ = table.add(consumer, id: consumer, to: channel)
        }
        _ = table.subscribeConfirmed(channel)
        return table
    }
}

/// Equatable mirrors of the table's actions; consumer lists are sorted, since the table keeps no order.
private enum Added: Equatable {
    case send(Table.Command)
    case wait
    case confirmed
}

private enum Confirmation: Equatable {
    case subscribed(confirm: [Int], gap: [Int])
    case send(Table.Command)
    case none
    case protocolViolation
}

private enum Failure: Equatable {
    case fail([Int])
    case send(Table.Command)
    case pingRefused
    case none
    case protocolViolation
}

extension SubscriptionTable<Int>.AddAction {
    fileprivate var outcome: Added {
        switch self {
        case .send(let command): .send(command)
        case .wait: .wait
        case .confirmed: .confirmed
        }
    }
}

extension SubscriptionTable<Int>.ConfirmationAction {
    fileprivate var outcome: Confirmation {
        switch self {
        case .subscribed(let confirm, let gap): .subscribed(confirm: confirm.sorted(), gap: gap.sorted())
        case .send(let command): .send(command)
        case .none: .none
        case .protocolViolation: .protocolViolation
        }
    }
}

extension SubscriptionTable<Int>.FailureAction {
    fileprivate var outcome: Failure {
        switch self {
        case .fail(let consumers): .fail(consumers.sorted())
        case .send(let command): .send(command)
        case .pingRefused: .pingRefused
        case .none: .none
        case .protocolViolation: .protocolViolation
        }
    }
}
