// Temporary stand-in for the registry of merge methods (replaced when the methods land).
/// The one table of merge methods.
public enum MergeMethods {
    /// Every registered method.
    public static let all: [any MergeMethod] = []
    /// The method registered under `name`, if any.
    public static func named(_ name: String) -> (any MergeMethod)? { all.first { $0.name == name } }
}
