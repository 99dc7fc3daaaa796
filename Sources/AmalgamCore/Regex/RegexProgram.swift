/// One instruction of a compiled regex (Thompson's construction): consuming instructions test one scalar,
/// the others move between instructions without consuming.
enum RegexInstruction: Sendable {
    case scalar(UInt32)
    /// A scalar whose case fold is this one.
    case folded(UInt32)
    case set(Int)
    /// Any scalar (`newline` false: but "\n").
    case any(newline: Bool)
    /// Try `first`, then `second` (the order is the priority of leftmost-first matching).
    case split(Int, Int)
    case jump(Int)
    case assert(RegexAssertion)
    /// Continue only if lookahead program `index` matches here (or, negated, does not).
    case look(Int, negated: Bool)
    /// Records the position in capture slot k (group k/2's start when k is even, its end when odd).
    case save(Int)
    case match
}

/// A compiled regex: instructions, the sets they test, and the programs of its lookaheads.
final class RegexProgram: Sendable {
    /// The most instructions one pattern may compile to (counted repetitions copy their body).
    static let maxInstructions = 100_000

    let instructions: [RegexInstruction]
    let sets: [ScalarSet]
    let lookaheads: [RegexProgram]
    /// Whether some instruction compares case folds, so the matcher must fold the input.
    let usesFolding: Bool
    /// The capture slots the matcher keeps per thread: 2 × (groups + 1) when groups are recorded, else 0.
    let captureSlots: Int

    /// Compiles `node`; with `captures` (the number of groups in it), `save` instructions record where each
    /// group matched. Groups inside a lookahead are not recorded.
    init(_ node: RegexNode, captures: Int = 0) throws(RegexSyntaxError) {
        var compiler = RegexCompiler()
        compiler.recordsCaptures = captures > 0
        try compiler.emit(node)
        compiler.append(.match)
        instructions = compiler.code
        sets = compiler.sets
        lookaheads = compiler.lookaheads
        usesFolding = compiler.usesFolding || compiler.lookaheads.contains(where: \.usesFolding)
        captureSlots = captures > 0 ? 2 * (captures + 1) : 0
    }

    /// Instructions of this program and of its lookaheads, the size step bounds are stated in.
    var totalSize: Int { instructions.count + lookaheads.reduce(0) { $0 + $1.totalSize } }
}

private struct RegexCompiler {
    var code: [RegexInstruction] = []
    var sets: [ScalarSet] = []
    var lookaheads: [RegexProgram] = []
    var usesFolding = false
    var recordsCaptures = false

    @discardableResult
    mutating func append(_ instruction: RegexInstruction) -> Int {
        code.append(instruction)
        return code.count - 1
    }

    mutating func emit(_ node: RegexNode) throws(RegexSyntaxError) {
        guard code.count < RegexProgram.maxInstructions else {
            throw RegexSyntaxError(offset: 0, reason: "the pattern compiles to more than \(RegexProgram.maxInstructions) instructions (counted repetitions of large groups)")
        }
        switch node {
        case .empty: break
        case let .scalar(v, ignoreCase):
            if ignoreCase, caseVariants(v).contains(where: { $0 != v }) {
                usesFolding = true
                append(.folded(caseFold(v)))
            } else {
                append(.scalar(v))
            }
        case let .set(set):
            sets.append(set)
            append(.set(sets.count - 1))
        case let .any(newline): append(.any(newline: newline))
        case let .concat(items): for item in items { try emit(item) }
        case let .alternation(branches):
            // split L1, next; L1: branch 1; jump end; next: split L2, ... ; last branch; end:
            var jumps: [Int] = []
            for (k, branch) in branches.enumerated() {
                if k < branches.count - 1 {
                    let split = append(.split(0, 0))
                    try emit(branch)
                    jumps.append(append(.jump(0)))
                    code[split] = .split(split + 1, code.count)
                } else {
                    try emit(branch)
                }
            }
            for j in jumps { code[j] = .jump(code.count) }
        case let .repeating(body, min, max, greedy):
            for _ in 0..<min { try emit(body) }
            if let max {
                // Each optional copy: split body, end (greedy) or split end, body (lazy).
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(append(.split(0, 0)))
                    try emit(body)
                }
                for s in splits { code[s] = greedy ? .split(s + 1, code.count) : .split(code.count, s + 1) }
            } else {
                let loop = append(.split(0, 0))
                try emit(body)
                append(.jump(loop))
                code[loop] = greedy ? .split(loop + 1, code.count) : .split(code.count, loop + 1)
            }
        case let .assertion(a): append(.assert(a))
        case let .capture(body, index):
            if recordsCaptures { append(.save(2 * index)) }
            try emit(body)
            if recordsCaptures { append(.save(2 * index + 1)) }
        case let .lookahead(body, negated):
            lookaheads.append(try RegexProgram(body))
            append(.look(lookaheads.count - 1, negated: negated))
        }
    }
}
