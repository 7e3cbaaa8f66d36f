import CHiredis
import NIOCore

/// Encodes a command with hiredis's argv formatter, which takes explicit lengths and so is binary safe.
enum HiredisCommandEncoder {
    /// The RESP encoding of `arguments`, in a buffer of its own: for commands sent one at a time
    /// (connection setup, the subscriber's SUBSCRIBE and UNSUBSCRIBE).
    static func encode(_ arguments: [RedisArgument], allocator: ByteBufferAllocator) -> ByteBuffer {
        withEncoded(arguments) { allocator.buffer(bytes: $0) }
    }

    /// Appends the RESP encoding of `arguments` to `buffer`.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        withEncoded(arguments) { _ = buffer.writeBytes($0) }
    }

    /// Calls `body` with the RESP encoding of `arguments`, which is valid only during the call: the
    /// client copies it straight into the batch that goes to the socket, with no buffer of its own.
    static func withEncoded<Result>(_ arguments: [RedisArgument], _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        precondition(!arguments.isEmpty, "a Redis command needs at least its name")
        // hiredis wants one pointer and one length per argument, so the arguments are laid out in
        // one contiguous scratch area and pointed into. All three live on the stack when small.
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: arguments.count) { lengths in
            var total = 0
            for (index, argument) in arguments.enumerated() {
                lengths[index] = argument.byteCount
                total += lengths[index]
            }
            // One byte past the arguments, so that the area is never empty and every argument,
            // zero-length ones included, has a valid address.
            return withUnsafeTemporaryAllocation(byteCount: total + 1, alignment: 1) { scratch in
                guard let base = scratch.baseAddress else {
                    preconditionFailure("a non-empty allocation has an address")
                }
                return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: arguments.count) { pointers in
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        argument.copy(to: UnsafeMutableRawBufferPointer(start: base + offset, count: lengths[index]))
                        pointers[index] = UnsafePointer((base + offset).assumingMemoryBound(to: CChar.self))
                        offset += lengths[index]
                    }
                    var command: UnsafeMutablePointer<CChar>?
                    let length = chiredis_format_command_argv(
                        &command, Int32(arguments.count), pointers.baseAddress, lengths.baseAddress
                    )
                    // hiredis fails only when malloc does; there is nothing to recover then.
                    guard length >= 0, let command else {
                        fatalError("hiredis could not allocate a command of \(total) bytes")
                    }
                    defer { redisFreeCommand(command) }
                    return body(UnsafeRawBufferPointer(start: command, count: Int(length)))
                }
            }
        }
    }
}
