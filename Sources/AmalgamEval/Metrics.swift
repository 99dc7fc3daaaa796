import AmalgamCore
import Foundation

/// A metric's value over the examples and its standard error.
public struct MetricValue: Sendable, Equatable {
    public var name: String
    public var value: Double
    /// nil when it is not defined (fewer than two examples).
    public var stderr: Double?
}

/// The statistics lm-evaluation-harness reports, as it defines them.
public enum Statistics {
    /// Mean and standard error of the mean: sample standard deviation (n − 1) / √n (lm-eval's `mean_stderr`).
    public static func meanAndStderr(_ values: [Double]) -> (mean: Double, stderr: Double?) {
        let n = Double(values.count)
        guard !values.isEmpty else { return (.nan, nil) }
        let mean = values.reduce(0, +) / n
        guard values.count > 1 else { return (mean, nil) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return (mean, (variance / n).squareRoot())
    }

    /// The ratio Σ numerator / Σ denominator (lm-eval's `weighted_mean`, used by perplexities and bits per
    /// byte) and its standard error by the delta method for a ratio estimator:
    /// √( Σ (aᵢ − R·bᵢ)² / (n − 1) / n ) / mean(b). lm-eval reports no error for these.
    public static func ratioAndStderr(_ numerators: [Double], _ denominators: [Double]) -> (ratio: Double, stderr: Double?) {
        let n = Double(numerators.count)
        let a = numerators.reduce(0, +), b = denominators.reduce(0, +)
        guard b != 0 else { return (.nan, nil) }
        let r = a / b
        guard numerators.count > 1 else { return (r, nil) }
        let residual = zip(numerators, denominators).reduce(0) { $0 + ($1.0 - r * $1.1) * ($1.0 - r * $1.1) } / (n - 1)
        return (r, (residual / n).squareRoot() / (b / n))
    }

    /// The index of the largest value, the first on ties (numpy's `argmax`).
    public static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}

/// lm-eval's multiple-choice metrics of one example.
public enum MultipleChoiceMetrics {
    /// `acc` is 1 when the choice of highest log-likelihood is the gold one; `acc_norm` when the highest
    /// log-likelihood per character of the choice (Python `len`: Unicode code points, without the target
    /// delimiter) is. Ties go to the first choice.
    public static func score(logLikelihoods: [Double], choices: [String], gold: Int) -> (acc: Double, accNorm: Double, prediction: Int, predictionNorm: Int) {
        let lengths = choices.map { Double($0.unicodeScalars.count) }
        let pred = Statistics.argmax(logLikelihoods)
        let predNorm = Statistics.argmax(zip(logLikelihoods, lengths).map { $0 / $1 })
        return (pred == gold ? 1 : 0, predNorm == gold ? 1 : 0, pred, predNorm)
    }
}

/// Counts lm-eval's language-modelling metrics divide by.
public enum DocumentCounts {
    /// UTF-8 bytes (`len(text.encode("utf-8"))`).
    public static func bytes(_ text: String) -> Int { text.utf8.count }

    /// Words as lm-eval counts them for word perplexity: `len(re.split(r"\s+", text))`, i.e. the runs of
    /// whitespace plus one (leading and trailing whitespace count).
    public static func words(_ text: String) -> Int {
        var runs = 0
        var inRun = false
        for scalar in text.unicodeScalars {
            let space = isPythonWhitespace(scalar)
            if space && !inRun { runs += 1 }
            inRun = space
        }
        return runs + 1
    }

    /// Python's `\s` for str patterns: Unicode whitespace plus the information separators 0x1C–0x1F.
    static func isPythonWhitespace(_ s: Unicode.Scalar) -> Bool {
        (0x1C...0x1F).contains(s.value) || s.properties.isWhitespace
    }
}

/// The answer of a generation: regex extraction and exact comparison, as lm-eval's regex filter and
/// `exact_match` metric do.
public enum AnswerExtraction {
    /// What a prediction without a match becomes (lm-eval's fallback).
    public static let invalid = "[invalid]"

    /// The first capture group (or the whole match) of the first or last match of the rule's regex
    /// (Python's syntax, as lm-eval writes it; run on Amalgam's bounded regex engine).
    public static func extract(_ text: String, rule: AnswerRule) -> String? {
        guard let regex = try? ScalarRegex(rule.answerRegex, dialect: .python) else { return nil }
        let matches = regex.allMatches(in: text, limit: rule.takeLast ? .max : 1)
        guard let match = rule.takeLast ? matches.last : matches.first else { return nil }
        let answer = (regex.groupCount > 0 ? match.text(in: text, group: 1) : nil) ?? match.text(in: text)
        return answer?.trimmingCharacters(in: .whitespaces)
    }

    /// The text after removing every `ignorePatterns` match (and lowercased when `ignoreCase`).
    public static func normalize(_ text: String, rule: AnswerRule) -> String {
        var out = text
        for pattern in rule.ignorePatterns {
            guard let regex = try? ScalarRegex(pattern, dialect: .python) else { continue }
            var kept: [UInt8] = []
            let bytes = Array(out.utf8)
            var previous = 0
            for match in regex.allMatches(in: out) {
                kept += bytes[previous..<match.range.lowerBound]
                previous = match.range.upperBound
            }
            kept += bytes[previous...]
            out = String(decoding: kept, as: UTF8.self)
        }
        return rule.ignoreCase ? out.lowercased() : out
    }

    /// 1 when the normalized prediction equals the normalized gold answer.
    public static func exactMatch(prediction: String, gold: String, rule: AnswerRule) -> Double {
        normalize(prediction, rule: rule) == normalize(gold, rule: rule) ? 1 : 0
    }

    /// The generated text cut at the first stop string (lm-eval splits on each `until` string in turn).
    public static func truncate(_ text: String, at stops: [String]) -> String {
        var out = text
        for stop in stops where !stop.isEmpty {
            if let r = out.range(of: stop) { out = String(out[..<r.lowerBound]) }
        }
        return out
    }
}
