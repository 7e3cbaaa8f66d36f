import CHiredis
import NIOCore

/// Encodes a command with hiredis's argv formatter, which takes explicit lengths and so is binary safe.
enum HiredisCommandEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        precondition(!arguments.isEmpty, "a Redis command needs at least its name")
        // hiredis wants one pointer and one length per argument, so the arguments are laid out in
        // one contiguous scratch buffer and pointed into; the two arrays live on the stack.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: arguments.count) { lengths in
            var total = 0
            for (index, argument) in arguments.enumerated() {
                lengths[index] = argument.byteCount
                total += lengths[index]
            }
            var scratch = ByteBufferAllocator().buffer(capacity: total + 1)
            for argument in arguments {
                argument.write(to: &scratch)
            }
            // One byte past the arguments, so that the buffer is never empty and every argument,
            // zero-length ones included, has a valid address.
            scratch.writeInteger(UInt8(0))

            scratch.withUnsafeReadableBytes { bytes in
                guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) else {
                    preconditionFailure("a non-empty buffer has an address")
                }
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: arguments.count) { pointers in
                    var offset = 0
                    for index in 0..<arguments.count {
                        pointers[index] = UnsafePointer(base + offset)
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
                    buffer.writeBytes(UnsafeRawBufferPointer(start: command, count: Int(length)))
                }
            }
        }
    }
}
