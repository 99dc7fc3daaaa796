/// The one registry of merge methods, by the names configs use (`merge_method: ties`).
public enum MergeMethods {
    /// Every method, in a stable order.
    public static let all: [any MergeMethod] = [
        Linear(), Slerp(), NuSlerp(), MultiSlerp(), Karcher(),
    ] + TaskArithmetic.family + [
        ModelStock(), SCE(), NearSwap(), ArceeFusion(), RAM(plus: false), RAM(plus: true), Passthrough(),
    ]

    /// The accepted names, for messages listing what is accepted.
    public static var names: [String] { all.map(\.name) }

    /// The method called `name`, or nil if there is none (callers list `names` in their error).
    public static func named(_ name: String) -> (any MergeMethod)? {
        all.first { $0.name == name }
    }
}
