import AmalgamCheckpoint
import AmalgamCore
import Dispatch
import Foundation

/// How far a merge has got, for progress displays.
public struct MergeProgress: Sendable {
    public let tensorsDone: Int
    public let tensorsTotal: Int
    /// Bytes read and written so far.
    public let bytesDone: Int
    public let bytesTotal: Int
    public let secondsElapsed: Double
}

/// Options of one merge run.
public struct MergeOptions: Sendable {
    public var outputPath: String
    public var maxShardSize: Int
    public var overwrite: Bool
    /// Tensors merged at once (each holds its inputs in f32); defaults to the core count.
    public var concurrentTensors: Int
    public var progress: (@Sendable (MergeProgress) -> Void)?
    /// Elements per chunk when a method merges a tensor in chunks (rounded up to a multiple of
    /// `Sparsification.randomChunk`, so random draws keep their streams); 0 merges every tensor whole.
    /// The result does not depend on it beyond the rounding of f64 sums.
    public var chunkElements: Int
    /// `machine` (default): the weights are on disk before the folder takes its name; `process`: the
    /// merge does not wait for the disk (for outputs that are cheap to remake, or when the kernel's
    /// write-back is enough).
    public var durability: Durability

    public init(outputPath: String, maxShardSize: Int = 5_000_000_000, overwrite: Bool = false,
                concurrentTensors: Int = ProcessInfo.activeProcessorCountCached, chunkElements: Int = 1 << 18,
                durability: Durability = .machine, progress: (@Sendable (MergeProgress) -> Void)? = nil) {
        self.outputPath = outputPath
        self.durability = durability
        self.maxShardSize = maxShardSize
        self.overwrite = overwrite
        self.concurrentTensors = concurrentTensors
        self.chunkElements = chunkElements
        self.progress = progress
    }
}

/// Runs a plan: for each output tensor, map its inputs, merge, write, release — so memory holds only
/// the tensors in flight, whatever the model size. The folder appears only when complete.
public struct MergeExecutor: Sendable {
    public let plan: MergePlan

    public init(plan: MergePlan) { self.plan = plan }

    /// Merges into `options.outputPath`.
    public func run(_ options: MergeOptions) throws(MergeError) {
        let output: AtomicOutput
        do {
            output = try AtomicOutput(path: options.outputPath, overwrite: options.overwrite)
            try output.makeWorkingDirectory()
        } catch { throw .checkpoint(.file(error)) }
        do throws(MergeError) {
            try writeTensors(into: output.workingPath, options)
            try writeCompanions(into: output.workingPath)
            do { try output.commit() } catch { throw MergeError.checkpoint(.file(error)) }
        } catch {
            output.abandon()
            // A full disk is reported for the output the user named, with the space the merge needs and
            // what is free once the partial output is gone.
            if case .checkpoint(.file(.noSpace)) = error {
                throw .checkpoint(.file(.noSpace(path: output.finalPath, needed: plan.outputBytes, free: freeBytes(near: output.finalPath))))
            }
            throw error
        }
    }

    private func writeTensors(into directory: String, _ options: MergeOptions) throws(MergeError) {
        let infos = plan.steps.map { TensorInfo(name: $0.outputName, dtype: $0.outputDType, shape: $0.outputShape) }
        let writer: CheckpointWriter
        do { writer = try CheckpointWriter(directory: directory, tensors: infos, maxShardSize: options.maxShardSize,
                                            durability: options.durability) } catch {
            throw .checkpoint(error)
        }
        let state = RunState(total: plan.steps.count, bytesTotal: plan.inputBytes + plan.outputBytes)
        let threads = max(1, options.concurrentTensors)
        let chunking = Self.chunking(plan, chunkElements: options.chunkElements, threads: threads)
        // A chunked method spreads each tensor over every core, one tensor at a time; otherwise each
        // core merges whole tensors.
        let workers = chunking != nil ? 1 : max(1, min(threads, plan.steps.count))
        let plan = self.plan
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let i = state.next() {
                do {
                    let bytes = try Self.execute(plan.steps[i], plan: plan, writer: writer, chunking: chunking)
                    if let p = state.finished(bytes: bytes), let progress = options.progress { progress(p) }
                } catch {
                    state.fail(error)
                }
            }
        }
        if let error = state.error { throw error }
        do { try writer.finish() } catch { throw .checkpoint(error) }
    }

    /// How a chunked method splits tensors.
    struct Chunking {
        let elements: Int
        let threads: Int
    }

    /// How `plan`'s tensors are split, if its method merges in chunks (`chunkElements` rounded up to a
    /// multiple of `Sparsification.randomChunk`, so random draws keep their streams); nil merges whole tensors.
    /// mergekit's arithmetic merges whole tensors: its rounding points are in the whole-tensor methods only.
    static func chunking(_ plan: MergePlan, chunkElements: Int, threads: Int) -> Chunking? {
        guard chunkElements > 0, plan.method is any ChunkedMergeMethod, plan.arithmetic == .exact else { return nil }
        let randomChunk = Sparsification.randomChunk
        return Chunking(elements: (chunkElements + randomChunk - 1) / randomChunk * randomChunk, threads: max(1, threads))
    }

    /// Merges one output tensor and writes it; returns the bytes read and written.
    static func execute(_ step: MergePlan.Step, plan: MergePlan, writer: CheckpointWriter, chunking: Chunking?) throws(MergeError) -> Int {
        if !step.copiesInput, let chunking, let kernel = try chunkedKernel(step, plan: plan) {
            return try executeChunked(step, plan: plan, writer: writer, kernel: kernel,
                                      chunkElements: chunking.elements, threads: chunking.threads)
        }
        let (output, read) = try compute(step, plan: plan)
        switch output {
        case let .copied(t, input):
            do { try writer.write(step.outputName, tensor: t) } catch { throw .checkpoint(error) }
            plan.release(input)
            return 2 * t.byteCount
        case let .merged(values):
            let bytes = values.count * step.outputDType.byteSize
            do {
                if step.outputDType == .f32 {
                    let r: Result<Void, CheckpointError> = values.withUnsafeBytes { b in
                        Result { () throws(CheckpointError) in try writer.write(step.outputName, bytes: b) }
                    }
                    try r.get()
                } else {
                    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
                    defer { out.deallocate() }
                    values.withUnsafeBufferPointer { Convert.fromFloat32($0, to: step.outputDType, into: out) }
                    try writer.write(step.outputName, bytes: UnsafeRawBufferPointer(rebasing: out[0..<bytes]))
                }
            } catch {
                throw .checkpoint(error)
            }
            return read + bytes
        }
    }

    /// One output tensor's content, before it is written or kept.
    enum StepOutput {
        /// An input taken unchanged (the caller releases it once used).
        case copied(Tensor, MergePlan.Input)
        /// The method's f32 result, in the step's output shape.
        case merged([Float])
    }

    /// Reads one step's inputs and merges them (or picks the copied input); returns the bytes read.
    /// Writing to disk and merging into memory share it, so both give the same numbers.
    static func compute(_ step: MergePlan.Step, plan: MergePlan) throws(MergeError) -> (StepOutput, read: Int) {
        var inputs: [MergeInput] = []
        var read = 0
        do {
            if step.copiesInput {
                let input = step.inputs[step.baseIndex ?? 0]
                let t = try plan.read(input)
                return (.copied(t, input), t.byteCount)
            }
            for input in step.inputs {
                let t = try plan.read(input)
                read += input.info.byteCount
                var values = t.floats()
                if let compute = plan.computeDType, compute != t.dtype, compute.byteSize < t.dtype.byteSize {
                    roundInPlace(&values, to: compute)
                }
                plan.release(input)
                inputs.append(MergeInput(model: plan.models[input.model].reference, values: values, shape: t.shape, parameters: input.parameters))
            }
        } catch {
            throw .checkpoint(error)
        }
        if step.permutesVocabulary, let vocabulary = plan.vocabulary {
            let width = step.outputShape[1]
            let permuted = vocabulary.permute(inputs: zip(step.inputs, inputs).map { ($0.model, $1.values, $1.shape[0]) },
                                              width: width, base: step.baseIndex.map { step.inputs[$0].model })
            inputs = zip(inputs, permuted).map { MergeInput(model: $0.model, values: $1, shape: step.outputShape, parameters: $0.parameters) }
        }
        let context = MergeContext(tensorName: step.outputName, baseIndex: step.baseIndex, parameters: step.parameters,
                                   seed: step.seed, isEmbedding: step.isEmbedding, rounding: plan.rounding(for: step))
        let (values, shape) = try plan.method.merge(inputs, context: context)
        guard shape == step.outputShape, values.count == Tensor.elementCount(shape) else {
            throw .method(method: plan.method.name, tensor: step.outputName,
                          reason: "produced shape \(shape) but the plan expected \(step.outputShape)")
        }
        return (.merged(values), read)
    }

    /// The method's chunked kernel for this step, when the step allows one: floating-point inputs of the
    /// output's shape, no vocabulary to re-index, at least one element.
    static func chunkedKernel(_ step: MergePlan.Step, plan: MergePlan) throws(MergeError) -> (any ChunkedKernel)? {
        guard plan.arithmetic == .exact, let method = plan.method as? any ChunkedMergeMethod, !step.permutesVocabulary,
              Tensor.elementCount(step.outputShape) > 0,
              step.inputs.allSatisfy({ $0.info.shape == step.outputShape && [.bf16, .f16, .f32].contains($0.info.dtype) })
        else { return nil }
        let inputs = step.inputs.map {
            MergeInput(model: plan.models[$0.model].reference, values: [], shape: $0.info.shape, parameters: $0.parameters)
        }
        let context = MergeContext(tensorName: step.outputName, baseIndex: step.baseIndex, parameters: step.parameters,
                                   seed: step.seed, isEmbedding: step.isEmbedding)
        return try method.chunkedKernel(inputs, context: context)
    }

    /// Writes config.json, the tokenizer and generation files of the donor model, the config used and a
    /// model card.
    private func writeCompanions(into directory: String) throws(MergeError) {
        do {
            try writeFileAtomically(plan.outputConfig.jsonText(), to: directory + "/config.json")
            let donor = plan.models[plan.vocabulary?.tokenizerDonor ?? plan.donor]
            try donor.writeCompanions(into: directory)
            try TokenizerFiles.write(plan: plan, into: directory)
            try writeFileAtomically(plan.config.sourceText, to: directory + "/mergekit_config.yml")
            try writeFileAtomically(ModelCard.text(for: plan), to: directory + "/README.md")
        } catch let error as FileError {
            throw .checkpoint(.file(error))
        } catch let error as MergeError {
            throw error
        } catch {
            throw .checkpoint(.file(.cannotWrite(path: directory, reason: "\(error)")))
        }
    }
}

/// Rounds f32 values to `dtype` and back, as loading them in that dtype would.
func roundInPlace(_ values: inout [Float], to dtype: DType) {
    switch dtype {
    case .bf16: for i in values.indices { values[i] = BFloat16.round(values[i]) }
    case .f16: for i in values.indices { values[i] = Float(Float16(values[i])) }
    default: break
    }
}

/// Shared bookkeeping of the worker threads.
private final class RunState: @unchecked Sendable {
    private let lock = Lock()
    private var nextIndex = 0
    private var done = 0
    private var bytes = 0
    private(set) var error: MergeError?
    let total: Int
    let bytesTotal: Int
    let start = DispatchTime.now()

    init(total: Int, bytesTotal: Int) {
        self.total = total
        self.bytesTotal = bytesTotal
    }

    func next() -> Int? {
        lock.withLock {
            guard error == nil, nextIndex < total else { return nil }
            defer { nextIndex += 1 }
            return nextIndex
        }
    }

    func finished(bytes n: Int) -> MergeProgress? {
        lock.withLock {
            done += 1
            bytes += n
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            return MergeProgress(tensorsDone: done, tensorsTotal: total, bytesDone: bytes, bytesTotal: bytesTotal, secondsElapsed: seconds)
        }
    }

    func fail(_ e: Error) {
        lock.withLock {
            if error == nil { error = (e as? MergeError) ?? .method(method: "?", tensor: "?", reason: "\(e)") }
        }
    }
}
