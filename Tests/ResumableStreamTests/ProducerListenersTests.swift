@testable import ResumableStream
import Testing

struct ProducerListenersTests {
    private func resume(_ listenerId: String, skip: Int = 0, endReasons: Bool = false) -> WireProtocol.Request {
        .resume(listenerId: listenerId, skip: skip, endReasons: endReasons)
    }

    @Test func startsProducingWithoutListeners() {
        let listeners = ProducerListeners()
        #expect(listeners.phase == .producing)
        #expect(listeners.listeners.isEmpty)
    }

    @Test func answersANewListener() {
        var listeners = ProducerListeners()
        #expect(listeners.received(resume("a", skip: 3, endReasons: true)) == .answer(listenerId: "a", skip: 3, endReasons: true))
        #expect(listeners.listeners == ["a"])
    }

    @Test func answersDifferentListeners() {
        var listeners = ProducerListeners()
        #expect(listeners.received(resume("a")) == .answer(listenerId: "a", skip: 0, endReasons: false))
        #expect(listeners.received(resume("b")) == .answer(listenerId: "b", skip: 0, endReasons: false))
    }

    @Test func ignoresARepeatedListenerWhileItIsAnswered() {
        var listeners = ProducerListeners()
        _ = listeners.received(resume("a"))
        #expect(listeners.received(resume("a", skip: 5)) == .ignore)
    }

    @Test func answersAListenerAgainAfterItEnded() {
        var listeners = ProducerListeners()
        _ = listeners.received(resume("a"))
        listeners.listenerEnded("a")
        #expect(listeners.listeners.isEmpty)
        #expect(listeners.received(resume("a", skip: 5)) == .answer(listenerId: "a", skip: 5, endReasons: false))
    }

    @Test func cancelsWhileProducing() {
        var listeners = ProducerListeners()
        #expect(listeners.received(.cancel) == .cancel)
    }

    @Test func sourceEndedStartsReplaying() {
        var listeners = ProducerListeners()
        listeners.sourceEnded()
        #expect(listeners.phase == .replaying)
    }

    @Test func answersResumesWhileReplaying() {
        var listeners = ProducerListeners()
        listeners.sourceEnded()
        #expect(listeners.received(resume("a", skip: 1)) == .answer(listenerId: "a", skip: 1, endReasons: false))
    }

    @Test func cancelWhileReplayingEndsTheGrace() {
        var listeners = ProducerListeners()
        listeners.sourceEnded()
        #expect(listeners.received(.cancel) == .cancel)
    }

    @Test func ignoresEverythingAfterClose() {
        var listeners = ProducerListeners()
        listeners.sourceEnded()
        listeners.close()
        #expect(listeners.phase == .closed)
        #expect(listeners.received(resume("a")) == .ignore)
        #expect(listeners.received(.cancel) == .ignore)
    }

    @Test func closeWhileProducingIgnoresEverything() {
        var listeners = ProducerListeners()
        listeners.close()
        #expect(listeners.received(resume("a")) == .ignore)
        #expect(listeners.received(.cancel) == .ignore)
    }

    @Test func sourceEndedAfterCloseStaysClosed() {
        var listeners = ProducerListeners()
        listeners.close()
        listeners.sourceEnded()
        #expect(listeners.phase == .closed)
    }
}
