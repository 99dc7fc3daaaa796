import AmalgamCore
import AmalgamModels
import Foundation

/// scikit-learn's digits: 1797 8×8 images (64 features 0–16, not normalised) and labels 0–9.
public struct DigitsDataset: Sendable {
    /// Row-major features, `labels.count × 64`.
    public let features: [Float]
    /// Labels 0–9.
    public let labels: [Int32]

    /// Features per image.
    public static let featureCount = 64

    /// Reads the CSV (64 numbers then the label per line), as `digits.csv` decompressed from scikit-learn.
    public init(csvPath path: String) throws(DigitsError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .unreadable(path: path) }
        var features: [Float] = [], labels: [Int32] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",")
            guard fields.count == Self.featureCount + 1,
                  let label = Int32(fields[Self.featureCount].trimmingCharacters(in: .whitespaces)) ?? Float(fields[Self.featureCount]).map({ Int32($0) }),
                  (0...9).contains(label)
            else { throw .malformedLine(path: path, line: n + 1) }
            for f in fields.prefix(Self.featureCount) {
                guard let v = Float(f.trimmingCharacters(in: .whitespaces)) else { throw .malformedLine(path: path, line: n + 1) }
                features.append(v)
            }
            labels.append(label)
        }
        self.features = features
        self.labels = labels
    }

    /// The reference split: the first `⌊0.8 · count⌋` images in file order for training, the rest for test.
    public func split(trainFraction: Double = 0.8) -> (train: MLPBatch, test: MLPBatch) {
        let cut = Int(Double(labels.count) * trainFraction)
        let f = Self.featureCount
        return (MLPBatch(features: Array(features[0 ..< cut * f]), inputs: f, labels: Array(labels[0..<cut])),
                MLPBatch(features: Array(features[cut * f ..< labels.count * f]), inputs: f, labels: Array(labels[cut...])))
    }
}

/// Errors reading the digits data.
public enum DigitsError: Error, Equatable, CustomStringConvertible {
    /// The file is missing or not UTF-8 text.
    case unreadable(path: String)
    /// A line is not 64 numbers and a label 0–9.
    case malformedLine(path: String, line: Int)

    public var description: String {
        switch self {
        case let .unreadable(path):
            return "\(path): cannot read the digits CSV (the repository has it at fixtures/digits/digits.csv)"
        case let .malformedLine(path, line):
            return "\(path):\(line): expected 64 comma-separated numbers and a label 0-9"
        }
    }
}
