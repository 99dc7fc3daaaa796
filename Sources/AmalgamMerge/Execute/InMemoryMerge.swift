import AmalgamCheckpoint
import AmalgamCore
import Dispatch
import Foundation

/// Merged tensors held in memory, in the plan's output dtypes: a `TensorSource` an engine can load like a
/// checkpoint on disk, for evaluating a merge without writing it.
public final class InMemoryCheckpoint: TensorSource, @unchecked Sendable {
    public let path: String
    public let tensorInfos: [TensorInfo]
    private let tensors: [String: Tensor]

    /// Tensors `tensors` listed in `infos` order, named after `path` in messages.
    public init(path: String, infos: [TensorInfo], tensors: [String: Tensor]) {
        self.path = path
        tensorInfos = infos
        self.tensors = tensors
    }

    public func info(_ name: String) -> TensorInfo? { tensors[name].map { TensorInfo(name: name, dtype: $0.dtype, shape: $0.shape) } }

    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let t = tensors[name] else { throw .tensorNotFound(path: path, tensor: name) }
        return t
    }
}

/// A merge run into memory: the merged tensors, the output `config.json` and the donor's tokenizer files.
public struct MergedModel: Sendable {
    public let checkpoint: InMemoryCheckpoint
    /// The `config.json` the merge would write.
    public let config: ModelConfig
    /// `tokenizer.json`, `tokenizer_config.json` and `generation_config.json` as the merge would write
    /// them (the donor's, with a merged vocabulary when the config sets `tokenizer_source`), by name.
    public let companionTexts: [String: String]

    /// Runs `plan` with the executor's per-tensor path (so the numbers are those `amalgam merge` writes),
    /// `concurrentTensors` tensors at a time; each tensor depends only on its inputs, so the result does
    /// not depend on the thread count.
    public init(plan: MergePlan, concurrentTensors: Int = ProcessInfo.activeProcessorCountCached,
                progress: (@Sendable (Int, Int) -> Void)? = nil) throws(MergeError) {
        let steps = plan.steps
        let results = ResultSlots(count: steps.count)
        // The same split as `amalgam merge` (its default chunk size), so the numbers are the same bytes.
        let chunking = MergeExecutor.chunking(plan, chunkElements: MergeOptions(outputPath: "").chunkElements, threads: concurrentTensors)
        let workers = chunking != nil ? 1 : max(1, min(concurrentTensors, steps.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let i = results.claim() {
                do {
                    let step = steps[i]
                    if !step.copiesInput, let chunking, let kernel = try MergeExecutor.chunkedKernel(step, plan: plan) {
                        let tensor = Tensor(zeros: step.outputDType, shape: step.outputShape)
                        let address = UInt(bitPattern: tensor.storage.mutableBase!)
                        _ = try MergeExecutor.executeChunked(step, plan: plan, kernel: kernel, chunkElements: chunking.elements,
                                                             threads: chunking.threads) { bytes, offset in
                            guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
                            UnsafeMutableRawPointer(bitPattern: address)!.advanced(by: offset).copyMemory(from: source, byteCount: bytes.count)
                        }
                        results.store(tensor, at: i)
                        progress?(results.finished(), steps.count)
                        continue
                    }
                    let (output, _) = try MergeExecutor.compute(step, plan: plan)
                    let tensor: Tensor
                    switch output {
                    case let .copied(t, input):
                        tensor = t.dtype == step.outputDType && !t.storage.isMapped ? t : Self.owned(t, as: step.outputDType)
                        plan.release(input)
                    case let .merged(values):
                        tensor = Tensor(zeros: step.outputDType, shape: step.outputShape)
                        values.withUnsafeBufferPointer {
                            Convert.fromFloat32($0, to: step.outputDType, into: UnsafeMutableRawBufferPointer(start: tensor.storage.mutableBase, count: tensor.byteCount))
                        }
                    }
                    results.store(tensor, at: i)
                    progress?(results.finished(), steps.count)
                } catch {
                    results.fail(error)
                }
            }
        }
        if let error = results.error { throw error }
        var byName: [String: Tensor] = [:]
        for (step, t) in zip(steps, results.tensors) { byName[step.outputName] = t! }
        let infos = steps.map { TensorInfo(name: $0.outputName, dtype: $0.outputDType, shape: $0.outputShape) }
        checkpoint = InMemoryCheckpoint(path: plan.config.path + " (merged in memory)", infos: infos, tensors: byName)
        config = plan.outputConfig
        companionTexts = MergedModel.companions(plan)
    }

    /// An owned tensor in `dtype` (copied out of a mapped file, converted if needed).
    static func owned(_ t: Tensor, as dtype: DType) -> Tensor {
        if t.dtype != dtype { return t.converted(to: dtype) }
        let out = Tensor(zeros: dtype, shape: t.shape)
        out.storage.mutableBase!.copyMemory(from: t.bytes.baseAddress!, byteCount: t.byteCount)
        return out
    }

    static func companions(_ plan: MergePlan) -> [String: String] {
        let donor = plan.models[plan.vocabulary?.tokenizerDonor ?? plan.donor]
        var texts: [String: String] = [:]
        for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            if let text = donor.companionText(name) { texts[name] = text }
        }
        if let doc = plan.vocabulary?.tokenizerDocument {
            texts["tokenizer.json"] = JSONValue.object(doc).pythonText(sortKeys: false) + "\n"
        }
        return texts
    }
}

/// Per-step results written by worker threads, each to its own slot.
private final class ResultSlots: @unchecked Sendable {
    private let lock = Lock()
    private var next = 0
    private var done = 0
    private(set) var tensors: [Tensor?]
    private(set) var error: MergeError?

    init(count: Int) { tensors = Array(repeating: nil, count: count) }

    func claim() -> Int? {
        lock.withLock {
            guard error == nil, next < tensors.count else { return nil }
            defer { next += 1 }
            return next
        }
    }

    func store(_ t: Tensor, at i: Int) { lock.withLock { tensors[i] = t } }
    func finished() -> Int { lock.withLock { done += 1; return done } }

    func fail(_ e: Error) {
        lock.withLock { if error == nil { error = (e as? MergeError) ?? .method(method: "?", tensor: "?", reason: "\(e)") } }
    }
}
