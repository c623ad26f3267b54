/// Stops the program with `message` when `condition` is false, in every build configuration.
///
/// Neurite checks API misuse (mismatched shapes, out-of-range axes) with this instead of
/// `precondition`, because in optimised builds `precondition` traps *without* printing its
/// message, and the message, naming both shapes, is the whole point: it is what a user sees.
/// The condition is evaluated in `-O` builds as `precondition`'s is; only `-Ounchecked`
/// (which removes `precondition` too) would still keep it, by design of `fatalError`.
@inlinable
@inline(__always)
public func neuritePrecondition(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if _slowPath(!condition()) {
        fatalError(message(), file: file, line: line)
    }
}
