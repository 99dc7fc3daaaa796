import AmalgamEval
import Foundation
import Testing

/// Reading task files: what is accepted, and the error a user sees for each mistake.
@Suite struct TaskFileTests {
    static let header = #"{"task": "demo", "kind": "multiple_choice", "num_fewshot": 1}"#
    static let good = [
        header,
        #"{"id": "a", "split": "train", "context": "one", "choices": ["x", "y"], "gold": 0}"#,
        #"{"id": "b", "split": "train", "context": "two", "choices": ["x", "y"], "gold": 1}"#,
        #"{"id": 3, "context": "three", "choices": ["x", "y", "z"], "gold": 2}"#,
        "",
        #"{"id": "d", "context": "four", "choices": ["x", "y"], "gold": 0}"#,
        #"{"id": "e", "context": "five", "choices": ["x", "y"], "gold": 1}"#,
    ]

    func message(_ lines: [String]) -> String {
        do {
            _ = try EvalTask(text: lines.joined(separator: "\n"), path: "tasks/demo.jsonl")
            return "no error"
        } catch { return "\(error)" }
    }

    @Test func aGoodFileIsReadWithDefaultsAsLMEval() throws {
        let task = try EvalTask(text: Self.good.joined(separator: "\n"), path: "demo.jsonl")
        #expect(task.spec.kind == .multipleChoice)
        #expect(task.spec.targetDelimiter == " " && task.spec.fewshotDelimiter == "\n\n")
        #expect(task.examples.count == 5)
        #expect(task.examples[2].id == "3" && task.examples[2].split == "test" && task.examples[2].line == 4)
        #expect(task.evaluationExamples().map(\.id) == ["3", "d", "e"])
    }

    @Test func limitIsASeededSampleInFileOrder() throws {
        let task = try EvalTask(text: Self.good.joined(separator: "\n"), path: "demo.jsonl")
        let a = task.evaluationExamples(limit: 2, seed: 5).map(\.id)
        #expect(a.count == 2)
        #expect(a == task.evaluationExamples(limit: 2, seed: 5).map(\.id))
        let order = task.evaluationExamples().map(\.id)
        let positions = a.map { order.firstIndex(of: $0)! }
        #expect(positions == positions.sorted(), "kept in file order")
        let draws = Set((0..<20).map { task.evaluationExamples(limit: 1, seed: UInt64($0)).map(\.id) })
        #expect(draws.count > 1, "different seeds pick different examples")
    }

    @Test func fewshotExamplesComeFromTheFewshotSplitAndAreStable() throws {
        let task = try EvalTask(text: Self.good.joined(separator: "\n"), path: "demo.jsonl")
        for example in task.evaluationExamples() {
            let shots = task.fewshotExamples(for: example)
            #expect(shots.count == 1 && shots[0].split == "train")
            #expect(shots == task.fewshotExamples(for: example))
        }
    }

    @Test func badFilesNameTheFileLineAndKey() {
        var lines = Self.good
        lines[2] = #"{"id": "b", "split": "train", "context": "two", "choices": ["x", "y"], "gold": 1"#
        #expect(message(lines).hasPrefix("tasks/demo.jsonl:3: not valid JSON"))

        lines = Self.good
        lines[3] = #"{"id": 3, "context": "three", "choices": ["x", "y", "z"], "gold": 3}"#
        #expect(message(lines) == "tasks/demo.jsonl:4: key 'gold': 3 is out of range for 3 choices (0-based)")

        lines = Self.good
        lines[5] = #"{"id": "d", "contxt": "four", "choices": ["x", "y"], "gold": 0}"#
        #expect(message(lines).hasPrefix("tasks/demo.jsonl:6: key 'contxt': unknown key in a multiple_choice example; accepted: id, split, metadata, context, choices, gold"))

        lines = Self.good
        lines[6] = #"{"id": "d", "context": "five", "choices": ["x", "y"], "gold": 1}"#
        #expect(message(lines) == "tasks/demo.jsonl:7: key 'id': 'd' is already the id of line 6; ids must be unique")

        lines = Self.good
        lines[1] = #"{"id": "a", "split": "train", "context": "one", "choices": "x", "gold": 0}"#
        #expect(message(lines).hasPrefix("tasks/demo.jsonl:2: key 'choices': expected an array of strings"))

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple-choice"}"#
        #expect(message(lines).hasPrefix("tasks/demo.jsonl:1: key 'kind': 'multiple-choice' is not a task kind; use one of multiple_choice, generation, language_modeling"))

        lines = Self.good
        lines[0] = #"{"id": "x", "context": "c", "choices": ["a", "b"], "gold": 0}"#
        #expect(message(lines).hasPrefix("tasks/demo.jsonl:1: key 'task': the first line must be the task header"))

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "num_fewshot": 3}"#
        #expect(message(lines).contains("key 'num_fewshot': 3 few-shot examples asked but split 'train' has 2"))

        #expect(message(["{\"task\": \"g\", \"kind\": \"generation\", \"answer_regex\": \"#### (\"}"]).hasPrefix("tasks/demo.jsonl:1: key 'answer_regex': '#### (' is not a valid regular expression"))
        #expect(message([#"{"task": "g", "kind": "generation"}"#, #"{"id": 1, "input": "Q", "target": "no answer"}"#])
            .hasPrefix("tasks/demo.jsonl:2: key 'target': answer_regex"))
        #expect(message([#"{"task": "l", "kind": "language_modeling"}"#, #"{"id": 1, "text": ""}"#]) == "tasks/demo.jsonl:2: key 'text': is empty; a document needs text")
        #expect(message([]) .hasPrefix("tasks/demo.jsonl:1: empty task file"))
    }

    /// A value of the wrong JSON type names the file, the line, the key and what is accepted.
    @Test func wrongTypesNameTheFileLineKeyAndWhatIsAccepted() {
        var lines = Self.good
        lines[0] = #"{"task": "demo", "kind": 3}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'kind': expected a string, got 3")

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "num_fewshot": "x"}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'num_fewshot': expected an integer ≥ 0, got \"x\"")

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "limit": 0}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'limit': 0 is below 1")

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "chat_template": 1}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'chat_template': expected true or false, got 1")

        lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "stop": ["Q:", 3]}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'stop': expected an array of strings, got 3 among them")

        lines = Self.good
        lines[5] = #"{"id": [1], "context": "four", "choices": ["x", "y"], "gold": 0}"#
        #expect(message(lines) == "tasks/demo.jsonl:6: key 'id': expected a string or an integer, got an array")

        lines = Self.good
        lines[5] = #"{"id": "d", "context": "four", "choices": ["x", "y"], "gold": "0"}"#
        #expect(message(lines) == "tasks/demo.jsonl:6: key 'gold': expected an integer ≥ 0, got \"0\"")

        lines = Self.good
        lines[5] = #"{"id": "d", "context": 4, "choices": ["x", "y"], "gold": 0}"#
        #expect(message(lines) == "tasks/demo.jsonl:6: key 'context': expected a string, got 4")

        lines = Self.good
        lines[5] = #"{"id": "d", "choices": ["x", "y"], "gold": 0}"#
        #expect(message(lines) == "tasks/demo.jsonl:6: key 'context': missing (a string)")

        #expect(message(["[1, 2]"]) == "tasks/demo.jsonl:1: expected a JSON object, got [1,2]")
    }

    /// A seed is any 64-bit unsigned integer, as `--seed` is; a negative one names the key.
    @Test func aSeedIsAnyUInt64() throws {
        var lines = Self.good
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "num_fewshot": 1, "seed": 18446744073709551615}"#
        #expect(try EvalTask(text: lines.joined(separator: "\n"), path: "demo.jsonl").spec.seed == UInt64.max)
        lines[0] = #"{"task": "demo", "kind": "multiple_choice", "seed": -1}"#
        #expect(message(lines) == "tasks/demo.jsonl:1: key 'seed': -1 is not an integer ≥ 0")
    }

    @Test func aMissingFileSaysSo() {
        #expect(throws: EvalError.file(path: "/nonexistent/task.jsonl", reason: "cannot read the task file (missing or unreadable)")) {
            try EvalTask(contentsOf: "/nonexistent/task.jsonl")
        }
    }
}
