/// A regex matched over Unicode scalars with leftmost-first semantics (Oniguruma's and Python's) by a Pike
/// VM: all alternatives advance together one scalar at a time, in priority order, and each instruction is
/// visited at most once per position. One search therefore takes at most `instructions × (scalars + 1)`
/// steps, whatever the pattern and input; there is no backtracking to blow up. A lookahead's answer at a
/// position is computed once per text and kept. Capturing groups are recorded on request, with the
/// submatches a backtracking engine reports (the highest-priority thread wins).
///
/// Amalgam's one regex engine: tokenizer files (Oniguruma syntax), PEFT rank and alpha patterns, lm-eval
/// answer patterns and the command line's tensor patterns (Python syntax) all run on it, so no file a user
/// is given can make a pattern run for exponential time.
public struct ScalarRegex: Sendable {
    /// The pattern as written.
    public let pattern: String
    public let dialect: RegexDialect
    /// The number of capturing groups.
    public let groupCount: Int
    let program: RegexProgram

    /// Compiles `pattern`; a syntax error, or a feature the matcher cannot run in bounded time, throws.
    public init(_ pattern: String, dialect: RegexDialect = .oniguruma) throws(RegexSyntaxError) {
        self.pattern = pattern
        self.dialect = dialect
        let (node, groups) = try RegexParser.parse(pattern, dialect: dialect)
        groupCount = groups
        program = try RegexProgram(node, captures: groups)
    }

    /// The instructions of the pattern and its lookaheads. One search over n scalars makes at most
    /// `(4 × programSize + 1) × (n + 1)` steps, besides the lookaheads it asks (each asked once per position).
    public var programSize: Int { program.totalSize }

    /// `text` cut into consecutive UTF-8 byte ranges, each flagged as a match of the pattern or not, as
    /// `tokenizers`' `find_matches` cuts it for Split and Replace.
    public func segments(in text: String) -> [(range: Range<Int>, isMatch: Bool)] {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { segments(UnsafeBufferPointer($0)) }
    }

    /// The matches in `text` as `tokenizers` finds them (onig's find_iter: an empty match right after the
    /// previous match is skipped), as UTF-8 byte ranges, and the steps the matcher made.
    public func matches(in text: String) -> (ranges: [Range<Int>], steps: Int) {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            var steps = 0
            let ranges = matches(in: UnsafeBufferPointer(buffer), steps: &steps)
            return (ranges, steps)
        }
    }

    /// The matches in UTF-8 `text` as byte ranges (see `matches(in:)`).
    func matches(in text: UnsafeBufferPointer<UInt8>, steps: inout Int) -> [Range<Int>] {
        let input = ScalarInput(text, folding: program.usesFolding)
        let machine = PikeMachine(program: program, input: input)
        var out: [Range<Int>] = []
        var from = 0
        var lastMatchEnd: Int? = nil
        while from <= input.count {
            guard let (s, e) = machine.search(from: from) else { break }
            if s == e, lastMatchEnd == e {
                from += 1
                continue
            }
            out.append(input.offsets[s]..<input.offsets[e])
            from = e
            lastMatchEnd = e
        }
        steps += machine.steps
        return out
    }

    /// The first match in `text` (`re.search`), with its groups.
    public func firstMatch(in text: String) -> RegexMatch? {
        allMatches(in: text, limit: 1).first
    }

    /// Whether some part of `text` matches (`re.search(...) is not None`).
    public func isFound(in text: String) -> Bool { firstMatch(in: text) != nil }

    /// Every match in `text` in order, with its groups. Empty matches follow the dialect: Python's `re.finditer`
    /// (3.7 on) keeps an empty match right after a non-empty one and skips one only at the position of the
    /// previous empty match; Oniguruma's find_iter skips an empty match right after any match.
    public func allMatches(in text: String, limit: Int = .max) -> [RegexMatch] {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            let input = ScalarInput(UnsafeBufferPointer(buffer), folding: program.usesFolding)
            let machine = PikeMachine(program: program, input: input, recordsCaptures: groupCount > 0)
            var out: [RegexMatch] = []
            var from = 0
            var lastMatchEnd: Int? = nil, lastEmptyMatch: Int? = nil
            while from <= input.count, out.count < limit {
                guard let (s, e) = machine.search(from: from) else { break }
                if s == e, (dialect == .python ? lastEmptyMatch : lastMatchEnd) == e {
                    from += 1
                    continue
                }
                let slots = machine.matchedSlots
                let groups: [Range<Int>?] = (0..<groupCount).map { k in
                    let a = slots.count > 2 * k + 3 ? slots[2 * k + 2] : -1, b = slots.count > 2 * k + 3 ? slots[2 * k + 3] : -1
                    return a >= 0 && b >= a ? input.offsets[a]..<input.offsets[b] : nil
                }
                out.append(RegexMatch(range: input.offsets[s]..<input.offsets[e], groups: groups))
                from = e
                lastMatchEnd = e
                lastEmptyMatch = s == e ? e : nil
            }
            return out
        }
    }

    /// The text cut into consecutive segments covering it, each flagged as a match or not (tokenizers'
    /// `find_matches`): what Split and Replace work from.
    public func segments(_ text: UnsafeBufferPointer<UInt8>) -> [(range: Range<Int>, isMatch: Bool)] {
        guard !text.isEmpty else { return [] }
        var steps = 0
        var out: [(range: Range<Int>, isMatch: Bool)] = []
        var previous = 0
        for m in matches(in: text, steps: &steps) {
            if previous != m.lowerBound { out.append((previous..<m.lowerBound, false)) }
            out.append((m, true))
            previous = m.upperBound
        }
        if previous != text.count { out.append((previous..<text.count, false)) }
        return out
    }
}

/// One match: UTF-8 byte ranges of the whole match and of each capturing group (nil where the group did
/// not take part).
public struct RegexMatch: Sendable, Equatable {
    public let range: Range<Int>
    public let groups: [Range<Int>?]

    /// The matched text (or group `k`'s, from 1; nil when it did not take part) of `text`, the string searched.
    public func text(in text: String, group k: Int = 0) -> String? {
        guard let r = k == 0 ? range : groups[k - 1] else { return nil }
        let utf8 = text.utf8
        return String(utf8[utf8.index(utf8.startIndex, offsetBy: r.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: r.upperBound)])
    }
}

/// The scalars of a text with their UTF-8 offsets (`offsets[k]` is where scalar k starts; one more
/// entry for the end) and, if the pattern compares case folds, their folds.
struct ScalarInput {
    var scalars: [UInt32] = []
    var offsets: [Int] = []
    var folded: [UInt32] = []
    var count: Int { scalars.count }

    init(_ text: UnsafeBufferPointer<UInt8>, folding: Bool) {
        scalars.reserveCapacity(text.count)
        offsets.reserveCapacity(text.count + 1)
        var i = 0
        while i < text.count {
            let b0 = text[i]
            let length = b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2
            var value = UInt32(b0) & (length == 1 ? 0x7F : length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for k in 1..<max(length, 1) where i + k < text.count { value = value << 6 | (UInt32(text[i + k]) & 0x3F) }
            scalars.append(value)
            offsets.append(i)
            i += length
        }
        offsets.append(text.count)
        if folding { folded = scalars.map(caseFold) }
    }
}

/// The Pike VM of one program over one input, with the thread lists and lookahead answers it reuses.
final class PikeMachine {
    let program: RegexProgram
    let input: ScalarInput
    /// Steps made so far: instructions visited while adding threads plus threads advanced.
    var steps = 0
    /// Whether threads carry capture slots (the program's `save` instructions are skipped otherwise).
    let recordsCaptures: Bool
    /// The capture slots of the last match found (scalar offsets, -1 where a group did not take part).
    private(set) var matchedSlots: [Int] = []
    private var current = ThreadList(), next = ThreadList()
    /// `visited[pc] == stamp` when pc is already in the list being built.
    private var visited: [Int]
    private var stamp = 0
    private var stack: [Int] = []
    private var slotStack: [[Int]] = []
    /// Per lookahead: its answer at each position (0 unknown, 1 true, 2 false), and its machine.
    private var lookAnswers: [[UInt8]]
    private lazy var lookMachines: [PikeMachine] = program.lookaheads.map { PikeMachine(program: $0, input: input) }

    struct ThreadList {
        var pcs: [Int] = []
        var starts: [Int] = []
        /// Per thread its capture slots, when the machine records captures.
        var slots: [[Int]] = []
        var stamp = 0
        mutating func reset(_ stamp: Int) {
            pcs.removeAll(keepingCapacity: true)
            starts.removeAll(keepingCapacity: true)
            slots.removeAll(keepingCapacity: true)
            self.stamp = stamp
        }
    }

    init(program: RegexProgram, input: ScalarInput, recordsCaptures: Bool = false) {
        self.program = program
        self.input = input
        self.recordsCaptures = recordsCaptures && program.captureSlots > 0
        visited = Array(repeating: -1, count: program.instructions.count)
        lookAnswers = program.lookaheads.map { _ in Array(repeating: 0, count: input.count + 1) }
    }

    /// The leftmost-first match starting at or after `from` (scalar offsets), or nil.
    func search(from: Int) -> (Int, Int)? { run(from: from, anchored: false) }

    /// Whether the program matches starting exactly at `at` (a lookahead's question).
    func matchesAnchored(at: Int) -> Bool { run(from: at, anchored: true) != nil }

    private func newStamp() -> Int { stamp += 1; return stamp }

    private func run(from: Int, anchored: Bool) -> (Int, Int)? {
        let n = input.count
        let code = program.instructions
        var found: (Int, Int)? = nil
        current.reset(newStamp())
        var pos = from
        while true {
            // A new thread at each position, lowest priority, until some match is found.
            if found == nil, !anchored || pos == from {
                add(&current, pc: 0, start: pos, at: pos, slots: recordsCaptures ? Array(repeating: -1, count: program.captureSlots) : [])
            }
            if current.pcs.isEmpty, found != nil || anchored || pos >= n { break }
            next.reset(newStamp())
            let scalar: UInt32 = pos < n ? input.scalars[pos] : 0
            threads: for t in 0..<current.pcs.count {
                steps += 1
                let pc = current.pcs[t], start = current.starts[t]
                let advance: Bool
                switch code[pc] {
                case .match:
                    found = (start, pos)
                    if recordsCaptures { matchedSlots = current.slots[t] }
                    if anchored { return found }
                    break threads  // the threads after it have lower priority: cut off
                case let .scalar(v): advance = pos < n && scalar == v
                case let .folded(v): advance = pos < n && input.folded[pos] == v
                case let .set(k): advance = pos < n && program.sets[k].contains(scalar)
                case let .any(newline): advance = pos < n && (newline || scalar != 0x0A)
                default: advance = false
                }
                if advance { add(&next, pc: pc + 1, start: start, at: pos + 1, slots: recordsCaptures ? current.slots[t] : []) }
            }
            swap(&current, &next)
            if pos >= n { break }
            pos += 1
        }
        return found
    }

    /// Adds the thread at `pc` and everything it reaches without consuming, in priority order. With
    /// captures, each pending instruction keeps the slots of the path that reached it.
    private func add(_ list: inout ThreadList, pc: Int, start: Int, at pos: Int, slots: [Int]) {
        let code = program.instructions
        stack.append(pc)
        if recordsCaptures { slotStack.append(slots) }
        while let pc = stack.popLast() {
            let slots = recordsCaptures ? slotStack.removeLast() : []
            steps += 1
            guard visited[pc] != list.stamp else { continue }
            visited[pc] = list.stamp
            switch code[pc] {
            case let .jump(target): push(target, slots)
            case let .split(first, second):
                push(second, slots)
                push(first, slots)
            case let .assert(a): if holds(a, at: pos) { push(pc + 1, slots) }
            case let .look(k, negated): if lookahead(k, at: pos) != negated { push(pc + 1, slots) }
            case let .save(k):
                if recordsCaptures {
                    var saved = slots
                    saved[k] = pos
                    push(pc + 1, saved)
                } else {
                    push(pc + 1, slots)
                }
            default:
                list.pcs.append(pc)
                list.starts.append(start)
                if recordsCaptures { list.slots.append(slots) }
            }
        }
    }

    @inline(__always)
    private func push(_ pc: Int, _ slots: [Int]) {
        stack.append(pc)
        if recordsCaptures { slotStack.append(slots) }
    }

    private func lookahead(_ k: Int, at pos: Int) -> Bool {
        switch lookAnswers[k][pos] {
        case 1: return true
        case 2: return false
        default:
            let machine = lookMachines[k]
            let before = machine.steps
            let answer = machine.matchesAnchored(at: pos)
            steps += machine.steps - before
            lookAnswers[k][pos] = answer ? 1 : 2
            return answer
        }
    }

    private func holds(_ a: RegexAssertion, at pos: Int) -> Bool {
        let s = input.scalars, n = input.count
        switch a {
        case .lineStart: return pos == 0 || s[pos - 1] == 0x0A
        case .lineEnd: return pos == n || s[pos] == 0x0A
        case .textStart: return pos == 0
        case .textEnd: return pos == n
        case .textEndBeforeNewline: return pos == n || (pos == n - 1 && s[pos] == 0x0A)
        case .wordBoundary, .notWordBoundary:
            let before = pos > 0 && Unicode.Scalar(s[pos - 1]).map(isWordScalar) == true
            let after = pos < n && Unicode.Scalar(s[pos]).map(isWordScalar) == true
            return (before != after) == (a == .wordBoundary)
        }
    }
}
