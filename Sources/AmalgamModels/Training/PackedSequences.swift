import AmalgamCore
import Foundation

/// Documents of token ids packed into training sequences, as transformers' `group_texts` does: the
/// documents back to back with an EOS after each, cut into sequences of exactly `length` tokens (the
/// incomplete tail is dropped). Attention runs across document boundaries inside a sequence.
public struct PackedSequences: Sendable {
    /// All tokens back to back (EOS after each document), as UInt32 to halve memory.
    let stream: [UInt32]
    /// Tokens per sequence.
    public let length: Int

    /// Packs documents; throws when the data do not fill one sequence.
    public init(documents: [[Int]], eos: Int, length: Int, source: String) throws(TrainingError) {
        guard length >= 2 else { throw .invalidSetting(name: "--seq-len", reason: "must be at least 2 tokens") }
        var s: [UInt32] = []
        s.reserveCapacity(documents.reduce(0) { $0 + $1.count + 1 })
        for d in documents {
            s.append(contentsOf: d.map { UInt32($0) })
            s.append(UInt32(eos))
        }
        guard s.count >= length else {
            throw .badData(path: source, reason: "holds \(s.count) tokens, fewer than one sequence of \(length); give more text or a smaller --seq-len")
        }
        stream = s
        self.length = length
    }

    /// Number of sequences.
    public var count: Int { stream.count / length }
    /// Tokens in all sequences.
    public var tokenCount: Int { count * length }

    /// Sequence `i`.
    public subscript(i: Int) -> [Int] { stream[(i * length)..<((i + 1) * length)].map { Int($0) } }

    /// FNV-1a over the packed tokens and length: a resumed run checks it trains on the same data.
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: UInt32) { for b in 0..<4 { h = (h ^ UInt64((v >> (8 * b)) & 0xFF)) &* 0x100_0000_01B3 } }
        mix(UInt32(length))
        for t in stream[0..<tokenCount] { mix(t) }
        return String(h, radix: 16)
    }
}

/// Reads training text: a `.txt` file (one document), a `.jsonl` file (one `{"text": …}` document per
/// line), or a folder of them (files in name order, other files ignored). A `.jsonl` file may also be a
/// `language_modeling` task file (README "Evaluation"): its header line (`"task"`, `"kind"`, no `"text"`)
/// is skipped and every example's text is a document, whatever its split.
public enum TrainingText {
    /// The documents at `path`; throws naming the file (and line) that cannot be read.
    public static func documents(at path: String) throws(TrainingError) -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw .badData(path: path, reason: "no such file or folder")
        }
        if !isFolder.boolValue { return try file(path) }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
            .filter { $0.hasSuffix(".txt") || $0.hasSuffix(".jsonl") }
        guard !names.isEmpty else { throw .badData(path: path, reason: "the folder holds no .txt or .jsonl file") }
        var docs: [String] = []
        for n in names { docs += try file(path + "/" + n) }
        return docs
    }

    static func file(_ path: String) throws(TrainingError) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .badData(path: path, reason: "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw .badData(path: path, reason: "is not UTF-8 text") }
        guard path.hasSuffix(".jsonl") else { return text.isEmpty ? [] : [text] }
        var docs: [String] = []
        var first = true
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let json = try? JSONValue.parse(String(line))
            defer { first = false }
            if first, let json, json["text"] == nil, json["task"] != nil {
                // A task file's header line: only a language-modelling task has text to train on.
                let kind = json["kind"]?.stringValue ?? "(none)"
                guard kind == "language_modeling" else {
                    throw .badData(path: "\(path):\(n + 1)", reason: "is a task file of kind \(kind), which has no text to train on; give a language_modeling task file or {\"text\": …} lines")
                }
                continue
            }
            guard let json, let t = json["text"]?.stringValue else {
                throw .badData(path: "\(path):\(n + 1)", reason: "expected a JSON object with a string \"text\" field (or, on the first line, a language_modeling task header)")
            }
            docs.append(t)
        }
        return docs
    }
}
