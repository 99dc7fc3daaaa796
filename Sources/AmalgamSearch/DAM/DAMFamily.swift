import AmalgamCore

/// A model family DAM can merge: it names its linear layers, builds the merged model from per-column
/// scales, and differentiates the merged model's logits back to those scales. Everything else (the
/// coefficients and f, the loss, the optimiser, the run folder) is the family-independent DAM core.
///
/// Shapes: logits are `rows × classCount`, row-major (rows: examples or tokens). Scales and their
/// gradients are flat vectors in `DAMLayout(layers: layers, sourceCount: sourceCount)`: for a layer,
/// `s_i[j]` multiplies input column j of source i's weight, `c_i` source i's bias.
public protocol DAMFamily: AnyObject {
    /// What one step feeds one source model (examples of its dataset).
    associatedtype Batch

    /// The layers that get coefficients, in layout order.
    var layers: [DAMLayer] { get }
    /// Number of source models N.
    var sourceCount: Int { get }
    /// Width of a logits row.
    var classCount: Int { get }

    /// Rebuilds the merged model's weights: `W = Σᵢ sᵢ ⊙ Wᵢ` (column-wise), `b = Σᵢ cᵢ bᵢ`.
    func merge(scales: [Float]) throws(DAMError)

    /// One source's distillation term at the merged model of the last `merge(scales:)`:
    /// `T²·KL(softmax(z_k/T) ‖ softmax(z/T))` averaged over the rows of `batch` (over the teacher's top k
    /// logits of each row when `topK` is set), z_k source `source`'s logits on `batch` (the teacher, no
    /// gradient) and z the merged model's. ADDS ∂term/∂scales to `scaleGradient`; returns the term.
    func distill(source: Int, batch: Batch, temperature: Float, topK: Int?,
                 scaleGradient: inout [Float]) throws(DAMError) -> Double

    /// The merged model's logits on `batch` (forward only).
    func mergedLogits(batch: Batch) throws(DAMError) -> [Float]

    /// The merged model as named tensors of a normal checkpoint (after `merge(scales:)`).
    func mergedTensors() -> [(name: String, tensor: Tensor)]
}

/// Errors of DAM training and export.
public enum DAMError: Error, Equatable, CustomStringConvertible {
    /// A setting is out of range.
    case invalidConfiguration(key: String, reason: String)
    /// Source models do not share one shape.
    case sourceMismatch(what: String)
    /// A run folder or file cannot be read or written.
    case runFolder(path: String, reason: String)
    /// The loss became NaN or infinite.
    case diverged(step: Int, loss: Double)
    /// A source model or its data cannot be read or run.
    case source(path: String, reason: String)

    /// A key of a DAM configuration file (AmalgamCore's configuration reader), named with its file.
    public static func config(path: String, key: String, reason: String) -> DAMError {
        .invalidConfiguration(key: key, reason: "\(reason) (in \(path))")
    }

    public var description: String {
        switch self {
        case let .invalidConfiguration(key, reason): return "invalid DAM setting `\(key)`: \(reason)"
        case let .sourceMismatch(what): return "DAM sources differ: \(what); all sources must share one architecture"
        case let .runFolder(path, reason): return "\(path): \(reason)"
        case let .diverged(step, loss):
            return "DAM loss is \(loss) at step \(step): lower the learning rate or the temperature"
        case let .source(path, reason): return "\(path): \(reason)"
        }
    }
}

extension DAMError: ConfigErrorReporting {}
