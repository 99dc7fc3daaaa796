import Foundation

/// mergekit's `model+adapter` reference: a model (folder, file or Hugging Face name) and a PEFT LoRA
/// adapter (folder or Hugging Face name) applied to it on load.
public enum LoRAReference {
    /// The model and adapter parts of `reference`, or nil when it names one model (no `+`, or an existing
    /// path that contains one).
    public static func split(_ reference: String, relativeTo base: String? = nil) throws(CheckpointError) -> (model: String, adapter: String)? {
        guard reference.contains("+") else { return nil }
        let fm = FileManager.default
        if fm.fileExists(atPath: reference) { return nil }
        if !reference.hasPrefix("/"), let base, fm.fileExists(atPath: (base as NSString).appendingPathComponent(reference)) { return nil }
        let parts = reference.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .lora(.badReference(reference: reference, reason: "a model with a LoRA adapter is written MODEL+ADAPTER, with one '+'"))
        }
        return (parts[0], parts[1])
    }

    /// `model` and `adapter` as one reference.
    public static func join(model: String, adapter: String) -> String { model + "+" + adapter }
}
