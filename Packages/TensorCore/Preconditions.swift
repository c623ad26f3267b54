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

/// Stops the program with `message`, in every build configuration: `neuritePrecondition(false, message)`
/// for the branches that cannot go on (an unbuilt layer, a backward pass without a training-mode forward).
///
/// Returning `Never`, it ends a `guard … else` on its own, with no `fatalError()` after it. As with
/// `neuritePrecondition`, the message is printed in optimised builds too, which `preconditionFailure`'s is not.
@inlinable
@inline(__always)
public func neuritePreconditionFailure(
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) -> Never {
    fatalError(message(), file: file, line: line)
}
