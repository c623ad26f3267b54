import CMPI
import Foundation
import TensorCore

/// A failure of the distributed runtime: MPI could not start, a collective failed, or an
/// argument does not fit the communicator (a root outside the ranks, counts that differ between
/// ranks). The message says which call failed and why (MPI's own error text included).
public struct DistributedError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public enum Kind: String, Sendable, Equatable {
        /// MPI could not be initialised (not started by `mpirun`, or a broken installation).
        case initialization
        /// A collective operation failed (a peer is gone, the network failed).
        case communication
        /// An argument does not fit: a root rank out of range, counts that differ across ranks.
        case invalidArgument
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// What failed and why.
    public var message: String

    /// An error of `kind`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message, prefixed with the kind.
    public var description: String { "\(kind.rawValue): \(message)" }
}

/// How ``Communicator/allreduce(_:_:)-(Tensor,_)`` combines the ranks' values, element by element.
public enum ReduceOperation: Sendable, Equatable {
    /// The sum over the ranks.
    case sum
    /// The sum divided by the number of ranks.
    case mean
}

/// The processes of one MPI job (`MPI_COMM_WORLD`): their number, this one's rank, and the
/// collective operations data-parallel training needs, over Open MPI.
///
/// ```swift
/// Communicator.run { world in          // MPI_Init; on an error: print it, end the whole job
///     var weights: [Float] = world.rank == 0 ? trained : Array(repeating: 0, count: n)
///     try world.broadcast(&weights, root: 0)
///     var gradient = localGradient
///     try world.allreduce(&gradient, .mean)
/// }
/// ```
///
/// Every method is a *collective*: each rank calls it, in the same order, with the same counts;
/// a rank that never arrives leaves the others waiting. So a rank that fails must end the whole
/// job rather than return: ``abort(code:)`` (what ``run(_:)`` does on an error). Open MPI errors
/// come back as ``DistributedError`` (the communicator returns error codes instead of aborting).
///
/// Calls must come from one thread (MPI is initialised at `MPI_THREAD_FUNNELED`); the kernels
/// may use the thread pool in between. Costs: a collective over `n` floats moves about `2n`
/// floats per rank (ring or recursive-doubling algorithms, chosen by Open MPI), and takes a few
/// microseconds of latency between processes of one machine, tens between machines.
public final class Communicator: @unchecked Sendable {
    /// This process's rank, in `0..<size`.
    public let rank: Int
    /// The number of processes in the job.
    public let size: Int

    private let comm: MPI_Comm

    private init(comm: MPI_Comm, rank: Int, size: Int) {
        self.comm = comm
        self.rank = rank
        self.size = size
    }

    private static let worldResult: Result<Communicator, DistributedError> = Result { () throws(DistributedError) -> Communicator in
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let status = MPI_Init_thread(nil, nil, neurite_mpi_thread_funneled(), &provided)
            guard status == neurite_mpi_success() else {
                throw DistributedError(.initialization, "MPI_Init_thread failed: \(errorString(status))")
            }
        }
        let world = neurite_mpi_comm_world()!
        // Errors come back as codes (and become DistributedError) instead of aborting the job.
        MPI_Comm_set_errhandler(world, neurite_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        return Communicator(comm: world, rank: Int(rank), size: Int(size))
    }

    /// The communicator of every process of the job, initialising MPI on the first call (later
    /// calls return the same one). Outside `mpirun`, Open MPI runs the process as a job of one.
    /// - Throws: ``DistributedError`` (`.initialization`) when MPI cannot start.
    public static func world() throws -> Communicator {
        try worldResult.get()
    }

    /// Runs `body` with the world communicator, then finalises MPI. If anything throws (MPI's
    /// start, or `body`), prints `rank R of N: <error>` to standard error and ends the whole job
    /// with exit code 1 (``abort(code:)``), so no other rank is left waiting in a collective.
    /// The way a program of several ranks should be written.
    public static func run(_ body: (Communicator) throws -> Void) {
        let world: Communicator
        do {
            world = try Communicator.world()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
        do {
            try body(world)
        } catch {
            FileHandle.standardError.write(Data("rank \(world.rank) of \(world.size): error: \(error)\n".utf8))
            world.abort(code: 1)
        }
        world.finalize()
    }

    /// Ends every process of the job at once (`MPI_Abort`), with exit code `code`: what a rank
    /// that cannot go on must do, since the others would wait for it forever.
    public func abort(code: Int32 = 1) -> Never {
        MPI_Abort(comm, code)
        exit(code)  // MPI_Abort does not return; this is for the type checker and a broken MPI
    }

    /// Shuts MPI down (`MPI_Finalize`): a collective, called once by every rank at the end of a
    /// successful run (``run(_:)`` does). No call may follow.
    public func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    // MARK: Collectives

    /// Waits until every rank has called it.
    /// - Throws: ``DistributedError`` (`.communication`) when MPI fails.
    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    /// Replaces `values` on every rank by `root`'s (same count on every rank).
    /// - Throws: ``DistributedError``: `.invalidArgument` for a root outside `0..<size`,
    ///   `.communication` when MPI fails.
    public func broadcast(_ values: inout [Float], root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Replaces `tensor`'s elements on every rank by `root`'s (same shape on every rank).
    /// - Throws: as the array form.
    public func broadcast(_ tensor: inout Tensor, root: Int) throws {
        try tensor.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Replaces `values` element by element by their sum (or mean) over the ranks, the same on
    /// every rank. Sums are added in an order MPI chooses, so they may differ from a
    /// sequential sum in the last bits, but every rank gets the same bits.
    /// - Throws: ``DistributedError`` (`.communication`) when MPI fails.
    public func allreduce(_ values: inout [Float], _ operation: ReduceOperation = .sum) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, operation) }
    }

    /// ``allreduce(_:_:)`` on a tensor's elements (same shape on every rank).
    public func allreduce(_ tensor: inout Tensor, _ operation: ReduceOperation = .sum) throws {
        try tensor.withUnsafeMutableBufferPointer { try allreduce($0, operation) }
    }

    /// ``allreduce(_:_:)`` in Float64 (losses, counts, statistics).
    public func allreduce(_ values: inout [Double], _ operation: ReduceOperation = .sum) throws {
        try values.withUnsafeMutableBufferPointer { buffer in
            try chunked(buffer.count) { offset, count in
                try check(MPI_Allreduce(neurite_mpi_in_place(), buffer.baseAddress! + offset, count,
                                        neurite_mpi_double(), neurite_mpi_sum(), comm), "MPI_Allreduce")
            }
            if operation == .mean { for i in buffer.indices { buffer[i] /= Double(size) } }
        }
    }

    /// Every rank's `values`, concatenated in rank order (`size * values.count` of them).
    /// - Throws: ``DistributedError``: `.invalidArgument` when the ranks give different counts
    ///   (checked with one extra small collective), `.communication` when MPI fails.
    public func allgather(_ values: [Float]) throws -> [Float] {
        try checkSameCount(values.count, "allgather")
        return try allgatherUnchecked(values, type: neurite_mpi_float())
    }

    /// ``allgather(_:)`` in Float64.
    public func allgather(_ values: [Double]) throws -> [Double] {
        try checkSameCount(values.count, "allgather")
        return try allgatherUnchecked(values, type: neurite_mpi_double())
    }

    // MARK: Buffers (for the strategy)

    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        guard root >= 0 && root < size else {
            throw DistributedError(.invalidArgument, "broadcast from root \(root), but the ranks are 0..<\(size)")
        }
        try chunked(buffer.count) { offset, count in
            try check(MPI_Bcast(buffer.baseAddress! + offset, count, neurite_mpi_float(), Int32(root), comm), "MPI_Bcast")
        }
    }

    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation) throws {
        try chunked(buffer.count) { offset, count in
            try check(MPI_Allreduce(neurite_mpi_in_place(), buffer.baseAddress! + offset, count,
                                    neurite_mpi_float(), neurite_mpi_sum(), comm), "MPI_Allreduce")
        }
        if operation == .mean {
            let scale = 1 / Float(size)
            for i in buffer.indices { buffer[i] *= scale }
        }
    }

    /// Float64 allgather without the count check: for callers whose counts agree by construction.
    func allgatherUnchecked(_ values: [Double]) throws -> [Double] {
        try allgatherUnchecked(values, type: neurite_mpi_double())
    }

    /// Allgather without the count check.
    private func allgatherUnchecked<T: BinaryFloatingPoint>(_ values: [T], type: MPI_Datatype) throws -> [T] {
        guard !values.isEmpty else { return [] }
        guard values.count <= Int(Int32.max) / Swift.max(size, 1) else {
            throw DistributedError(.invalidArgument, "allgather of \(values.count) values from \(size) ranks exceeds MPI's 32-bit counts")
        }
        var result = [T](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { send in
            try result.withUnsafeMutableBufferPointer { receive in
                try check(MPI_Allgather(send.baseAddress, Int32(values.count), type,
                                        receive.baseAddress, Int32(values.count), type, comm), "MPI_Allgather")
            }
        }
        return result
    }

    private func checkSameCount(_ count: Int, _ operation: String) throws {
        let counts = try allgatherUnchecked([Double(count)], type: neurite_mpi_double())
        if let other = counts.firstIndex(where: { Int($0) != count }) {
            throw DistributedError(.invalidArgument,
                                   "\(operation): rank \(rank) gives \(count) values but rank \(other) gives \(Int(counts[other]))")
        }
    }

    /// Runs `body` over pieces of at most 2^30 elements: MPI counts are 32-bit.
    private func chunked(_ total: Int, _ body: (Int, Int32) throws -> Void) throws {
        let piece = 1 << 30
        var offset = 0
        while offset < total {
            let count = Swift.min(piece, total - offset)
            try body(offset, Int32(count))
            offset += count
        }
    }

    private func check(_ status: Int32, _ call: String) throws {
        guard status != neurite_mpi_success() else { return }
        throw DistributedError(.communication, "\(call) failed on rank \(rank) of \(size): \(Communicator.errorString(status))")
    }

    private static func errorString(_ status: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(neurite_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(status, &buffer, &length)
        let text = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self) + " (MPI error \(status))"
    }
}
