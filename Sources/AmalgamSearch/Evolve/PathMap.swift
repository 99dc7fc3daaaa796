import Foundation

/// Where a worker finds the files a run's configuration names when they sit elsewhere on its machine
/// (`amalgam worker --path-map FROM=TO`): each path that is FROM or lies under it is read at TO with the
/// rest of the path kept, the longest matching FROM first, as gdb's `set substitute-path` or a container's
/// volume mount. Prefixes match whole path components: `/data/a` maps `/data/a/model` but not `/data/ab`.
public struct PathMap: Sendable, Equatable {
    /// The (FROM, TO) pairs, longest FROM first.
    public private(set) var pairs: [(from: String, to: String)] = []

    public init() {}

    /// A map from `FROM=TO` texts (split at the first `=`); an error names a text without both sides or a
    /// FROM given twice.
    public init(_ texts: [String]) throws(SearchError) {
        for text in texts {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex, text.index(after: equals) != text.endIndex else {
                throw .invalidConfiguration(key: "path-map", reason: "`\(text)` is not FROM=TO (the run's path, then this machine's)")
            }
            let from = Self.trimmed(String(text[..<equals])), to = Self.trimmed(String(text[text.index(after: equals)...]))
            guard !pairs.contains(where: { $0.from == from }) else {
                throw .invalidConfiguration(key: "path-map", reason: "`\(from)` is mapped twice")
            }
            pairs.append((from, to))
        }
        pairs.sort { $0.from.count > $1.from.count }
    }

    public var isEmpty: Bool { pairs.isEmpty }

    /// `path` as this machine reads it: TO plus the rest of `path` for the longest FROM that `path` is or
    /// lies under, else `path` unchanged.
    public func callAsFunction(_ path: String) -> String {
        for (from, to) in pairs {
            if path == from { return to }
            let prefix = from == "/" ? "/" : from + "/"
            if path.hasPrefix(prefix) { return (to == "/" ? "/" : to + "/") + path.dropFirst(prefix.count) }
        }
        return path
    }

    /// A model reference read through the map: a path, or both parts of `MODEL+ADAPTER` (mergekit's LoRA
    /// form) unless the whole mapped text names a file.
    public func reference(_ reference: String) -> String {
        let whole = self(reference)
        guard reference.contains("+"), !FileManager.default.fileExists(atPath: whole) else { return whole }
        let parts = reference.split(separator: "+", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return whole }
        return self(String(parts[0])) + "+" + self(String(parts[1]))
    }

    /// Without trailing slashes (except the root's).
    static func trimmed(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    public static func == (a: PathMap, b: PathMap) -> Bool {
        a.pairs.map(\.from) == b.pairs.map(\.from) && a.pairs.map(\.to) == b.pairs.map(\.to)
    }
}

extension EvolveConfiguration {
    /// The configuration with every file it names (models, the CMA-ES base model, task files, outputs and
    /// run folder) read through `map`.
    public func mapped(by map: PathMap) -> EvolveConfiguration {
        guard !map.isEmpty else { return self }
        var c = self
        c.models = models.map { map.reference($0) }
        c.tasks = tasks.map { var t = $0; t.path = map(t.path); return t }
        c.cmaes.baseModel = cmaes.baseModel.map { map.reference($0) }
        c.output = output.map { map($0) }
        c.recipeOutput = recipeOutput.map { map($0) }
        c.runDirectory = runDirectory.map { map($0) }
        return c
    }
}
