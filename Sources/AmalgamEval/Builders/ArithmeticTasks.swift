import AmalgamCore
import Foundation

/// A small GSM8K-style task: templated arithmetic word problems with names, objects and numbers drawn
/// from a seed, answers worked in a sentence or two and ending `#### N`, prompts `Question: …\nAnswer:`.
public enum ArithmeticTasks {
    static let names: [(String, String)] = [
        ("Ava", "She"), ("Ben", "He"), ("Chloe", "She"), ("Diego", "He"), ("Emma", "She"), ("Farah", "She"), ("George", "He"),
        ("Hana", "She"), ("Ivan", "He"), ("Julia", "She"), ("Kofi", "He"), ("Lena", "She"), ("Marco", "He"), ("Nadia", "She"),
        ("Omar", "He"), ("Priya", "She"), ("Quinn", "He"), ("Rosa", "She"), ("Sam", "He"), ("Tara", "She"), ("Umar", "He"),
        ("Vera", "She"), ("Wei", "He"), ("Yuki", "She"), ("Zane", "He"),
    ]
    static let objects = ["apples", "marbles", "stickers", "pencils", "cookies", "books", "shells", "stamps", "cards", "beads",
                          "oranges", "toy cars", "balloons", "candles", "buttons"]

    /// One problem: question, worked answer, numeric answer.
    struct Problem { var question: String; var answer: String; var result: Int }

    static func problem(_ r: inout SeededGenerator) -> Problem {
        func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + r.integer(below: range.count) }
        let (name, pronoun) = names[r.integer(below: names.count)]
        var friend = names[r.integer(below: names.count)].0
        while friend == name { friend = names[r.integer(below: names.count)].0 }
        let thing = objects[r.integer(below: objects.count)]
        switch r.integer(below: 6) {
        case 0:
            let a = int(3...60), b = int(2...40)
            return Problem(question: "\(name) has \(a) \(thing). \(pronoun) buys \(b) more. How many \(thing) does \(name) have now?",
                           answer: "\(name) starts with \(a) \(thing) and buys \(b) more, so \(name) has \(a) + \(b) = \(a + b) \(thing).\n#### \(a + b)",
                           result: a + b)
        case 1:
            let b = int(2...30), a = b + int(1...50)
            return Problem(question: "\(name) had \(a) \(thing) and gave \(b) of them to \(friend). How many \(thing) does \(name) have left?",
                           answer: "\(name) gave away \(b) of \(a) \(thing), so \(a) - \(b) = \(a - b) are left.\n#### \(a - b)",
                           result: a - b)
        case 2:
            let a = int(2...12), b = int(3...15)
            return Problem(question: "\(name) buys \(a) boxes of \(thing). Each box holds \(b) \(thing). How many \(thing) does \(name) buy in all?",
                           answer: "Each of the \(a) boxes holds \(b) \(thing), so \(name) buys \(a) * \(b) = \(a * b) \(thing).\n#### \(a * b)",
                           result: a * b)
        case 3:
            let a = int(2...30), b = int(2...6), c = int(3...12)
            return Problem(question: "\(name) has \(a) \(thing). \(pronoun) buys \(b) packs with \(c) \(thing) in each pack. How many \(thing) does \(name) have now?",
                           answer: "The packs hold \(b) * \(c) = \(b * c) \(thing). Then \(name) has \(a) + \(b * c) = \(a + b * c) \(thing).\n#### \(a + b * c)",
                           result: a + b * c)
        case 4:
            let a = int(3...20), p = int(2...9), s = int(1...(a * p - 1))
            return Problem(question: "\(name) sells \(a) \(thing) for \(p) dollars each and spends \(s) dollars on lunch. How many dollars does \(name) have left?",
                           answer: "\(name) earns \(a) * \(p) = \(a * p) dollars. After lunch \(name) has \(a * p) - \(s) = \(a * p - s) dollars.\n#### \(a * p - s)",
                           result: a * p - s)
        default:
            let each = int(2...12), friends = int(2...8)
            return Problem(question: "\(name) shares \(each * friends) \(thing) equally among \(friends) friends. How many \(thing) does each friend get?",
                           answer: "Each friend gets \(each * friends) / \(friends) = \(each) \(thing).\n#### \(each)",
                           result: each)
        }
    }

    /// The task file: `train` problems (the few-shot pool) and `test` problems, distinct questions.
    public static func build(seed: UInt64, train: Int = 40, test: Int = 100, fewshot: Int = 4) -> BuiltFile {
        var r = SeededGenerator(seed: seed, stream: 30)
        var seen: Set<String> = []
        var text = JSONValue.object(JSONObject([
            ("task", .string("arithmetic")), ("kind", .string("generation")), ("num_fewshot", .int(fewshot)),
            ("fewshot_split", .string("train")), ("eval_split", .string("test")), ("target_delimiter", .string(" ")),
            ("fewshot_delimiter", .string("\n\n")), ("stop", .array([.string("Question:"), .string("\n\n")])), ("max_tokens", .int(96)),
            ("answer_regex", .string("#### (\\-?[0-9\\.\\,]+)")), ("seed", .int(Int(truncatingIfNeeded: seed))),
            ("metadata", .object(JSONObject([("source", .string("templated problems generated by amalgam make-tasks"))]))),
        ])).compactText() + "\n"
        for (split, count) in [("train", train), ("test", test)] {
            var n = 0
            while n < count {
                let p = problem(&r)
                guard seen.insert(p.question).inserted else { continue }
                text += JSONValue.object(JSONObject([
                    ("id", .string("\(split)-\(String(format: "%04d", n))")), ("split", .string(split)),
                    ("input", .string("Question: \(p.question)\nAnswer:")), ("target", .string(p.answer)), ("answer", .string(String(p.result))),
                ])).compactText() + "\n"
                n += 1
            }
        }
        return BuiltFile(path: "arithmetic.jsonl", text: text)
    }
}
