/// A row-major f32 matrix: a batch of feature rows in, a batch of logit rows out.
public struct Matrix: Sendable, Equatable {
    /// Number of rows (examples or token positions).
    public let rows: Int
    /// Values per row.
    public let cols: Int
    /// rows × cols values, row after row.
    public var values: [Float]

    /// A matrix over existing values; `values.count` must be rows × cols.
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "\(values.count) values for \(rows) × \(cols)")
        self.rows = rows
        self.cols = cols
        self.values = values
    }

    /// A zero matrix.
    public init(rows: Int, cols: Int) { self.init(rows: rows, cols: cols, values: [Float](repeating: 0, count: rows * cols)) }

    /// One row's values.
    public subscript(row r: Int) -> ArraySlice<Float> { values[(r * cols)..<((r + 1) * cols)] }

    /// The index of the largest value of each row (first on ties).
    public func argmaxPerRow() -> [Int] {
        (0..<rows).map { r in
            var best = 0
            for c in 1..<max(cols, 1) where values[r * cols + c] > values[r * cols + best] { best = c }
            return best
        }
    }
}

/// What every model offers: logits for a batch. Language models take token sequences, classifiers take
/// feature rows; both return one logit row per prediction.
public protocol LogitsModel: Sendable {
    /// What a batch is for this model.
    associatedtype Batch
    /// Logits per prediction (vocabulary size or number of classes).
    var outputCount: Int { get }
    /// One forward pass over the batch.
    func logits(_ batch: Batch) throws(ModelError) -> Matrix
}

/// A batch of token sequences of different lengths, packed back to back: the engine never computes on
/// padding, which is how right-padded batches are handled.
public struct TokenBatch: Sendable, Equatable {
    /// The sequences, each non-empty.
    public let sequences: [[Int]]
    /// Row of each sequence's first token in the packed layout; `offsets[sequences.count]` is the total.
    public let offsets: [Int]

    /// Packs sequences; throws if one is empty.
    public init(_ sequences: [[Int]]) throws(ModelError) {
        var offsets = [0]
        for (i, s) in sequences.enumerated() {
            guard !s.isEmpty else { throw .emptySequence(index: i) }
            offsets.append(offsets.last! + s.count)
        }
        self.sequences = sequences
        self.offsets = offsets
    }

    /// Total tokens.
    public var tokenCount: Int { offsets.last! }

    /// All tokens back to back.
    public var packed: [Int] { sequences.flatMap { $0 } }

    /// Builds a batch from right-padded rows and a 0/1 attention mask (as transformers takes them).
    public init(padded ids: [[Int]], mask: [[Int]]) throws(ModelError) {
        try self.init(zip(ids, mask).map { row, m in Array(row[0..<m.reduce(0, +)]) })
    }
}

/// Turns text into token ids and back; the tokenizer module provides one, the engine only needs ids.
public protocol TokenEncoder: Sendable {
    /// Token ids of a text.
    func encode(_ text: String) throws -> [Int]
    /// Text of token ids.
    func decode(_ ids: [Int]) throws -> String
}
