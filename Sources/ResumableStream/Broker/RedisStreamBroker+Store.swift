import NIOCore
import Redis

/// Durable streams in Redis: each step that reads and changes a stream's keys is one script, so
/// that the writer's fence, the log and the append channel always agree, and each costs one round
/// trip. Keys are `log, writer, ingest, sentinel`; the first five arguments are the append channel
/// and the times; a script's own arguments follow.
extension RedisStreamBroker: StreamStore {
    /// Shared by every script: the log's tail (does it exist, its length, its end if it has one),
    /// and ending a stream.
    private static func prelude(publish: String) -> String {
        """
        local log, writerKey, ingestKey, sentinel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
        local channel, lease, retention, reattach, doneExpiry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        local function tail()
          local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
          if #last == 0 then return false, 0, false end
          local id = last[1][1]
          local dash = string.find(id, '-', 1, true)
          local length = tonumber(string.sub(id, 1, dash - 1))
          if string.sub(id, dash + 1) == '2' then return true, length, last[1][2][2] end
          return true, length, false
        end
        local function endStream(length, outcome, done)
          redis.call('XADD', log, length .. '-2', 'e', outcome)
          redis.call('EXPIRE', log, retention)
          redis.call('DEL', writerKey, ingestKey)
          if done then redis.call('SET', sentinel, 'DONE', 'EX', doneExpiry) end
          redis.call('\(publish)', channel, 'e' .. length .. '\\n' .. outcome)
        end
        local function abandoned()
          return redis.call('EXISTS', writerKey) == 0 and redis.call('EXISTS', ingestKey) == 0
        end

        """
    }

    /// A log left by a producer that died unseen is ended as lost, and its id stays taken; unless
    /// the stream replaces whatever had the id, whose writer is then fenced off.
    private static func createScript(publish: String) -> String {
        prelude(publish: publish) + """
        if ARGV[8] == '1' then redis.call('DEL', log, writerKey, ingestKey) end
        local exists, length, ended = tail()
        if exists then
          if not ended and abandoned() then endStream(length, 'producer_lost', true)
          elseif ended then redis.call('SET', sentinel, 'DONE', 'EX', doneExpiry) end
          return 0
        end
        redis.call('XADD', log, '0-1', 'c', '')
        redis.call('EXPIRE', log, retention)
        redis.call('SET', writerKey, ARGV[6], 'EX', lease)
        if ARGV[7] == '1' then redis.call('SET', ingestKey, '1', 'EX', lease + reattach) end
        return 1
        """
    }

    /// A writer whose lease lapsed takes it back unless the stream ended or another took it.
    private static func appendScript(publish: String) -> String {
        prelude(publish: publish) + """
        local exists, length, ended = tail()
        if ended then return {2, length} end
        local current = redis.call('GET', writerKey)
        if current ~= ARGV[6] then
          if current then return {1, length} end
          redis.call('SET', writerKey, ARGV[6], 'EX', lease)
        end
        if tonumber(ARGV[7]) ~= length then return {3, length} end
        if ARGV[9] ~= '' then
          redis.call('XADD', log, ARGV[8] .. '-1', 'c', ARGV[9])
          if not exists then redis.call('EXPIRE', log, retention) end
          redis.call('\(publish)', channel, 'c' .. ARGV[7] .. '\\n' .. ARGV[9])
        end
        if ARGV[10] ~= '' then endStream(ARGV[8], ARGV[10], false) end
        return {0, tonumber(ARGV[8])}
        """
    }

    /// After its end the stream's sentinel is still renewed: its producer answers reference peers
    /// through its replay grace.
    private static func renewScript(publish: String) -> String {
        prelude(publish: publish) + """
        local exists, length, ended = tail()
        local value = redis.call('GET', sentinel)
        if value == 'DONE' then return 0 end
        if not ended then
          local current = redis.call('GET', writerKey)
          if current and current ~= ARGV[6] then return 0 end
          -- An absent writer key is taken back by the next append, not here: a producer that
          -- has just left its ingest to another must not take it back by renewing.
          if current then
            redis.call('EXPIRE', writerKey, lease)
            if ARGV[7] == '1' then redis.call('SET', ingestKey, '1', 'EX', lease + reattach) end
          end
          if exists then redis.call('EXPIRE', log, retention) end
        end
        if value then redis.call('EXPIRE', sentinel, lease) else redis.call('SET', sentinel, '1', 'EX', lease) end
        return 1
        """
    }

    private static func inspectScript(publish: String) -> String {
        prelude(publish: publish) + """
        local exists, length, ended = tail()
        if not exists then return {0, 0, redis.call('GET', sentinel) or ''} end
        if ended then return {2, length, ended} end
        if abandoned() then
          endStream(length, 'producer_lost', true)
          return {2, length, 'producer_lost'}
        end
        return {1, length, ''}
        """
    }

    private static func detachScript(publish: String) -> String {
        prelude(publish: publish) + """
        if redis.call('GET', writerKey) ~= ARGV[6] then return 0 end
        redis.call('DEL', writerKey)
        redis.call('SET', ingestKey, '1', 'EX', reattach)
        redis.call('EXPIRE', sentinel, reattach)
        return 1
        """
    }

    private static func cancelScript(publish: String) -> String {
        prelude(publish: publish) + """
        local exists, length, ended = tail()
        if not exists or ended or redis.call('EXISTS', writerKey) == 1 then return 0 end
        endStream(length, 'cancelled', true)
        return 1
        """
    }

    private static func claimScript(publish: String) -> String {
        prelude(publish: publish) + """
        local exists, length, ended = tail()
        if not exists then return {0, 0} end
        if ended then return {2, length} end
        if redis.call('EXISTS', writerKey) == 1 then return {3, length} end
        if redis.call('EXISTS', ingestKey) == 0 then
          endStream(length, 'producer_lost', true)
          return {2, length}
        end
        if tonumber(ARGV[7]) > length then return {4, length} end
        redis.call('SET', writerKey, ARGV[6], 'EX', lease)
        redis.call('SET', ingestKey, '1', 'EX', lease + reattach)
        redis.call('SET', sentinel, '1', 'EX', lease)
        return {1, length}
        """
    }

    /// The scripts, for one way of publishing: `PUBLISH`, or `SPUBLISH` on a cluster (where the
    /// append channel shares its stream's slot, as a script's channel must).
    struct Scripts: Sendable {
        let create, append, renew, inspect, detach, cancel, claim: RedisScript

        init(publish: String) {
            create = RedisScript(RedisStreamBroker.createScript(publish: publish))
            append = RedisScript(RedisStreamBroker.appendScript(publish: publish))
            renew = RedisScript(RedisStreamBroker.renewScript(publish: publish))
            inspect = RedisScript(RedisStreamBroker.inspectScript(publish: publish))
            detach = RedisScript(RedisStreamBroker.detachScript(publish: publish))
            cancel = RedisScript(RedisStreamBroker.cancelScript(publish: publish))
            claim = RedisScript(RedisStreamBroker.claimScript(publish: publish))
        }

        static let publishing = Scripts(publish: "PUBLISH")
        static let sharded = Scripts(publish: "SPUBLISH")
    }

    private var scripts: Scripts {
        keyLayout == .cluster ? .sharded : .publishing
    }

    private func run(_ script: RedisScript, _ keys: StoredStreamKeys, _ times: StoredStreamTimes, _ arguments: [RedisArgument]) async throws -> RedisReply {
        let common: [RedisArgument] = [
            .string(keys.appendChannel),
            .integer(times.leaseSeconds),
            .integer(times.retentionSeconds),
            .integer(times.ingestReattachSeconds),
            .integer(max(times.doneExpirySeconds, times.retentionSeconds)),
        ]
        return try await client.run(script, keys: [keys.log, keys.writer, keys.ingest, keys.sentinel], arguments: common + arguments)
    }

    /// A script's `{code, length}` answer.
    private func pair(_ reply: RedisReply) throws -> (code: Int, length: Int) {
        guard let elements = reply.array, elements.count >= 2, let code = elements[0].integer, let length = elements[1].integer else {
            throw ResumableStreamError.broker("a stream store script answered \(reply)")
        }
        return (code, length)
    }

    public func create(_ keys: StoredStreamKeys, writer: String, ingest: Bool, replacing: Bool, times: StoredStreamTimes) async throws -> Bool {
        try await run(scripts.create, keys, times, [.string(writer), .string(ingest ? "1" : "0"), .string(replacing ? "1" : "0")]).integer == 1
    }

    public func append(
        _ keys: StoredStreamKeys,
        writer: String,
        start: Int,
        end: Int,
        frame: String?,
        outcome: String?,
        times: StoredStreamTimes
    ) async throws -> StoreAppend {
        let reply = try await run(scripts.append, keys, times, [
            .string(writer), .integer(start), .integer(end), .string(frame ?? ""), .string(outcome ?? ""),
        ])
        let (code, length) = try pair(reply)
        switch code {
        case 0: return .stored(length: length)
        case 1: return .fenced(length: length)
        case 2: return .ended(length: length)
        default: return .elsewhere(length: length)
        }
    }

    public func renew(_ keys: StoredStreamKeys, writer: String, ingest: Bool, times: StoredStreamTimes) async throws -> Bool {
        try await run(scripts.renew, keys, times, [.string(writer), .string(ingest ? "1" : "0")]).integer == 1
    }

    public func read(_ keys: StoredStreamKeys, after offset: Int, count: Int) async throws -> [(id: String, field: String, value: String)] {
        let reply = try await client.send("XRANGE", .string(keys.log), .string(StoredLog.readStart(from: offset)), "+", "COUNT", .integer(count))
        guard let entries = reply.array else { throw ResumableStreamError.broker("XRANGE answered \(reply)") }
        return try entries.map { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string, let fields = parts[1].array,
                fields.count == 2, let field = fields[0].string, let value = fields[1].string
            else { throw ResumableStreamError.broker("XRANGE answered an entry \(entry)") }
            return (id, field, value)
        }
    }

    public func inspect(_ keys: StoredStreamKeys, times: StoredStreamTimes) async throws -> StoredState {
        let reply = try await run(scripts.inspect, keys, times, [])
        let (code, length) = try pair(reply)
        let text = reply.array.flatMap { $0.count > 2 ? $0[2].string : nil } ?? ""
        switch code {
        case 0: return .none(sentinel: text.isEmpty ? .none : text == WireProtocol.doneValue ? .finished : .live)
        case 1: return .live(length: length)
        default: return .ended(length: length, outcome: text)
        }
    }

    public func detach(_ keys: StoredStreamKeys, writer: String, times: StoredStreamTimes) async throws {
        _ = try await run(scripts.detach, keys, times, [.string(writer)])
    }

    public func cancel(_ keys: StoredStreamKeys, times: StoredStreamTimes) async throws -> Bool {
        try await run(scripts.cancel, keys, times, []).integer == 1
    }

    public func claim(_ keys: StoredStreamKeys, writer: String, offset: Int, times: StoredStreamTimes) async throws -> StoreClaim {
        let (code, length) = try pair(try await run(scripts.claim, keys, times, [.string(writer), .integer(offset)]))
        switch code {
        case 0: return .none
        case 1: return .claimed(length: length)
        case 2: return .ended(length: length)
        case 3: return .busy(length: length)
        default: return .beyondLength(length: length)
        }
    }
}
