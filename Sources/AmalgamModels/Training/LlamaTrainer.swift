import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// Which of a model's tensors train.
public enum TrainableSelection: Sendable, Equatable {
    /// Every tensor.
    case all
    /// Tensors whose name matches this regular expression anywhere (e.g.
    /// `model\.layers\.(2[0-9])\.mlp\.` for the MLPs of layers 20–29).
    case pattern(String)
    /// Exactly these names.
    case names(Set<String>)
    /// Nothing (gradients flow only to observers, as DAM needs).
    case none
}

/// What the loss is.
public enum TrainingObjective: Sendable {
    /// Next-token cross-entropy within each sequence (each sequence's last token predicts nothing).
    case nextToken
    /// Cross-entropy against one target per packed row (`Losses.ignoreIndex` to skip a row).
    case targets([Int])
    /// DAM's distillation: KL(softmax(teacher/T) ‖ softmax(student/T)) · T² per counted row, the
    /// teacher's logits given for every packed row [tokenCount × V] (`counted` nil: every row counts).
    case distillation(teacher: Matrix, temperature: Float, topK: Int?, counted: [Bool]?)
}

/// A linear layer's input and output gradient over some rows of a batch, handed to an observer during
/// the backward pass: everything a per-column reparametrisation of the weight needs (DAM's
/// ∂L/∂m_i[j] = Σ_b input[b, j] · (outputGradient · W_i)[b, j]) without materialising dW.
public struct LinearActivations {
    /// The weight's name, e.g. `model.layers.3.self_attn.q_proj.weight` (`lm_head.weight`, or the
    /// embedding's name when tied, for the vocabulary projection).
    public let name: String
    /// First packed row covered (the vocabulary projection is observed in chunks of rows).
    public let firstRow: Int
    /// Rows covered.
    public let rows: Int
    /// Input features (the weight's columns).
    public let inFeatures: Int
    /// Output features (the weight's rows).
    public let outFeatures: Int
    /// X [rows × inFeatures]: valid only during the call.
    public let input: UnsafePointer<Float>
    /// ∂L/∂Y [rows × outFeatures], already scaled by the gradient scale: valid only during the call.
    public let outputGradient: UnsafePointer<Float>
}

/// Forward and hand-written backward passes of a `LlamaModel` over packed `TokenBatch`es: keeps f32
/// trainable copies of the chosen tensors (the rest is read in place, in its own dtype), keeps the
/// activations backward needs, and accumulates ∂L/∂θ into every trainable tensor's gradient.
/// Families: llama (incl. Llama 3 rope, tied embeddings), mistral (sliding window), qwen2 (q/k/v
/// biases), qwen3 (q/k norms); any `*_proj` bias.
public final class LlamaTrainer: @unchecked Sendable {
    /// The model whose frozen weights are read.
    public let model: LlamaModel
    /// The trainable tensors, in checkpoint order.
    public let parameters: [TrainableTensor]
    /// Called for every linear layer during backward with its input and output gradient.
    public var linearObserver: ((LinearActivations) -> Void)?
    /// Rows of logits computed at once (bounds memory at rows × V floats).
    public var logitsChunkRows = 256

    let embed: Linear
    let lmHead: Linear
    let norm: Vector
    let layers: [Layer]
    /// The lowest layer whose backward pass is needed (layers below it have nothing to train).
    let lowestLayer: Int
    let embeddingTrains: Bool
    let scratchCount: Int

    /// A weight matrix with its name and, when it trains, its f32 copy (which `weight` then reads).
    struct Linear {
        let name: String
        let weight: WeightMatrix
        let trainable: TrainableTensor?
        let bias: Vector?
    }

    /// A vector (norm weight, bias) held in f32; its gradient is always computed, and it is a
    /// parameter only when `trains`.
    struct Vector {
        let tensor: TrainableTensor
        let trains: Bool
    }

    struct Layer {
        let inputNorm: Vector
        let q, k, v, o: Linear
        let qNorm, kNorm: Vector?
        let postNorm: Vector
        let gate, up, down: Linear
        let window: Int?
    }

    /// Prepares training of `model`'s tensors chosen by `selection`; throws when a pattern is invalid
    /// or matches nothing.
    public init(model: LlamaModel, trainable selection: TrainableSelection) throws(TrainingError) {
        self.model = model
        guard model.family.isLlama else {
            throw .invalidSetting(name: "model_type", reason: "training runs the Llama family (\(LlamaConfig.modelTypes.sorted().joined(separator: ", "))); '\(model.family.modelType)' has no backward pass yet")
        }
        let regex: ScalarRegex?
        if case let .pattern(p) = selection {
            do { regex = try ScalarRegex(p, dialect: .python) } catch { throw .badPattern(pattern: p, reason: error.description) }
        } else {
            regex = nil
        }
        func trains(_ name: String) -> Bool {
            switch selection {
            case .all: return true
            case .none: return false
            case let .names(set): return set.contains(name)
            case .pattern: return regex!.isFound(in: name)
            }
        }
        var params: [TrainableTensor] = []
        func matrix(_ name: String, _ w: WeightMatrix, bias: FloatBuffer?, biasName: String) -> Linear {
            var weight = w, trainable: TrainableTensor? = nil
            if trains(name) {
                let t = TrainableTensor(name: name, shape: [w.rows, w.cols], values: w.tensor.floats())
                params.append(t)
                trainable = t
                weight = try! WeightMatrix(t.storage, name: name, path: model.source.path, rows: w.rows, cols: w.cols)
            }
            let b = bias.map { vector(biasName, $0.array()) }
            return Linear(name: name, weight: weight, trainable: trainable, bias: b)
        }
        func vector(_ name: String, _ values: [Float]) -> Vector {
            let t = TrainableTensor(name: name, shape: [values.count], values: values)
            let on = trains(name)
            if on { params.append(t) }
            return Vector(tensor: t, trains: on)
        }
        let w = model.weights
        let embedName = "model.embed_tokens.weight"
        embed = matrix(embedName, w.embed, bias: nil, biasName: "")
        var layers: [Layer] = []
        for (i, l) in w.layers.enumerated() {
            let p = "model.layers.\(i).", a = p + "self_attn.", m = p + "mlp."
            layers.append(Layer(
                inputNorm: vector(p + "input_layernorm.weight", l.inputNorm ?? []),
                q: matrix(a + "q_proj.weight", l.q, bias: l.qBias, biasName: a + "q_proj.bias"),
                k: matrix(a + "k_proj.weight", l.k, bias: l.kBias, biasName: a + "k_proj.bias"),
                v: matrix(a + "v_proj.weight", l.v, bias: l.vBias, biasName: a + "v_proj.bias"),
                o: matrix(a + "o_proj.weight", l.o, bias: l.oBias, biasName: a + "o_proj.bias"),
                qNorm: l.qNorm.map { vector(a + "q_norm.weight", $0) },
                kNorm: l.kNorm.map { vector(a + "k_norm.weight", $0) },
                postNorm: vector(p + "post_attention_layernorm.weight", l.postNorm ?? []),
                gate: matrix(m + "gate_proj.weight", l.gate!, bias: l.gateBias, biasName: m + "gate_proj.bias"),
                up: matrix(m + "up_proj.weight", l.up!, bias: l.upBias, biasName: m + "up_proj.bias"),
                down: matrix(m + "down_proj.weight", l.down!, bias: l.downBias, biasName: m + "down_proj.bias"),
                window: l.window))
        }
        self.layers = layers
        norm = vector("model.norm.weight", w.norm)
        if model.config.tieWordEmbeddings {
            lmHead = Linear(name: embedName, weight: embed.weight, trainable: embed.trainable, bias: nil)
        } else {
            lmHead = matrix("lm_head.weight", w.lmHead, bias: nil, biasName: "")
        }
        parameters = params
        if case let .pattern(p) = selection, params.isEmpty { throw .noTrainableTensors(pattern: p) }
        embeddingTrains = embed.trainable != nil
        func layerTrains(_ l: Layer) -> Bool {
            [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].contains { $0.trainable != nil || $0.bias?.trains == true }
                || [l.inputNorm, l.postNorm].contains { $0.trains } || l.qNorm?.trains == true || l.kNorm?.trains == true
        }
        lowestLayer = embeddingTrains ? 0 : (layers.firstIndex(where: layerTrains) ?? layers.count)
        scratchCount = ([embed, lmHead] + layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] })
            .map { MatMul.scratchCount(for: $0.weight) }.max() ?? 0
    }

    /// Sets every gradient (parameters and frozen vectors) to zero.
    public func zeroGradients() {
        for p in parameters { p.zeroGradient() }
    }

    /// Rows the objective counts over a batch (the mean's denominator).
    public static func countedRows(_ batch: TokenBatch, _ objective: TrainingObjective) -> Int {
        switch objective {
        case .nextToken: return batch.sequences.reduce(0) { $0 + $1.count - 1 }
        case let .targets(t): return t.filter { $0 >= 0 }.count
        case let .distillation(_, _, _, counted): return counted?.filter { $0 }.count ?? batch.tokenCount
        }
    }

    /// The loss over a batch without gradients.
    public func loss(_ batch: TokenBatch, objective: TrainingObjective = .nextToken) throws(ModelError) -> LossTotal {
        try run(batch, objective: objective, gradientScale: 0, backward: false)
    }

    /// Forward and backward over a batch: adds gradientScale · ∂(Σ row losses)/∂θ to every trainable
    /// tensor's gradient (gradientScale = 1 / counted rows gives the mean; over several micro-batches,
    /// 1 / the rows of all of them) and returns the summed loss.
    public func accumulateGradients(_ batch: TokenBatch, objective: TrainingObjective = .nextToken,
                                    gradientScale: Float) throws(ModelError) -> LossTotal {
        try run(batch, objective: objective, gradientScale: gradientScale, backward: true)
    }

    /// Next-token targets of a batch: row t of a sequence predicts token t + 1; the last predicts nothing.
    static func nextTokenTargets(_ batch: TokenBatch) -> [Int] {
        var targets = [Int](repeating: Losses.ignoreIndex, count: batch.tokenCount)
        for (i, s) in batch.sequences.enumerated() {
            for t in 0..<(s.count - 1) { targets[batch.offsets[i] + t] = s[t + 1] }
        }
        return targets
    }
}
