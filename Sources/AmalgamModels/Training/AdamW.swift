import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// AdamW's settings; the defaults are PyTorch's `torch.optim.AdamW` ones.
public struct AdamWSettings: Sendable, Equatable {
    /// Decay of the first moment.
    public var beta1: Double = 0.9
    /// Decay of the second moment.
    public var beta2: Double = 0.999
    /// Added to the square root of the second moment.
    public var epsilon: Double = 1e-8
    /// Decoupled weight decay: each step multiplies the decayed tensors by 1 − lr · weightDecay.
    public var weightDecay: Double = 0.01
    /// Global gradient-norm clipping (as `torch.nn.utils.clip_grad_norm_`): when the L2 norm of all
    /// gradients together exceeds it, every gradient is scaled by clip / (norm + 1e-6). nil: no clipping.
    public var clipNorm: Double? = nil
    /// MoFO (momentum-filtered optimizer): when set, each step moves only the entries of each tensor
    /// whose |first moment| is among its largest `mofoFraction` (⌊fraction · count⌋, at least 1; ties
    /// go to the lower index); both moments are still updated everywhere. DAM's default is 0.3.
    public var mofoFraction: Double? = nil

    /// PyTorch's defaults, or the values given.
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01,
                clipNorm: Double? = nil, mofoFraction: Double? = nil) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.mofoFraction = mofoFraction
    }
}

/// AdamW (Loshchilov & Hutter) over a list of named f32 tensors, step for step as PyTorch's
/// `torch.optim.AdamW` computes it in f32, with optional global gradient clipping and MoFO. Its state
/// (the step count and both moments of every tensor) saves to and loads from a safetensors file, so a
/// run resumes bit for bit.
public final class AdamW: @unchecked Sendable {
    /// The tensors it updates, in a fixed order.
    public let parameters: [TrainableTensor]
    /// Its settings.
    public let settings: AdamWSettings
    /// Whether each tensor is decayed (norm weights and biases are usually not).
    public let decays: [Bool]
    /// Steps taken.
    public private(set) var stepCount = 0
    let firstMoment: [TrainableTensor]
    let secondMoment: [TrainableTensor]

    /// An optimizer at step 0 (both moments zero). `decays` says which tensors get weight decay (all by default).
    public init(parameters: [TrainableTensor], settings: AdamWSettings = AdamWSettings(), decays: [Bool]? = nil) {
        precondition(decays == nil || decays!.count == parameters.count, "one decay flag per tensor")
        self.parameters = parameters
        self.settings = settings
        self.decays = decays ?? [Bool](repeating: true, count: parameters.count)
        firstMoment = parameters.map { TrainableTensor(name: $0.name, shape: $0.shape, values: [Float](repeating: 0, count: $0.count)) }
        secondMoment = parameters.map { TrainableTensor(name: $0.name, shape: $0.shape, values: [Float](repeating: 0, count: $0.count)) }
    }

    /// L2 norm of all gradients together (f64 sums, in tensor order).
    public func gradientNorm() -> Double {
        var total = 0.0
        for p in parameters {
            var sum = 0.0
            var i = 0
            while i < p.count {
                let end = min(i + 1024, p.count)
                var part: Float = 0
                while i < end { part += p.gradient[i] * p.gradient[i]; i += 1 }
                sum += Double(part)
            }
            total += sum
        }
        return total.squareRoot()
    }

    /// One optimizer step at `learningRate` from the tensors' current gradients (clipped first when
    /// `clipNorm` is set; the gradients are left scaled). Returns the gradient norm before clipping.
    @discardableResult
    public func step(learningRate lr: Double) -> Double {
        let norm = gradientNorm()
        if let clip = settings.clipNorm {
            let coefficient = clip / (norm + 1e-6)
            if coefficient < 1 {
                let c = Float(coefficient)
                for p in parameters { for i in 0..<p.count { p.gradient[i] *= c } }
            }
        }
        stepCount += 1
        let t = Double(stepCount)
        let b1 = settings.beta1, b2 = settings.beta2
        let decay = Float(1 - lr * settings.weightDecay)
        let oneMinusB1 = Float(1 - b1), b2f = Float(b2), oneMinusB2 = Float(1 - b2)
        let stepSize = Float(lr / (1 - Foundation.pow(b1, t)))
        let correction2 = Float((1 - Foundation.pow(b2, t)).squareRoot())
        let eps = Float(settings.epsilon)
        for (index, p) in parameters.enumerated() {
            let m = firstMoment[index].value, v = secondMoment[index].value
            let g = p.gradient, w = p.value
            let decays = self.decays[index] && settings.weightDecay != 0
            let n = p.count
            let pp = SendablePointer(w), mp = SendablePointer(m), vp = SendablePointer(v), gp = SendablePointer(g)
            parallelChunks(n, minimumChunk: 1 << 15) { range in
                for i in range {
                    let gi = gp.base[i]
                    mp.base[i] += oneMinusB1 * (gi - mp.base[i])
                    vp.base[i] = vp.base[i] * b2f + oneMinusB2 * gi * gi
                }
            }
            let selected = settings.mofoFraction.map { Self.largestMagnitudes(m, n, fraction: $0) }
            let update: @Sendable (Int) -> Void = { i in
                if decays { pp.base[i] *= decay }
                let denom = vp.base[i].squareRoot() / correction2 + eps
                pp.base[i] += -stepSize * (mp.base[i] / denom)
            }
            if let selected {
                for i in selected { update(i) }
            } else {
                parallelChunks(n, minimumChunk: 1 << 15) { range in for i in range { update(i) } }
            }
        }
        return norm
    }

    /// Indices of the ⌊fraction · n⌋ (at least 1) entries of x[n] with the largest |x|, ascending; ties at
    /// the threshold go to the lower indices. A selection (quickselect on a copy), not a sort.
    static func largestMagnitudes(_ x: UnsafePointer<Float>, _ n: Int, fraction: Double) -> [Int] {
        let k = min(n, max(1, Int(fraction * Double(n))))
        if k == n { return Array(0..<n) }
        var a = (0..<n).map { abs(x[$0]) }
        // the k-th largest magnitude: index n − k of the ascending order
        var lo = 0, hi = n - 1
        let target = n - k
        var rng = SeededGenerator(seed: 0x5EED)  // the pivots only; the selected set does not depend on them
        while lo < hi {
            a.swapAt(lo + Int(rng.next() % UInt64(hi - lo + 1)), hi)
            let pivot = a[hi]
            var store = lo
            for i in lo..<hi where a[i] < pivot { a.swapAt(i, store); store += 1 }
            a.swapAt(store, hi)
            if store == target { break } else if store < target { lo = store + 1 } else { hi = store - 1 }
        }
        let threshold = a[target]
        var above = 0
        for i in 0..<n where abs(x[i]) > threshold { above += 1 }
        var equalAllowed = k - above
        var result: [Int] = []
        result.reserveCapacity(k)
        for i in 0..<n {
            let m = abs(x[i])
            if m > threshold {
                result.append(i)
            } else if m == threshold && equalAllowed > 0 {
                result.append(i)
                equalAllowed -= 1
            }
        }
        return result
    }
}

extension AdamW {
    /// Saves the step count and both moments of every tensor to a safetensors file (atomically):
    /// `<name>.exp_avg` and `<name>.exp_avg_sq` in f32, the step and settings in `__metadata__`.
    public func save(to path: String) throws(TrainingError) {
        var tensors: [(name: String, tensor: Tensor)] = []
        for (i, p) in parameters.enumerated() {
            tensors.append((p.name + ".exp_avg", firstMoment[i].tensor()))
            tensors.append((p.name + ".exp_avg_sq", secondMoment[i].tensor()))
        }
        let metadata = [("format", "amalgam-adamw"), ("step", String(stepCount)), ("settings", settingsText)]
        do { try SafetensorsWriter.save(tensors, to: path, metadata: metadata) } catch { throw .checkpoint(error) }
    }

    /// Restores a state saved by `save(to:)`; throws naming the file and the tensor or setting that
    /// differs from this optimizer's.
    public func load(from path: String) throws(TrainingError) {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw .checkpoint(error) }
        let meta = Dictionary(file.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard meta["format"] == "amalgam-adamw", let step = meta["step"].flatMap(Int.init) else {
            throw .optimizerState(path: path, reason: "not an Amalgam AdamW state (no format/step metadata)")
        }
        guard meta["settings"] == settingsText else {
            throw .optimizerState(path: path, reason: "saved with settings \(meta["settings"] ?? "?"), this run has \(settingsText)")
        }
        guard file.tensorInfos.count == 2 * parameters.count else {
            throw .optimizerState(path: path, reason: "it holds \(file.tensorInfos.count / 2) tensors, this run trains \(parameters.count)")
        }
        for (i, p) in parameters.enumerated() {
            for (suffix, target) in [(".exp_avg", firstMoment[i]), (".exp_avg_sq", secondMoment[i])] {
                let name = p.name + suffix
                guard let info = file.info(name) else { throw .optimizerState(path: path, reason: "tensor '\(name)' is missing") }
                guard info.dtype == .f32, info.shape == p.shape else {
                    throw .optimizerState(path: path, reason: "tensor '\(name)' is \(info.dtype.rawValue) \(info.shape), expected F32 \(p.shape)")
                }
                let t: Tensor
                do { t = try file.tensor(name) } catch { throw .checkpoint(error) }
                t.withUnsafeBytes { b in
                    if b.count > 0 { UnsafeMutableRawPointer(target.value).copyMemory(from: b.baseAddress!, byteCount: b.count) }
                }
            }
        }
        stepCount = step
    }

    /// The settings as saved in the state's metadata (bit-exact decimal text).
    var settingsText: String {
        let s = settings
        return "beta1=\(s.beta1) beta2=\(s.beta2) eps=\(s.epsilon) weight_decay=\(s.weightDecay) clip=\(s.clipNorm.map { "\($0)" } ?? "none") mofo=\(s.mofoFraction.map { "\($0)" } ?? "none") decays=\(decays.map { $0 ? "1" : "0" }.joined())"
    }
}

extension AdamW {
    /// The state as one blob for a run store: a header line `amalgam-adamw <step> <settings>` then both
    /// moments of every tensor, raw little-endian f32, in parameter order (first moment, then second).
    public func stateBytes() -> [UInt8] {
        var out = Array("amalgam-adamw \(stepCount) \(settingsText)\n".utf8)
        out.reserveCapacity(out.count + 8 * parameters.reduce(0) { $0 + $1.count })
        for i in parameters.indices {
            for t in [firstMoment[i], secondMoment[i]] {
                out.append(contentsOf: UnsafeRawBufferPointer(start: t.value, count: t.count * 4))
            }
        }
        return out
    }

    /// Restores a state made by `stateBytes()`; throws naming `source` when it belongs to other settings or
    /// other tensors.
    public func restore(stateBytes bytes: [UInt8], source: String) throws(TrainingError) {
        guard let newline = bytes.firstIndex(of: 10) else {
            throw .optimizerState(path: source, reason: "not an Amalgam AdamW state (no header)")
        }
        let header = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ", maxSplits: 2).map(String.init)
        guard header.count == 3, header[0] == "amalgam-adamw", let step = Int(header[1]) else {
            throw .optimizerState(path: source, reason: "not an Amalgam AdamW state (header `\(header.joined(separator: " "))`)")
        }
        guard header[2] == settingsText else {
            throw .optimizerState(path: source, reason: "saved with settings \(header[2]), this run has \(settingsText)")
        }
        let expected = 8 * parameters.reduce(0) { $0 + $1.count }
        guard bytes.count - newline - 1 == expected else {
            throw .optimizerState(path: source, reason: "holds \(bytes.count - newline - 1) bytes of moments, this run's tensors need \(expected)")
        }
        var offset = newline + 1
        bytes.withUnsafeBytes { raw in
            for i in parameters.indices {
                for t in [firstMoment[i], secondMoment[i]] {
                    UnsafeMutableRawPointer(t.value).copyMemory(from: raw.baseAddress! + offset, byteCount: t.count * 4)
                    offset += t.count * 4
                }
            }
        }
        stepCount = step
    }
}
