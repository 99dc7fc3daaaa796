import AmalgamCore
import AmalgamEval
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam make-tasks`: deterministic files that parse as tasks, with train and test kept apart.
@Suite struct TaskBuilderTests {
    @Test func arithmeticProblemsAreSeededAndTheirAnswersAreRight() throws {
        let a = ArithmeticTasks.build(seed: 1), b = ArithmeticTasks.build(seed: 1), c = ArithmeticTasks.build(seed: 2)
        #expect(a == b)
        #expect(a.text != c.text)
        let task = try EvalTask(text: a.text, path: a.path)
        #expect(task.spec.kind == .generation && task.spec.numFewshot == 4)
        #expect(task.examples.filter { $0.split == "train" }.count == 40)
        #expect(task.evaluationExamples().count == 100)
        var questions: Set<String> = []
        for e in task.examples {
            guard case let .generation(input, target, answer) = e.content else { Issue.record("kind"); continue }
            #expect(questions.insert(input).inserted, "questions are distinct")
            #expect(AnswerExtraction.extract(target, rule: task.spec.answer) == answer)
            // the worked answer's last equation gives the answer: "… = N …\n#### N"
            let lastEquation = target.components(separatedBy: " = ").last!.prefix { $0.isNumber || $0 == "-" }
            #expect(String(lastEquation) == answer, "\(input) → \(target)")
            #expect(try checkArithmetic(target))
        }
    }

    /// Every "x op y = z" in a worked answer holds.
    func checkArithmetic(_ text: String) throws -> Bool {
        let regex = try NSRegularExpression(pattern: #"(\d+) ([-+*/]) (\d+) = (\d+)"#)
        for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let g = (1...4).map { String(text[Range(m.range(at: $0), in: text)!]) }
            let x = Int(g[0])!, y = Int(g[2])!, z = Int(g[3])!
            let value: Int
            switch g[1] {
            case "+": value = x + y
            case "-": value = x - y
            case "*": value = x * y
            default: value = x / y
            }
            if value != z { return false }
        }
        return true
    }

    @Test(.requires(shakespeareData))
    func authorTasksSplitByWholeWorkWithNoTestLineInTheTrainingText() throws {
        try shakespeareData.require()
        let files = try AuthorTasks.build(root: shakespeareDirectory, seed: 1)
        #expect(files == (try AuthorTasks.build(root: shakespeareDirectory, seed: 1)), "same seed, same bytes")
        let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0.text) })
        #expect(Set(byPath.keys) == ["shakespeare-lm.jsonl", "shakespeare-nextline.jsonl", "train/shakespeare.jsonl",
                                     "milton-lm.jsonl", "milton-nextline.jsonl", "train/milton.jsonl", "splits.json"])
        let splits = try JSONValue.parse(byPath["splits.json"]!)
        func key(_ s: String) -> String { String(s.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic }.map(Character.init)) }
        for author in ["shakespeare", "milton"] {
            let train = Set(splits[author]!["train"]!.arrayValue!.map { $0.stringValue! })
            let test = Set(splits[author]!["test"]!.arrayValue!.map { $0.stringValue! })
            #expect(!train.isEmpty && !test.isEmpty && train.isDisjoint(with: test))
            let trainingText = byPath["train/\(author).jsonl"]!.split(separator: "\n").map { try! JSONValue.parse(String($0))["text"]!.stringValue! }
            let trainingKeys = Set(trainingText.flatMap { $0.split(separator: "\n").map { key(String($0)) } }.filter { $0.count >= 24 })
            let lm = try EvalTask(text: byPath["\(author)-lm.jsonl"]!, path: "\(author)-lm.jsonl")
            #expect(lm.evaluationExamples().count == 40)
            let validation = lm.examples.filter { $0.split == "validation" }
            #expect(validation.count == 20)
            #expect(Set(validation.map(\.id)).isDisjoint(with: lm.evaluationExamples().map(\.id)), "validation and test passages are disjoint")
            for e in lm.examples {
                guard case let .document(text) = e.content else { continue }
                #expect(test.contains { e.id.hasPrefix($0 + "-") }, "\(e.id) comes from a test work")
                let leaked = text.split(separator: "\n").map { key(String($0)) }.filter { $0.count >= 24 && trainingKeys.contains($0) }
                #expect(leaked.isEmpty, "\(e.id) shares lines with the training text: \(leaked.prefix(2))")
            }
            let mc = try EvalTask(text: byPath["\(author)-nextline.jsonl"]!, path: "\(author)-nextline.jsonl")
            #expect(mc.evaluationExamples().count == 100)
            #expect(mc.examples.filter { $0.split == "train" }.count == 200)
            for e in mc.evaluationExamples() {
                guard case let .multipleChoice(context, choices, _) = e.content else { continue }
                #expect(choices.count == 4 && Set(choices.map(key)).count == 4)
                for line in context.split(separator: "\n") + choices.map({ Substring($0) }) where key(String(line)).count >= 24 {
                    #expect(!trainingKeys.contains(key(String(line))), "\(e.id): '\(line)' is in the training text")
                }
            }
        }
    }
}
